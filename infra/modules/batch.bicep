// Batch account: Batch-service pool allocation, Entra ID as its only auth mode. The pool is made by the postprovision hook.
param location string
param tags object
param resourceToken string

resource account 'Microsoft.Batch/batchAccounts@2025-06-01' = {
  //checkov:skip=CKV_AZURE_76: Batch keeps only pool and task metadata here (media stays in storage); Microsoft-managed keys, no Key Vault to run
  name: 'ba${resourceToken}'
  location: location
  tags: tags
  properties: {
    poolAllocationMode: 'BatchService'
    allowedAuthenticationModes: [
      'AAD'
    ]
    publicNetworkAccess: 'Enabled'
  }
}

output name string = account.name
output id string = account.id
output accountUrl string = 'https://${account.properties.accountEndpoint}'
