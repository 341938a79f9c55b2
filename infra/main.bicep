// mp3pipe on Azure: `azd up` provisions everything below, identity only (no keys), and deploys the app.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource: one that offers the Flex Consumption plan (tests/data/flex_consumption.json).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID); granted what `mp3pipe drop/status` need. Empty: none.')
param principalId string = ''

@description('Type of principalId: User for a person, ServicePrincipal for a CI identity.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@secure()
@description('Optional webhook URL told of every finished file (.mp3) and failure report (.error.json) in the output container. Event Grid validates it when the subscription is made (the endpoint must answer its handshake, or provision fails).')
param notificationWebhookUrl string = ''

@description('Optional Storage queue (made in the pipeline\'s account) told of the same events; needs no handshake. Empty: none.')
@maxLength(63)
param notificationQueue string = ''

@description('Optional email address for the alert rule (files failing, poison queue, dead letters).')
param alertEmail string = ''

@description('Node size of the Batch pool.')
param batchVmSize string = 'standard_d2s_v3'

@description('Most nodes the monitor scales the pool to.')
param batchMaxNodes int = 10

@description('Days after which Event Grid dead letters (eventgrid-deadletter) are deleted.')
@minValue(1)
param deadLetterRetentionDays int = 30

@description('Days after which failed tasks\' logs (mp3-out/_mp3pipe-logs/) are deleted; failure reports stay.')
@minValue(1)
param taskLogRetentionDays int = 30

@description('Days after which dropped MP4s (mp4-in) are deleted, their MP3s kept; 0 keeps inputs forever.')
@minValue(0)
param inputRetentionDays int = 0

@description('Conversions per node; 0: the app\'s default, one per vCPU of batchVmSize (shared/settings.py decides it for the app and the pool hook alike).')
@minValue(0)
@maxValue(256)
param batchSlotsPerNode int = 0

@description('Daily cap of the Log Analytics workspace in GB: past it, ingestion stops for the rest of the UTC day. The app logs ~1 KB a converted file (docs/deploy-azure.md).')
@minValue(1)
param logDailyCapGb int = 1

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, app: 'mp3pipe' }
var containers = {
  input: 'mp4-in'
  output: 'mp3-out'
  state: 'mp3pipe-state'
  deployment: 'app-package'
  deadLetter: 'eventgrid-deadletter'
}
var poolId = 'mp3pipe-pool'
var jobId = 'mp3pipe-job'

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    containers: containers
    workspaceId: monitoring.outputs.workspaceId
    notificationQueue: notificationQueue
    deadLetterRetentionDays: deadLetterRetentionDays
    taskLogRetentionDays: taskLogRetentionDays
    inputRetentionDays: inputRetentionDays
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    dailyQuotaGb: logDailyCapGb
  }
}

module batch 'modules/batch.bicep' = {
  name: 'batch'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    appIdentityId: identities.outputs.appIdentityId
    appIdentityClientId: identities.outputs.appIdentityClientId
    poolIdentityId: identities.outputs.poolIdentityId
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainer: containers.deployment
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    containers: containers
    batchAccountUrl: batch.outputs.accountUrl
    poolId: poolId
    jobId: jobId
    vmSize: batchVmSize
    maxNodes: batchMaxNodes
    slotsPerNode: batchSlotsPerNode
  }
}

module events 'modules/events.bicep' = {
  name: 'events'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    storageAccountName: storage.outputs.name
    outputContainer: containers.output
    deadLetterContainer: containers.deadLetter
    notificationWebhookUrl: notificationWebhookUrl
    notificationQueue: storage.outputs.notificationQueue
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containers: containers
    batchAccountName: batch.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    appPrincipalId: identities.outputs.appPrincipalId
    poolPrincipalId: identities.outputs.poolPrincipalId
    topicPrincipalId: events.outputs.topicPrincipalId
    notificationQueue: storage.outputs.notificationQueue
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module view 'modules/portal-view.bicep' = {
  name: 'portal-view'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    workspaceId: monitoring.outputs.workspaceId
    appInsightsId: monitoring.outputs.appInsightsId
    batchAccountId: batch.outputs.id
    containers: containers
    alertEmail: alertEmail
  }
}

// azd writes these into .azure/<env>/.env; the hooks and `mp3pipe --azure` read them.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_BATCH_ACCOUNT_NAME string = batch.outputs.name
output EVENTGRID_SYSTEM_TOPIC_NAME string = events.outputs.topicName
output EVENTGRID_DEADLETTER_CONTAINER string = containers.deadLetter
output SUBMIT_FUNCTION_NAME string = 'submit'
output AzureWebJobsStorage__blobServiceUri string = storage.outputs.blobEndpoint
output BATCH_GATEWAY string = 'azure'
output BATCH_ACCOUNT_URL string = batch.outputs.accountUrl
output BATCH_POOL_ID string = poolId
output BATCH_JOB_ID string = jobId
output BATCH_VM_SIZE string = batchVmSize
output BATCH_SLOTS_PER_NODE string = (batchSlotsPerNode > 0) ? string(batchSlotsPerNode) : ''
output BATCH_MAX_NODES string = string(batchMaxNodes)
output BATCH_POOL_IDENTITY_ID string = identities.outputs.poolIdentityId
output BATCH_APP_ROLE_ID string = roles.outputs.batchAppRoleId
output INPUT_CONTAINER string = containers.input
output OUTPUT_CONTAINER string = containers.output
output STATE_CONTAINER string = containers.state
