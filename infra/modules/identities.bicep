// Two user-assigned identities: one for the Function App, one for the Batch pool's nodes.
param location string
param tags object
param resourceToken string

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-app-${resourceToken}'
  location: location
  tags: tags
}

resource poolIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-pool-${resourceToken}'
  location: location
  tags: tags
}

output appIdentityId string = appIdentity.id
output appIdentityClientId string = appIdentity.properties.clientId
output appPrincipalId string = appIdentity.properties.principalId
output poolIdentityId string = poolIdentity.id
output poolPrincipalId string = poolIdentity.properties.principalId
