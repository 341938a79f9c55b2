// The portal view: the "mp3pipe" workbook, the alert rule (whatever stops files: failed or rejected files, failed
// submits, the pool not created or not resizing, broken nodes, errors logged, poison queue, dead letters), its email.
param location string
param tags object
param resourceToken string
param workspaceId string
param appInsightsId string
param batchAccountId string
param containers object
param alertEmail string

var workbookText = replace(replace(loadTextContent('../workbook.json'), '__WORKSPACE__', workspaceId), '__BATCH__', batchAccountId)
var placeholders = replace(replace(workbookText, '__INPUT__', containers.input), '__OUTPUT__', containers.output)
var heartbeatQuery = loadTextContent('../heartbeat-query.kql')
var alertQuery = replace(loadTextContent('../alert-query.kql'), '__DEADLETTER__', containers.deadLetter)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'mp3pipe-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'mp3pipe'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: placeholders
    version: 'Notebook/1.0'
  }
}

resource emailGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'mp3pipe'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource problems 'Microsoft.Insights/scheduledQueryRules@2022-08-01-preview' = {
  name: 'mp3pipe-problems-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'mp3pipe: files failing or stopped (pool, nodes, submits), poison queue or dead-lettered events'
    description: 'A file failed or was rejected (a failure report was written), a submit failed, the pool could not be created or resized, a node broke, the app or host logged an error, a blob trigger gave up on a blob (poison queue), or Event Grid could not deliver an event (dead-letter container).'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    skipQueryValidation: true
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: alertQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          // One time series (no dimension split): one rule's price; the alert's query results list each problem.
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        emailGroup.id
      ]
    }
  }
}

// The monitor's heartbeat: it is the only thing that shrinks the pool, so an app that is stopped, fails to start or
// lost its functions leaves the pool at its last size with nothing logged for the rule above to count.
resource heartbeat 'Microsoft.Insights/scheduledQueryRules@2022-08-01-preview' = {
  name: 'mp3pipe-monitor-silent-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'mp3pipe: the monitor has not run for 15 minutes (the pool is not scaled down)'
    description: 'No "monitor" event in 15 minutes: the Function App is stopped, failed to start, or no longer indexes its functions. The monitor timer is the only thing that shrinks the Batch pool, which stays at its last size (and price) until it runs again. Run `mp3pipe --azure doctor`.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    skipQueryValidation: true
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: heartbeatQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        emailGroup.id
      ]
    }
  }
}

output workbookId string = workbook.id
output alertRuleId string = problems.id
output heartbeatRuleId string = heartbeat.id
