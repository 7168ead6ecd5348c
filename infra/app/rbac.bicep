// Every role assignment of the deployment, each at the narrowest scope that works. Built-in role definition ids
// (learn.microsoft.com/azure/role-based-access-control/built-in-roles) are named beside each GUID.

@description('The user-assigned identity\'s principal (object) id.')
param principalId string
param storageAccountName string
param applicationInsightsName string
@description('The certificates\' vault.')
param keyVaultName string

@description('The vault of the product\'s own secrets: the signing key, and the alert webhook URL if any.')
param signingKeyVaultName string

@allowed([
  'azureStorage'
  'durableTaskScheduler'
])
param durableBackend string = 'azureStorage'
param durableTaskSchedulerName string = ''
param taskHubName string = 'certauth'

@description('The consuming product\'s identity, given Key Vault Secrets User on the certificates\' vault when exportable keys are allowed; empty: none.')
param consumerPrincipalId string = ''

@description('A developer running the app locally against these vaults; empty: none.')
param developerPrincipalId string = ''

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
  keyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985' // Key Vault Certificates Officer
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424' // Key Vault Crypto User
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402' // Durable Task Data Contributor
}

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource signingVault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: signingKeyVaultName
}

// -- Storage: the host, the Durable Azure Storage provider, the Flex deployment container, the product's tables --

// Blob Data Owner at the account: identity-based AzureWebJobsStorage needs it (learn.microsoft.com/azure/
// azure-functions/functions-reference#connecting-to-host-storage-with-an-identity); it covers the Flex deployment
// container (which azd writes and the platform reads as this identity) and the Durable provider's lease and
// large-message containers, which the host creates at run time.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Queues: the Durable Azure Storage provider's control and work-item queues (not used by the scheduler backend).
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (durableBackend == 'azureStorage') {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Tables: the Durable Azure Storage provider's history and instances tables, and the product's own tables
// (onboardings, certificates, audit, the expiry index), which shared/state.py creates on first use.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// -- Monitoring: telemetry with an Entra token (local auth is off on the component) --
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// -- Key Vault: the certificates' vault --

// Certificates: create, import (PFX), the CSR's pending operation and merge, versions, policy, disable, delete.
resource certificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCertificatesOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Keys: read a certificate's key and sign with it (client assertions, addKey / removeKey proofs), so a
// non-exportable private key never leaves the vault.
resource cryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultCryptoUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Exportable keys: the consuming product, not certauth, reads the certificates' secrets (their PFX). Key Vault has no
// per-name conditions for this role and the certificates are created at run time, so the scope is the vault: the
// certificates' vault only, which holds no other secret (the signing key and the webhook URL are in signingVault).
resource consumerSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(consumerPrincipalId)) {
  name: guid(vault.id, consumerPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: consumerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// A developer's `func start` against these vaults (README): the app's own Key Vault roles, no more.
resource developerCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(developerPrincipalId)) {
  name: guid(vault.id, developerPrincipalId, roles.keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCertificatesOfficer)
    principalId: developerPrincipalId
    principalType: 'User'
  }
}

resource developerCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(developerPrincipalId)) {
  name: guid(vault.id, developerPrincipalId, roles.keyVaultCryptoUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoUser)
    principalId: developerPrincipalId
    principalType: 'User'
  }
}

// -- Key Vault: the product's own secrets' vault (signingVault) --

// The signing key: list its versions, read them, add one (the product creates the key on first use); and the alert
// webhook's secret, for its Key Vault reference. Vault scope, on a vault that holds nothing else: no secret needs to
// exist before the role, and the identity still never reads a certificate's secret (the certificates' vault).
resource signingKeyOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signingVault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: signingVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource developerSigningKeyOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(developerPrincipalId)) {
  name: guid(signingVault.id, developerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: signingVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: developerPrincipalId
    principalType: 'User'
  }
}

// -- Durable Task Scheduler: the task hub only (another app on the scheduler gets its own hub) --
resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' existing = if (durableBackend == 'durableTaskScheduler') {
  name: !empty(durableTaskSchedulerName) ? durableTaskSchedulerName : 'none'
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' existing = if (durableBackend == 'durableTaskScheduler') {
  parent: scheduler
  name: taskHubName
}

resource taskHubContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (durableBackend == 'durableTaskScheduler') {
  name: guid(scheduler.id, taskHubName, principalId, roles.durableTaskDataContributor)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
