"""infra/*.bicep, parsed offline with tree-sitter-bicep: the templates parse, and what matters most to a security
review holds in them (checkov's Bicep rules cover little of it and never look inside registry modules)."""

from __future__ import annotations

import json
import re

import pytest

from shared.settings import Settings
from tests.infra import bicep
from tests.infra.bicep import INFRA, ROOT

MAIN = INFRA / "main.bicep"
API = INFRA / "app" / "api.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
SCHEDULER = INFRA / "app" / "durable-task-scheduler.bicep"
# Azure's built-in role definitions (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "a4417e6f-fecd-4de8-b567-7b0420556985": "Key Vault Certificates Officer",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "0ad04412-c4d5-4796-b79c-f76d14c8d402": "Durable Task Data Contributor",
}


def module_params(path, name: str):
    """(parsed template, the params object of module `name`)."""
    template = bicep.parse(path)
    return template, template.get(template.body(template.declarations("module")[name]), "params")


@pytest.mark.parametrize("path", bicep.templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_template_parses_without_errors(path):
    assert bicep.parse(path).errors() == []


def test_the_parser_would_see_a_spread_or_a_broken_template():
    spread = bicep.parse_text(MAIN, "var a = {}\nvar b = {\n  ...a\n  c: 1\n}\n")
    broken = bicep.parse_text(MAIN, "param x string\nvar y = { z: \n")
    assert spread.errors()
    assert broken.errors()


def test_the_expected_files_exist():
    for name in ("azure.yaml", "infra/main.bicep", "infra/main.parameters.json", "infra/abbreviations.json",
                 "infra/app/api.bicep", "infra/app/rbac.bicep", "infra/scripts/onboarding-apps.ps1",
                 "infra/scripts/onboarding-apps.sh"):
        assert (ROOT / name).is_file(), name


def test_main_is_at_subscription_scope_and_registry_modules_are_pinned_avm():
    template = bicep.parse(MAIN)
    assert re.search(r"^targetScope = 'subscription'$", template.source.decode(), re.MULTILINE)
    for path in bicep.app_templates():
        current = bicep.parse(path)
        for name, declaration in current.declarations("module").items():
            source = current.type_string(declaration)
            if source.startswith("br"):
                assert re.fullmatch(r"br/public:avm/res/[a-z0-9/-]+:\d+\.\d+\.\d+", source), (path.name, name, source)
            else:
                assert (path.parent / source).is_file(), (path.name, name, source)


def test_storage_has_no_shared_keys_and_no_public_blobs():
    template, params = module_params(MAIN, "storage")
    assert template.value(template.get(params, "allowSharedKeyAccess")) is False
    assert template.value(template.get(params, "allowBlobPublicAccess")) is False
    assert template.value(template.get(params, "defaultToOAuthAuthentication")) is True
    assert template.value(template.get(params, "minimumTlsVersion")) == "TLS1_2"
    containers = template.get(params, "blobServices.containers")
    names = [template.text(template.get(c, "name")) for c in containers.named_children if c.type == "object"]
    assert names == ["deploymentContainerName"]


@pytest.mark.parametrize("module", ["keyVault", "signingKeyVault"])
def test_key_vault_is_rbac_only_with_soft_delete_and_purge_protection(module):
    template, params = module_params(MAIN, module)
    assert template.value(template.get(params, "enableRbacAuthorization")) is True
    assert template.value(template.get(params, "enablePurgeProtection")) is True
    assert template.value(template.get(params, "enableSoftDelete")) is True
    assert template.text(template.get(params, "softDeleteRetentionInDays")) == "keyVaultSoftDeleteRetentionInDays"
    assert "accessPolicies" not in template.properties(params)
    for flag in ("enableVaultForDeployment", "enableVaultForTemplateDeployment", "enableVaultForDiskEncryption"):
        assert template.value(template.get(params, flag)) is False, flag


def test_the_signing_key_has_a_vault_of_its_own_set_up_as_the_certificates_vault():
    main = bicep.parse(MAIN)
    modules = main.declarations("module")
    # The same AVM module and version, and the same network exposure, as the certificates' vault.
    assert main.type_string(modules["signingKeyVault"]) == main.type_string(modules["keyVault"])
    _, certificates = module_params(MAIN, "keyVault")
    _, signing = module_params(MAIN, "signingKeyVault")
    for key in ("sku", "publicNetworkAccess", "networkAcls", "location", "tags"):
        assert main.text(main.get(signing, key)) == main.text(main.get(certificates, key)), key
    assert main.text(main.get(certificates, "name")) == "vaultName"
    assert main.text(main.get(signing, "name")) == "signingVaultName"
    # Default names: the abbreviation, the 13-character resourceToken (uniqueString); Key Vault names are 3-24 of
    # letters, digits and single hyphens, starting with a letter. The two differ.
    abbrs = json.loads((INFRA / "abbreviations.json").read_text())
    variables = main.declarations("variable")
    defaults = []
    for name in ("vaultName", "signingVaultName"):
        text = main.text(variables[name].named_children[-1])
        template = re.fullmatch(r"!empty\((\w+)\) \? \1 : '(.*)'", text)
        assert template, (name, text)
        default = re.sub(r"\$\{abbrs\.(\w+)\}", lambda m: abbrs[m[1]], template[2]).replace(
            "${resourceToken}", "a" * 13)
        assert "$" not in default, (name, default)
        assert re.fullmatch(r"[a-z](?!.*--)[a-z0-9-]{1,22}[a-z0-9]", default), (name, default)
        defaults.append(default)
        override = main.declarations("parameter")[template[1]]
        assert "maxLength" in main.decorators(override), template[1]
    assert defaults[0] != defaults[1]
    assert defaults[1] == "kv-sig-" + "a" * 13
    # The app reads the signing key from that vault; certificates stay on KEY_VAULT_URL.
    product = main.properties(variables["productSettings"].named_children[-1])
    assert main.text(product["KEY_VAULT_URL"]) == "keyVault.outputs.uri"
    assert main.text(product["CERTAUTH_SIGNING_KEY_VAULT_URL"]) == "signingKeyVault.outputs.uri"
    assert main.text(product["CERTAUTH_SIGNING_KEY_SECRET"]) == "signingKeySecretName"
    default_secret = main.value(main.declarations("parameter")["signingKeySecretName"].named_children[-1])
    assert default_secret == Settings().signing_key_secret
    # The alert webhook's secret is a product secret too: its Key Vault reference names the signing-key vault.
    webhook = main.text(variables["alertWebhookSettings"].named_children[-1])
    assert "VaultName=${signingKeyVault.outputs.name};" in webhook
    assert "keyVault.outputs" not in webhook
    # rbac.bicep gets both vaults, each by its module's name.
    _, rbac = module_params(MAIN, "rbac")
    assert main.text(main.get(rbac, "keyVaultName")) == "keyVault.outputs.name"
    assert main.text(main.get(rbac, "signingKeyVaultName")) == "signingKeyVault.outputs.name"
    assert main.text(main.get(rbac, "consumerPrincipalId")) == "allowExportableKeys ? consumerPrincipalId : ''"


def test_the_templates_create_no_secret():
    # The product adds the signing key's first version itself: no placeholder, no secret resource, no value.
    assert not (INFRA / "app" / "signing-key.bicep").exists()
    for path in bicep.app_templates():
        template = bicep.parse(path)
        for name, declaration in template.declarations("resource").items():
            kind = template.type_string(declaration)
            assert not kind.startswith("Microsoft.KeyVault/vaults/secrets@"), (path.name, name, kind)
            if kind.startswith("Microsoft.KeyVault/"):  # the vaults come from the AVM modules in main.bicep
                assert re.search(r"'\s+existing\s+=", template.text(declaration).split("{", 1)[0]), (path.name, name)


def test_application_insights_has_local_auth_off_on_a_workspace():
    template, params = module_params(MAIN, "applicationInsights")
    assert template.value(template.get(params, "disableLocalAuth")) is True
    assert template.text(template.get(params, "workspaceResourceId")) == "logAnalytics.outputs.resourceId"


def test_host_storage_and_telemetry_use_the_identity():
    template = bicep.parse(API)
    variables = template.declarations("variable")
    storage = template.properties(variables["storageSettings"].named_children[-1])
    assert template.value(storage["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert template.text(storage["AzureWebJobsStorage__clientId"]) == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert template.text(storage[f"AzureWebJobsStorage__{service}ServiceUri"]) == (
            f"storage.properties.primaryEndpoints.{service}")
    monitoring = template.properties(variables["monitoringSettings"].named_children[-1])
    assert template.text(monitoring["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]) == (
        "'ClientId=${identityClientId};Authorization=AAD'")
    # No key-based connection anywhere: no plain AzureWebJobsStorage, no account key, no listKeys().
    every_setting = bicep.app_settings([bicep.parse(p) for p in bicep.app_templates()])
    assert "AzureWebJobsStorage" not in every_setting
    for path in bicep.app_templates():
        text = path.read_text()
        for forbidden in ("AccountKey=", "listKeys(", "listSecrets("):
            assert forbidden not in text, (path.name, forbidden)


def test_the_app_is_flex_consumption_python_311_with_the_user_assigned_identity():
    plan_template, plan = module_params(MAIN, "plan")
    assert plan_template.value(plan_template.get(plan, "skuName")) == "FC1"
    template, site = module_params(API, "site")
    assert template.value(template.get(site, "functionAppConfig.runtime.name")) == "python"
    assert template.value(template.get(site, "functionAppConfig.runtime.version")) == "3.11"
    assert template.value(template.get(site, "managedIdentities.systemAssigned")) is False
    assert template.text(template.get(site, "managedIdentities.userAssignedResourceIds")).split() == [
        "[", "identityId", "]"]
    assert template.text(template.get(site, "keyVaultAccessIdentityResourceId")) == "identityId"
    deployment = template.get(site, "functionAppConfig.deployment.storage")
    assert template.value(template.get(deployment, "authentication.type")) == "UserAssignedIdentity"
    assert template.text(template.get(deployment, "authentication.userAssignedIdentityResourceId")) == "identityId"
    assert "deploymentContainerName" in template.text(template.get(deployment, "value"))
    # Every setting reaches the app (one appsettings resource, after the site), and links and the consent callback
    # get a public root even without a custom domain: the app's own https host name.
    settings = template.body(template.declarations("resource")["siteSettings"])
    assert template.value(template.get(settings, "name")) == "appsettings"
    assert template.text(template.get(settings, "properties")) == "union(appSettings, publicUrlSettings)"
    public = template.properties(template.declarations("variable")["publicUrlSettings"].named_children[-1])
    assert template.text(public["CERTAUTH_PUBLIC_BASE_URL"]) == (
        "!empty(publicBaseUrl) ? publicBaseUrl : 'https://${site.outputs.defaultHostname}'")
    assert template.text(template.declarations("variable")["appSettings"].named_children[-1]) == (
        "union(productSettings, storageSettings, monitoringSettings, durableTaskSchedulerSettings)")


def test_no_secret_goes_in_or_out():
    for path in bicep.app_templates():
        template = bicep.parse(path)
        for name, declaration in template.declarations("parameter").items():
            assert "secure" not in template.decorators(declaration), f"{path.name}: @secure() param {name}"
        for name, declaration in template.declarations("output").items():
            value = template.text(declaration.named_children[-1])
            # Names and ids may be output (secretName, KEY_VAULT_URL); values of secrets, keys and connection
            # strings may not.
            assert not re.search(r"(?i)(secret|password|token|connection_?string|_?key)$", name), (path.name, name)
            assert not re.search(r"(?i)listkeys|listsecrets|connectionstring|instrumentationkey|accesskey"
                                 r"|\.properties\.value|primaryKey|sharedKey", value), (path.name, name, value)


def test_every_role_is_a_built_in_named_beside_its_guid_and_scoped_narrowly():
    template = bicep.parse(RBAC)
    lines = template.source.decode().splitlines()
    roles = template.properties(template.declarations("variable")["roles"].named_children[-1])
    for key, node in roles.items():
        guid = template.value(node)
        assert guid in BUILT_IN_ROLES, (key, guid)
        assert lines[node.start_point[0]].rstrip().endswith(f"// {BUILT_IN_ROLES[guid]}"), key
    scopes = {}
    for name, declaration in template.declarations("resource").items():
        if template.type_string(declaration).startswith("Microsoft.Authorization/roleAssignments@"):
            body = template.body(declaration)
            role = template.text(template.get(body, "properties.roleDefinitionId"))
            assert re.fullmatch(r"subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', roles\.\w+\)",
                                role), (name, role)
            scopes[name] = (role.split("roles.")[1].rstrip(")"), template.text(template.get(body, "scope")))
    assert scopes["certificatesOfficer"] == ("keyVaultCertificatesOfficer", "vault")
    assert scopes["cryptoUser"] == ("keyVaultCryptoUser", "vault")
    assert scopes["metricsPublisher"] == ("monitoringMetricsPublisher", "applicationInsights")
    assert scopes["taskHubContributor"] == ("durableTaskDataContributor", "taskHub")
    assert {scopes[n][0] for n in ("blobOwner", "queueContributor", "tableContributor")} == {
        "storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"}
    # The two vaults, each the existing vault main.bicep names.
    resources = template.declarations("resource")
    for symbol, param in (("vault", "keyVaultName"), ("signingVault", "signingKeyVaultName")):
        body = template.body(resources[symbol])
        assert template.type_string(resources[symbol]).startswith("Microsoft.KeyVault/vaults@"), symbol
        assert template.text(template.get(body, "name")) == param
    # The signing key: Secrets Officer at the signing-key vault's scope, for the app (and the optional developer).
    assert scopes["signingKeyOfficer"] == ("keyVaultSecretsOfficer", "signingVault")
    assert scopes["developerSigningKeyOfficer"] == ("keyVaultSecretsOfficer", "signingVault")
    assert sorted(n for n, (_, scope) in scopes.items() if scope == "signingVault") == [
        "developerSigningKeyOfficer", "signingKeyOfficer"]
    # Exportable keys: the consumer's Secrets User is on the certificates' vault, and nowhere else.
    assert scopes["consumerSecretsUser"] == ("keyVaultSecretsUser", "vault")
    consumer = [n for n, d in resources.items() if "consumerPrincipalId" in template.text(d)]
    assert consumer == ["consumerSecretsUser"]
    # The app's identity never gets a secrets role on the certificates' vault (their secrets are private keys), and
    # no role sits on a single secret (the signing-key vault holds only the product's own secrets).
    app_roles_on_vault = [role for name, (role, scope) in scopes.items()
                          if scope == "vault" and not name.startswith(("consumer", "developer"))]
    assert "keyVaultSecretsOfficer" not in app_roles_on_vault
    assert "keyVaultSecretsUser" not in app_roles_on_vault
    assert not [n for n, d in resources.items() if "Microsoft.KeyVault/vaults/secrets@" in template.type_string(d)]


def test_the_durable_task_scheduler_backend_is_a_parameter_set_through_app_settings():
    main = bicep.parse(MAIN)
    backend = main.declarations("parameter")["durableBackend"]
    assert main.value(backend.named_children[-1]) == "azureStorage"
    allowed = main.source[backend.prev_named_sibling.start_byte:backend.prev_named_sibling.end_byte].decode()
    assert "'azureStorage'" in allowed
    assert "'durableTaskScheduler'" in allowed
    api = bicep.parse(API)
    settings_node = api.declarations("variable")["durableTaskSchedulerSettings"].named_children[-1]
    assert settings_node.type == "ternary_expression"
    chosen = next(c for c in settings_node.named_children if c.type == "object" and api.properties(c))
    dts = api.properties(chosen)
    assert api.value(dts["AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"]) == "azureManaged"
    connection = api.value(dts["AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName"])
    assert connection in dts
    assert "Authentication=ManagedIdentity;ClientID=${identityClientId}" in api.text(dts[connection])
    scheduler = bicep.parse(SCHEDULER)
    hub = scheduler.body(scheduler.declarations("resource")["taskHub"])
    assert scheduler.text(scheduler.get(hub, "name")) == "taskHubName"
    _, dts_params = module_params(MAIN, "durableTaskScheduler")
    assert main.text(main.get(dts_params, "taskHubName")) == "taskHubName"
    product = main.properties(main.declarations("variable")["productSettings"].named_children[-1])
    assert main.text(product["TASKHUB_NAME"]) == "taskHubName"
