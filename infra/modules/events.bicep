// The Event Grid system topic on the storage account, and the optional "file done / failed" notifications: to a
// webhook (Event Grid validates it with a handshake when the subscription is made: an endpoint that does not answer
// fails `azd provision`) and/or to a Storage queue of this account (no handshake; the topic's identity sends).
// The blob trigger's subscription needs the app's blobs_extension key, so the postdeploy hook makes it.
param location string
param tags object
param resourceToken string
param storageAccountName string
param outputContainer string
param deadLetterContainer string
@secure()
@description('Holds the endpoint\'s secret if it has one (a key in the URL): never in deployment history or outputs.')
param notificationWebhookUrl string
param notificationQueue string

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

// What a notification is about, for either destination: finished files (.mp3) and failure reports (.error.json).
var notifyFilter = {
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
var notifyDeadLetter = {
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
    filter: notifyFilter
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: notifyDeadLetter
  }
}

resource notifyQueue 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (!empty(notificationQueue)) {
  parent: topic
  name: 'mp3pipe-notify-queue'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: account.id
          queueName: notificationQueue
          queueMessageTimeToLiveInSeconds: 604800
        }
      }
    }
    filter: notifyFilter
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: notifyDeadLetter
  }
}

output topicName string = topic.name
output topicPrincipalId string = topic.identity.principalId
