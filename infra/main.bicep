// certauth on Azure: a Flex Consumption Function App (Python 3.11) with a user-assigned managed identity, its
// storage (no shared keys), two Key Vaults (RBAC, soft delete, purge protection: the certificates' vault and the
// product's own secrets' vault), Application Insights without local auth on a Log Analytics workspace, and optionally
// the Durable Task Scheduler as the Durable Functions backend.
//
// Layout and conventions follow Azure-Samples functions-quickstart-python-http-azd and
// durable-functions-quickstart-python-azd: subscription scope, a resource group per azd environment, names from
// abbreviations.json + a resourceToken, Azure Verified Modules pinned by version (br/public:avm/res/...:x.y.z), the
// app in app/api.bicep and every role assignment in app/rbac.bicep.
//
// Written without the spread operator (...): the offline checks parse this with tree-sitter-bicep, which does
// not know it (tests/infra). `az bicep build --file infra/main.bicep` compiles it where the Bicep CLI exists.
//
// Nothing secret goes in or out: no @secure() parameter, no output that carries a key, a connection string or a
// secret value. The product's signing key is created by the product itself, in its own vault (signingKeyVault).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; with the subscription and location it makes the resourceToken of every name.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer Flex Consumption (az functionapp list-flexconsumption-locations) and, with durableBackend durableTaskScheduler, the Durable Task Scheduler.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Optional name overrides (empty: abbreviation + resourceToken). A new name is the way to redeploy while a deleted vault is still held by purge protection.')
param resourceGroupName string = ''
param functionAppName string = ''
param identityName string = ''
param appServicePlanName string = ''
param storageAccountName string = ''
@maxLength(24)
param keyVaultName string = ''
@description('The signing-key vault\'s name override; it must differ from keyVaultName (one vault would let a consumer of exportable certificates read the signing key).')
@maxLength(24)
param signingKeyVaultName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''
param durableTaskSchedulerName string = ''

@description('The Durable Functions backend. azureStorage: the default provider, in the app\'s storage account. durableTaskScheduler: Microsoft\'s managed backend for throughput (supported on Flex Consumption); same code, the host.json provider set through app settings.')
@allowed([
  'azureStorage'
  'durableTaskScheduler'
])
param durableBackend string = 'azureStorage'

@description('Durable Task Scheduler SKU (durableBackend durableTaskScheduler).')
@allowed([
  'Consumption'
  'Dedicated'
])
param durableTaskSchedulerSku string = 'Consumption'

@description('IP ranges allowed to reach the Durable Task Scheduler (required by the resource provider: an empty list denies everything). Flex Consumption has no fixed outbound addresses without a virtual network, so the default is open; every caller still needs its Entra identity and the Durable Task Data Contributor role.')
param durableTaskSchedulerIpAllowlist array = [
  '0.0.0.0/0'
]

@description('Durable Functions task hub (TASKHUB_NAME, host.json hubName; the Durable Task Scheduler\'s task hub resource has the same name).')
@minLength(3)
@maxLength(45)
param taskHubName string = 'certauth'

@description('The secret, in the signing-key vault, whose versions sign the product\'s capability URLs (CERTAUTH_SIGNING_KEY_SECRET); the product creates it on first use.')
@minLength(1)
@maxLength(127)
param signingKeySecretName string = 'certauth-signing-key'

@description('Days a deleted vault (either of the two) stays recoverable (7-90). With purge protection the name stays taken for that long.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90

@description('Client id of the multi-tenant onboarding app (infra/scripts/onboarding-apps.*); empty until the script has run.')
param provisionerClientId string = ''

@description('Client id of the multi-tenant read-only verifier app of the manual method; empty until the script has run.')
param verifierClientId string = ''

@description('Public root of the product\'s URLs (API Management, a custom domain), https, without a trailing slash; empty: the Function App\'s own https host name.')
param publicBaseUrl string = ''

@description('Name of a secret, in the signing-key vault (AZURE_SIGNING_KEY_VAULT_NAME), that holds the alert webhook URL (a Logic App trigger URL carries its signature): the app setting is then a Key Vault reference, which the identity resolves with its Secrets Officer role on that vault. Create the secret first: an unresolved reference reaches the app as its own text, which the app refuses. Not in the certificates\' vault, where a consumer of exportable certificates could read it. Empty: no webhook.')
param alertWebhookSecretName string = ''

@description('The webhook\'s payload: json (certauth.alert/v1) or teams (an Adaptive Card for a Teams workflow).')
@allowed([
  'json'
  'teams'
])
param alertWebhookFormat string = 'json'

@description('The mailbox that sends alert mail (Graph sendMail as the managed identity: Exchange RBAC for Applications, see infra/scripts); empty: no mail.')
param alertMailFrom string = ''

@description('Comma-separated alert mail recipients.')
param alertMailTo string = ''

@description('Days before notAfter at which an alert is raised, comma-separated (1-365, distinct).')
param alertThresholdsDays string = '30,14,7,3,1'

@description('NCRONTAB schedule of the expiry monitor, in UTC (Flex Consumption has no time zones).')
param expirySchedule string = '0 0 6 * * *'

@description('A rotation starts this many days before notAfter (0: no automatic rotation).')
@minValue(0)
@maxValue(3650)
param rotateBeforeDays int = 30

@description('Hours the old key stays on the app after a rotation\'s proof.')
@minValue(0)
@maxValue(720)
param rotationGraceHours int = 24

@description('Lets requests ask for exportable private keys (a PFX in the vault, read by the consuming product).')
param allowExportableKeys bool = false

@description('Object id of the consuming product\'s identity that reads exportable certificates (Key Vault Secrets User on the certificates\' vault, not the signing-key vault) when allowExportableKeys is true. certauth itself never reads a certificate\'s secret.')
param consumerPrincipalId string = ''

@description('Object id of a developer who runs the app locally (func start) against these vaults: gets the same Key Vault roles as the app. Empty: none.')
param developerPrincipalId string = ''

@description('Flex Consumption scale: the most instances, and each instance\'s memory.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}certauth-${resourceToken}'
var vaultName = !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
// kv-sig- and the 13-character resourceToken: 20 characters (Key Vault names are 3-24).
var signingVaultName = !empty(signingKeyVaultName) ? signingKeyVaultName : '${abbrs.keyVaultVaults}sig-${resourceToken}'
// The Flex deployment package lives in a blob container of the app's own storage account.
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'
var useDurableTaskScheduler = durableBackend == 'durableTaskScheduler'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// The product's only identity: Table Storage, Key Vault, the host's storage, Application Insights, the Durable
// Task Scheduler, Graph in the home tenant, and (through federated credentials) the two multi-tenant apps.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.6.0' = {
  name: 'identity'
  scope: rg
  params: {
    name: !empty(identityName) ? identityName : '${abbrs.managedIdentityUserAssignedIdentities}certauth-${resourceToken}'
    location: location
    tags: tags
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.7.0' = {
  name: 'plan'
  scope: rg
  params: {
    name: !empty(appServicePlanName) ? appServicePlanName : '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    skuName: 'FC1'
    kind: 'functionapp'
    reserved: true
    zoneRedundant: false
  }
}

// Shared keys off: the host (AzureWebJobsStorage__*), the Durable Azure Storage provider, the Flex deployment
// container and the product's own tables all use the managed identity.
module storage 'br/public:avm/res/storage/storage-account:0.33.0' = {
  name: 'storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    kind: 'StorageV2'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
          publicAccess: 'None'
        }
      ]
    }
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.16.1' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

// Local auth off: telemetry is accepted only with an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING names
// the identity, which holds Monitoring Metrics Publisher on the component).
module applicationInsights 'br/public:avm/res/insights/component:0.8.0' = {
  name: 'applicationInsights'
  scope: rg
  params: {
    name: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

// The certificates' vault. RBAC only (no access policies); soft delete and purge protection on: a deleted vault and
// its certificates stay recoverable for keyVaultSoftDeleteRetentionInDays and cannot be purged before, so `azd down
// --purge` cannot purge it and a redeploy needs another vault name (another environment name, or keyVaultName) until
// then. It holds certificates only: with exportable keys the consuming product gets Key Vault Secrets User on it.
module keyVault 'br/public:avm/res/key-vault/vault:0.14.0' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: vaultName
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    enablePurgeProtection: true
    enableVaultForDeployment: false
    enableVaultForTemplateDeployment: false
    enableVaultForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// The product's own secrets: the signing key (CERTAUTH_SIGNING_KEY_SECRET, which signs status URLs, onboarding links
// and consent states: shared/signing.py) and the alert webhook's secret, if any. A vault of their own because Key
// Vault Secrets User cannot be scoped to the certificates created at run time: a consuming product of exportable
// certificates gets it on the whole certificates' vault, and in that vault it could read the signing key and forge
// those URLs. Only the app's identity (and developerPrincipalId, if set) holds a data role here: Key Vault Secrets
// Officer on the vault (app/rbac.bicep), so no secret has to exist before its role does. The product lists the
// secret's versions, finds none and adds the first 32-byte key itself, which no template, parameter, deployment
// history or output ever holds. Set up as the certificates' vault (purge protection keeps a deleted key recoverable).
module signingKeyVault 'br/public:avm/res/key-vault/vault:0.14.0' = {
  name: 'signingKeyVault'
  scope: rg
  params: {
    name: signingVaultName
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    enablePurgeProtection: true
    enableVaultForDeployment: false
    enableVaultForTemplateDeployment: false
    enableVaultForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module durableTaskScheduler 'app/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {
  name: 'durableTaskScheduler'
  scope: rg
  params: {
    name: !empty(durableTaskSchedulerName) ? durableTaskSchedulerName : '${abbrs.durableTaskSchedulers}${resourceToken}'
    location: location
    tags: tags
    skuName: durableTaskSchedulerSku
    ipAllowlist: durableTaskSchedulerIpAllowlist
    taskHubName: taskHubName
  }
}

// Every setting shared/settings.py reads that has no default in the code, and the ones an operator sets here
// (tests/infra/test_settings_crosscheck.py checks both ways). Host settings (storage, monitoring, the Durable
// backend) are added in app/api.bicep.
var productSettings = {
  AZURE_CLIENT_ID: identity.outputs.clientId
  KEY_VAULT_URL: keyVault.outputs.uri
  TABLES_ENDPOINT: storage.outputs.serviceEndpoints.table
  TASKHUB_NAME: taskHubName
  CERTAUTH_HOME_TENANT_ID: tenant().tenantId
  CERTAUTH_PROVISIONER_CLIENT_ID: provisionerClientId
  CERTAUTH_VERIFIER_CLIENT_ID: verifierClientId
  CERTAUTH_SIGNING_KEY_SECRET: signingKeySecretName
  CERTAUTH_SIGNING_KEY_VAULT_URL: signingKeyVault.outputs.uri
  CERTAUTH_ALLOW_EXPORTABLE_KEYS: allowExportableKeys ? 'true' : 'false'
  CERTAUTH_EXPIRY_SCHEDULE: expirySchedule
  CERTAUTH_ALERT_THRESHOLDS_DAYS: alertThresholdsDays
  CERTAUTH_ROTATE_BEFORE_DAYS: string(rotateBeforeDays)
  CERTAUTH_ROTATION_GRACE_HOURS: string(rotationGraceHours)
  CERTAUTH_ALERT_WEBHOOK_FORMAT: alertWebhookFormat
  CERTAUTH_ALERT_MAIL_FROM: alertMailFrom
  CERTAUTH_ALERT_MAIL_TO: alertMailTo
}

// The webhook URL carries a secret (a Logic App trigger's sig=): the setting is a Key Vault reference to the
// signing-key vault (not the certificates' vault a consumer may read), resolved by the platform with
// keyVaultReferenceIdentity (the user-assigned identity); without a secret name, no webhook.
var alertWebhookSettings = empty(alertWebhookSecretName) ? {
  CERTAUTH_ALERT_WEBHOOK_URL: ''
} : {
  CERTAUTH_ALERT_WEBHOOK_URL: '@Microsoft.KeyVault(VaultName=${signingKeyVault.outputs.name};SecretName=${alertWebhookSecretName})'
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: appName
    location: location
    tags: tags
    appServicePlanId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    applicationInsightsName: applicationInsights.outputs.name
    productSettings: union(productSettings, alertWebhookSettings)
    publicBaseUrl: publicBaseUrl
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useDurableTaskScheduler ? durableTaskScheduler.outputs.endpoint : ''
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: applicationInsights.outputs.name
    keyVaultName: keyVault.outputs.name
    signingKeyVaultName: signingKeyVault.outputs.name
    durableBackend: durableBackend
    durableTaskSchedulerName: useDurableTaskScheduler ? durableTaskScheduler.outputs.name : ''
    taskHubName: taskHubName
    consumerPrincipalId: allowExportableKeys ? consumerPrincipalId : ''
    developerPrincipalId: developerPrincipalId
  }
}

// Names and ids only: azd writes these into .azure/<env>/.env; the scripts and the README read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostname}'
output CERTAUTH_PUBLIC_BASE_URL string = api.outputs.publicBaseUrl
output CERTAUTH_CALLBACK_URL string = '${api.outputs.publicBaseUrl}/api/onboard/callback'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_SIGNING_KEY_VAULT_NAME string = signingKeyVault.outputs.name
output CERTAUTH_SIGNING_KEY_VAULT_URL string = signingKeyVault.outputs.uri
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output DURABLE_BACKEND string = durableBackend
