// The Durable Task Scheduler and its task hub: the Durable Functions backend Microsoft recommends for throughput,
// supported on Flex Consumption (learn.microsoft.com/azure/azure-functions/durable/durable-task-scheduler/
// durable-task-scheduler). Deployed only with durableBackend durableTaskScheduler; the app reaches it with its
// managed identity (the role is in rbac.bicep) and the host.json provider is set through app settings (api.bicep),
// so the code and host.json stay the same for both backends. Resource format:
// learn.microsoft.com/azure/templates/microsoft.durabletask/schedulers (API 2026-02-01).

param name string
param location string
param tags object = {}

@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Required by the resource provider; an empty list denies every caller.')
param ipAllowlist array

@description('The task hub: the same name as TASKHUB_NAME (host.json hubName).')
param taskHubName string

resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    // Capacity units apply to Dedicated only; Consumption bills per action.
    sku: skuName == 'Dedicated' ? {
      name: skuName
      capacity: 1
    } : {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' = {
  parent: scheduler
  name: taskHubName
  properties: {}
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
