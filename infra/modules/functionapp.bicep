// Flex Consumption plan + the Function App (Python 3.12), identity-based storage, every app setting the code reads.
param location string
param tags object
param resourceToken string
param appIdentityId string
param appIdentityClientId string
param poolIdentityId string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainer string
param appInsightsConnectionString string
param containers object
param batchAccountUrl string
param poolId string
param jobId string
param vmSize string
param maxNodes int
param slotsPerNode int

resource plan 'Microsoft.Web/serverfarms@2025-05-01' = {
  //checkov:skip=CKV_AZURE_225: Flex Consumption scales from zero per event; zone redundancy would keep paid always-ready instances, and lost work is retried from storage
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-05-01' = {
  //checkov:skip=CKV_AZURE_222: Event Grid delivers blob events to the webhook over the public endpoint; the webhook needs the blobs_extension key
  //checkov:skip=CKV_AZURE_17: Event Grid webhook delivery presents no client certificate; the system key authenticates it
  //checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; a minimum instance count is an always-on cost with no HTTP traffic to fail over
  //checkov:skip=CKV_AZURE_213: the app serves no HTTP API of its own (blob and timer triggers only), so there is no health-check path
  name: 'func-${resourceToken}'
  location: location
  tags: union(tags, { 'azd-service-name': 'app' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
      }
      runtime: {
        name: 'python'
        version: '3.12'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Storage by identity (the host and shared/storage.py); no connection string.
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        // The host's diagnostic events (Flex Consumption) go to Table storage, by identity too.
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: tableEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: appIdentityClientId
        }
        // DefaultAzureCredential (Batch) picks the app's user-assigned identity by this client id.
        {
          name: 'AZURE_CLIENT_ID'
          value: appIdentityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${appIdentityClientId};Authorization=AAD'
        }
        {
          name: 'INPUT_CONTAINER'
          value: containers.input
        }
        {
          name: 'OUTPUT_CONTAINER'
          value: containers.output
        }
        {
          name: 'STATE_CONTAINER'
          value: containers.state
        }
        {
          name: 'FFMPEG_PRESET'
          value: 'standard'
        }
        // One CloudEvent per input version that ends; the app creates the queue with its first event.
        {
          name: 'OUTCOME_QUEUE'
          value: 'mp3pipe-outcomes'
        }
        {
          name: 'MONITOR_SCHEDULE'
          value: '0 * * * * *'
        }
        {
          name: 'RECONCILE_SCHEDULE'
          value: '30 */10 * * * *'
        }
        {
          name: 'RECONCILE_BATCH'
          value: '500'
        }
        {
          name: 'BATCH_GATEWAY'
          value: 'azure'
        }
        {
          name: 'BATCH_ACCOUNT_URL'
          value: batchAccountUrl
        }
        {
          name: 'BATCH_POOL_ID'
          value: poolId
        }
        {
          name: 'BATCH_JOB_ID'
          value: jobId
        }
        {
          name: 'BATCH_VM_SIZE'
          value: vmSize
        }
        // Empty: the app's default (one per vCPU of BATCH_VM_SIZE), the same the pool hook makes the pool with.
        {
          name: 'BATCH_SLOTS_PER_NODE'
          value: (slotsPerNode > 0) ? string(slotsPerNode) : ''
        }
        {
          name: 'BATCH_MIN_NODES'
          value: '0'
        }
        {
          name: 'BATCH_MAX_NODES'
          value: string(maxNodes)
        }
        // Nodes reach storage as this identity: the app never signs a SAS URL in Azure.
        {
          name: 'BATCH_POOL_IDENTITY_ID'
          value: poolIdentityId
        }
        {
          name: 'BATCH_SPOT_SHARE'
          value: '0'
        }
        {
          name: 'BATCH_DEDICATED_FLOOR'
          value: '0'
        }
        {
          name: 'SCALE_IDLE_GRACE_SECONDS'
          value: '300'
        }
        {
          name: 'TASK_MAX_RETRIES'
          value: '1'
        }
        {
          name: 'TASK_MAX_WALL_CLOCK_SECONDS'
          value: '3600'
        }
        {
          name: 'TASK_RETENTION_SECONDS'
          value: '900'
        }
      ]
    }
  }
}

// No basic (user name and password) publishing: azd deploys with its Entra ID sign-in; FTP and the SCM site's basic
// credentials would be a second, key-like way in.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-05-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-05-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
