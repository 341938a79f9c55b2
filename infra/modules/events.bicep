// The Event Grid system topic on the storage account, and the optional "file done / failed" notification.
// The blob trigger's subscription needs the app's blobs_extension key, so the postdeploy hook makes it.
param location string
param tags object
param resourceToken string
param storageAccountName string
param outputContainer string
param deadLetterContainer string
param notificationWebhookUrl string

resource account 'Microsoft.Storage/storageAccounts@2026-09-01' existing = {
  name: storageAccountName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${resourceToken}'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource notify 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (!empty(notificationWebhookUrl)) {
  parent: topic
  name: 'mp3pipe-notify'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: notificationWebhookUrl
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${outputContainer}/'
      advancedFilters: [
        {
          operatorType: 'StringEndsWith'
          key: 'subject'
          values: [
            '.mp3'
            '.error.json'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: account.id
          blobContainerName: deadLetterContainer
        }
      }
    }
  }
}

output topicName string = topic.name
output topicPrincipalId string = topic.identity.principalId
