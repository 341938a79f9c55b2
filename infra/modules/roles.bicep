// Role assignments, least privilege: built-in roles by GUID (names beside them; tests/infra check each pair) and one
// custom role, exactly what the app's Batch adapter sends (tests/test_infra_batch_role.py derives it from a run).
param storageAccountName string
param containers object
param batchAccountName string
param appInsightsName string
param appPrincipalId string
param poolPrincipalId string
param topicPrincipalId string
param notificationQueue string
param userPrincipalId string
param userPrincipalType string

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a' // Storage Queue Data Message Sender
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher

resource account 'Microsoft.Storage/storageAccounts@2026-09-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2026-09-01' existing = {
  parent: account
  name: 'default'
}

resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-09-01' existing = {
  parent: blobService
  name: containers.input
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-09-01' existing = {
  parent: blobService
  name: containers.output
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-09-01' existing = {
  parent: blobService
  name: containers.deadLetter
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2026-09-01' existing = {
  parent: account
  name: 'default'
}

resource notifyQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2026-09-01' existing = {
  parent: queueService
  name: empty(notificationQueue) ? 'none' : notificationQueue
}

resource batchAccount 'Microsoft.Batch/batchAccounts@2025-06-01' existing = {
  name: batchAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The Functions host keeps receipts and timer leases in blobs (Owner is what the host documents for AzureWebJobsStorage);
// the app reads inputs, writes reports, records and the monitor state.
resource appBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The blob trigger's poison queue (webjobs-blobtrigger-poison).
resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageQueueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// What the app (and `mp3pipe --azure status / retry`) sends to Batch's data plane, and nothing else. Batch authorizes
// pool calls by Actions (read: the pool, its node counts and nodes, a start task's stderr; write: resize, stop a
// resize, remove broken nodes) and job calls by DataActions (the job, its tasks, their counts; add, terminate,
// delete tasks). Left out, unlike Azure Batch Data Contributor: deleting pools, applications (packages),
// certificates, job schedules, deployments and alert rules.
resource batchAppRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'mp3pipe-batch-app')
  properties: {
    roleName: 'mp3pipe Batch app ${uniqueString(resourceGroup().id)}'
    description: 'mp3pipe: read and resize its Batch pool, run its job\'s tasks; no pool deletion, no applications.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Batch/batchAccounts/read'
          'Microsoft.Batch/batchAccounts/pools/read'
          'Microsoft.Batch/batchAccounts/pools/write'
        ]
        notActions: []
        dataActions: [
          'Microsoft.Batch/batchAccounts/jobs/read'
          'Microsoft.Batch/batchAccounts/jobs/write'
          'Microsoft.Batch/batchAccounts/jobs/delete'
        ]
        notDataActions: []
      }
    ]
  }
}

resource appBatch 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(batchAccount.id, appPrincipalId, 'mp3pipe-batch-app')
  scope: batchAccount
  properties: {
    roleDefinitionId: batchAppRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The Functions host's diagnostic events (AzureWebJobsStorage__tableServiceUri), as in Microsoft's Flex Consumption
// azd quickstart.
resource appTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with local auth disabled.
resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Nodes download input.mp4 ...
resource poolRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inputContainer.id, poolPrincipalId, storageBlobDataReader)
  scope: inputContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: poolPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ... and upload output.mp3 and failed tasks' logs, nothing else.
resource poolWrite 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, poolPrincipalId, storageBlobDataContributor)
  scope: outputContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: poolPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid writes undeliverable events into the dead-letter container with the system topic's identity.
resource topicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, topicPrincipalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The deploying user: `mp3pipe drop` / `status` (blobs) and `status` / `retry` (Batch tasks) with their own sign-in.
resource userBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(account.id, userPrincipalId, storageBlobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

resource userBatch 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(batchAccount.id, userPrincipalId, 'mp3pipe-batch-app')
  scope: batchAccount
  properties: {
    roleDefinitionId: batchAppRole.id
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Event Grid writes the optional notifications into the queue with the topic's identity (no key, no SAS).
resource topicQueueSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(notificationQueue)) {
  name: guid(notifyQueue.id, topicPrincipalId, storageQueueDataMessageSender)
  scope: notifyQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The custom role's GUID: `mp3pipe --azure doctor` looks for assignments of it.
output batchAppRoleId string = batchAppRole.name
