// Role assignments, least privilege, by built-in role GUID (names beside them; tests/infra check each pair).
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
var batchDataContributor = '6aaa78f1-f7de-44ca-8722-c64a23943cae' // Azure Batch Data Contributor
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

// Pool, job and tasks are data-plane calls (Entra ID auth); no account keys, no account management.
resource appBatch 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(batchAccount.id, appPrincipalId, batchDataContributor)
  scope: batchAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', batchDataContributor)
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
  name: guid(batchAccount.id, userPrincipalId, batchDataContributor)
  scope: batchAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', batchDataContributor)
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
