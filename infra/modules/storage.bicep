// The storage account: Entra ID only (no shared key), TLS 1.2, no anonymous access; the pipeline's containers.
param location string
param tags object
param resourceToken string
param containers object
param workspaceId string
@description('Queue for file-done / failure notifications (Event Grid writes them); empty: none.')
param notificationQueue string
@description('Days after which Event Grid dead letters and the failed tasks\' logs are deleted.')
@minValue(1)
param deadLetterRetentionDays int
@minValue(1)
param taskLogRetentionDays int
@description('Days after which dropped inputs are deleted; 0 keeps them.')
@minValue(0)
param inputRetentionDays int

resource account 'Microsoft.Storage/storageAccounts@2026-09-01' = {
  //checkov:skip=CKV_AZURE_35: Batch nodes (no VNet) and the Flex app (no VNet integration) reach storage over its public endpoint; access is Entra ID only (shared key off)
  //checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35; anonymous blob access is off and every request needs an Entra ID token
  //checkov:skip=CKV_AZURE_206: LRS is enough: inputs can be dropped again and outputs re-made; geo-replication doubles the storage price
  //checkov:skip=CKV_AZURE_43: the name is 'st' + uniqueString() (15 lower-case letters and digits); checkov cannot evaluate the interpolation
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2026-09-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2026-09-01' = {
  parent: account
  name: 'default'
}

resource notifyQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2026-09-01' = if (!empty(notificationQueue)) {
  parent: queueService
  name: empty(notificationQueue) ? 'none' : notificationQueue
}

resource pipelineContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-09-01' = [for name in items(containers): {
  parent: blobService
  name: name.value
  properties: {
    publicAccess: 'None'
  }
}]

// Lifecycle rules: what only the pipeline reads (dead letters, failed tasks' logs) expires; inputs only if asked for
// (their MP3s stay). A disabled rule keeps a far date, so enabling it by hand in the portal deletes nothing at once.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2026-09-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'dead-letters'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${containers.deadLetter}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: deadLetterRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'task-logs'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${containers.output}/_mp3pipe-logs/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: taskLogRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'inputs'
          enabled: inputRetentionDays > 0
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${containers.input}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: (inputRetentionDays > 0) ? inputRetentionDays : 36500
                }
              }
            }
          }
        }
      ]
    }
  }
}

// Blob and queue write logs feed the workbook (drop -> MP3 latency) and the alert (dead letters, poison queue).
// Reads are not logged: the host's polling would be most of the Log Analytics ingestion.
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'mp3pipe-blob-logs'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
    ]
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'mp3pipe-queue-logs'
  scope: queueService
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output notificationQueue string = empty(notificationQueue) ? '' : notifyQueue.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
