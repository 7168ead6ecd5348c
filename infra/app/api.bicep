// The Function App: Flex Consumption, Python 3.11, the user-assigned identity for everything.
//
// Flex Consumption's limits shape the product (learn.microsoft.com/azure/azure-functions/flex-consumption-plan):
// - app initialization has 30 seconds: function_app.py imports only the Functions and Durable SDKs, shared/ loads
//   Graph, Key Vault and Tables lazily (README "cold start");
// - timer schedules are UTC (no WEBSITE_TIME_ZONE): CERTAUTH_EXPIRY_SCHEDULE is an NCRONTAB in UTC;
// - no platform certificates (no WEBSITE_LOAD_CERTIFICATES): certificates live in Key Vault and tokens are signed
//   by Key Vault's sign operation, the private key never reaching the app;
// - the runtime comes from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not
//   app settings here (Flex refuses them); the code is deployed from a blob container (no SCM or FTP credentials).
//
// App settings are built from the *Settings variables below and main.bicep's productSettings; the offline checks
// read them (tests/infra) and compare them with what the code reads.

param name string
param location string
param tags object = {}
param appServicePlanId string
param storageAccountName string
param deploymentContainerName string
param identityId string
param identityClientId string
param applicationInsightsName string

@description('The product\'s own settings (main.bicep).')
param productSettings object

@description('Public root of the product\'s URLs (API Management, a custom domain); empty: the app\'s own https host name.')
param publicBaseUrl string = ''

@allowed([
  'azureStorage'
  'durableTaskScheduler'
])
param durableBackend string = 'azureStorage'

@description('The scheduler\'s endpoint (durableBackend durableTaskScheduler).')
param durableTaskSchedulerEndpoint string = ''

param maximumInstanceCount int = 100
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Identity-based host storage (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-
// storage-with-an-identity): no AzureWebJobsStorage connection string exists. The Durable Azure Storage provider
// uses the same connection (blobs, queues, tables), and shared/settings.py finds the product's Table endpoint in
// TABLES_ENDPOINT (main.bicep), else in AzureWebJobsStorage__tableServiceUri.
var storageSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
}

// Local auth is off on the component: the SDK authenticates as the identity (Monitoring Metrics Publisher, rbac.bicep).
// The connection string holds the instrumentation key and the ingestion endpoint; without local auth it admits
// nothing without an Entra token.
var monitoringSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// The Durable Task Scheduler backend without a code or host.json change: app settings override host.json
// (AzureFunctionsJobHost__<path>, learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-
// values), here extensions.durableTask.storageProvider {type: azureManaged, connectionStringName}, as Microsoft's
// host.json for the scheduler has it (learn.microsoft.com/azure/azure-functions/durable/durable-task-scheduler/
// quickstart-durable-task-scheduler). The connection string names the identity and no secret
// (durable-task-scheduler-identity: Endpoint=...;Authentication=ManagedIdentity;ClientID=...). host.json's extension
// bundle [4.*, 5.0.0) carries the azureManaged provider, Microsoft.Azure.WebJobs.Extensions.DurableTask.AzureManaged
// (e.g. bundle 4.38.1 took it to 1.10.0: Azure/azure-functions-extension-bundles#735). The hub stays %TASKHUB_NAME%.
var durableTaskSchedulerSettings = durableBackend == 'durableTaskScheduler' ? {
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'
} : {}

var appSettings = union(productSettings, storageSettings, monitoringSettings, durableTaskSchedulerSettings)

module site 'br/public:avm/res/web/site:0.24.0' = {
  name: 'site'
  params: {
    name: name
    location: location
    tags: union(tags, {
      'azd-service-name': 'api'
    })
    kind: 'functionapp,linux'
    serverFarmResourceId: appServicePlanId
    managedIdentities: {
      systemAssigned: false
      userAssignedResourceIds: [
        identityId
      ]
    }
    // Key Vault references (CERTAUTH_ALERT_WEBHOOK_URL) resolve with the user-assigned identity; without this the
    // platform would use a system-assigned identity, which the app does not have.
    keyVaultAccessIdentityResourceId: identityId
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    // azd deploys with an Entra token (OneDeploy); basic publishing credentials stay off.
    basicPublishingCredentialsPolicies: [
      {
        name: 'ftp'
        allow: false
      }
      {
        name: 'scm'
        allow: false
      }
    ]
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Links, the consent callback (the apps' redirect URI) and pages are built from CERTAUTH_PUBLIC_BASE_URL, never from
// a request's Host header: without a custom root it is the app's own host name, known once the site exists (Flex
// apps get a unique default host name), so the settings are written here, after the site, not by the module.
var publicUrlSettings = {
  CERTAUTH_PUBLIC_BASE_URL: !empty(publicBaseUrl) ? publicBaseUrl : 'https://${site.outputs.defaultHostname}'
}

resource existingSite 'Microsoft.Web/sites@2024-11-01' existing = {
  name: name
}

// This template is the settings' source of truth: a redeploy replaces them all (a setting it no longer sets goes).
// checkov reads every Microsoft.Web/sites/config as the 'web' config; these are app settings, and the checks skipped
// below do not apply to a Flex Consumption Python app or are refused by the product's design. (The skips are spread
// out: checkov's Bicep parser fails on more than four comment lines in a row inside an object.)
resource siteSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  // checkov:skip=CKV_AZURE_13:Easy Auth would block what must stay anonymous (the consent callback, links, status URLs, each protected by its own signature); the API uses function keys
  // checkov:skip=CKV_AZURE_222:customers' browsers and pollers (Logic Apps) must reach the consent callback, links and status URLs; put API Management or a private endpoint in front for a private API
  parent: existingSite
  // checkov:skip=CKV_AZURE_63:App Service HTTP file logs do not exist on Flex Consumption; requests go to Application Insights
  // checkov:skip=CKV_AZURE_66:failed request tracing is an App Service file log, absent on Flex Consumption; failures go to Application Insights
  name: 'appsettings'
  // checkov:skip=CKV_AZURE_65:detailed error pages are an App Service (IIS) setting, absent on Flex Consumption; errors answer in Azure's JSON shape with a correlation id
  // checkov:skip=CKV_AZURE_80:a Python app, no .NET Framework
  properties: union(appSettings, publicUrlSettings)
  // checkov:skip=CKV_AZURE_88:Flex Consumption has no Azure Files content share; the package is deployed from a blob container
  dependsOn: [
    site
  ]
}

output name string = site.outputs.name
output defaultHostname string = site.outputs.defaultHostname
output publicBaseUrl string = publicUrlSettings.CERTAUTH_PUBLIC_BASE_URL
