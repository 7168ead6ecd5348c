"""Exchange Online's admin API in the simulator (InvokeCommand), driven with real tokens: an app created through
Graph by a customer tenant's provisioner, with a certificate, Exchange.ManageAsApp granted through appRoleAssignedTo
and (or not) a directory role; its token from azure-identity's CertificateCredential."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from azure.identity import CertificateCredential, ClientSecretCredential
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment

from tests.conftest import customers
from tests.integration.conftest import EXCHANGE_APP_ID, prefer_create, resource_sp, role_id, run, unique

pytestmark = pytest.mark.timeout(90)

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
SECURITY_READER = "5d6b6bb7-de71-4623-b4af-96380a352509"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"  # a real role, but not one Exchange supports
ORGANIZATION_CONFIG = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
ROLE_MESSAGE = "isn't supported in this scenario"


@pytest.fixture
def tenant(simulator) -> dict:
    """The customer tenant these tests build their apps in."""
    return customers(simulator)[1]


def invoke(simulator, tenant_ref: str, token: str | None, body: dict | None = None) -> tuple[int, dict, dict]:
    """POST InvokeCommand to the simulator's Exchange origin: (status, headers, JSON body)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{simulator.info['exchangeUrl']}/adminapi/beta/{tenant_ref}/InvokeCommand",
                                     data=json.dumps(body or ORGANIZATION_CONFIG).encode(), headers=headers,
                                     method="POST")
    context = ssl.create_default_context(cafile=simulator.info["caBundle"])
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def exchange_app(graph_kit, tenant: dict, certificate, *, manage_as_app: bool = True,
                 roles: tuple[str, ...] = (EXCHANGE_ADMINISTRATOR,)) -> str:
    """Create an app with `certificate`, its service principal, the Exchange.ManageAsApp grant and directory
    `roles`, as the tenant's provisioner does through Graph; its appId."""
    async def main() -> str:
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            client = graph_kit.client(credential)
            key = KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=certificate.der)
            app = await client.applications_with_unique_name(unique("certauth-exo")).patch(
                Application(display_name="certauth exchange proof", key_credentials=[key]), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            if manage_as_app:
                exchange = await resource_sp(client, EXCHANGE_APP_ID)
                await client.service_principals.by_service_principal_id(exchange.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=exchange.id,
                                      app_role_id=role_id(exchange, "Exchange.ManageAsApp")))
            for role in roles:
                await client.role_management.directory.role_assignments.post(
                    UnifiedRoleAssignment(principal_id=sp.id, role_definition_id=role, directory_scope_id="/"))
            return app.app_id

    return run(main())


def exchange_token(simulator, tenant: dict, app_id: str, certificate) -> str:
    """A fresh app-only token for Exchange Online (a new credential: no cached token)."""
    credential = CertificateCredential(tenant["tenantId"], app_id, certificate_data=certificate.pem,
                                       authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    try:
        return credential.get_token(EXCHANGE_SCOPE).token
    finally:
        credential.close()


def test_without_a_token_the_admin_api_answers_401_with_a_bearer_challenge(simulator, tenant):
    status, headers, body = invoke(simulator, tenant["tenantId"], None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith('Bearer client_id="00000002-0000-0ff1-ce00-000000000000"')
    assert body["error"]["code"] == "Unauthorized"
    assert body["error"]["innererror"]["type"] == "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"


def test_a_graph_token_is_not_an_exchange_token(simulator, tenant):
    graph_token = ClientSecretCredential(tenant["tenantId"], tenant["provisioner"]["clientId"],
                                         tenant["provisioner"]["clientSecret"],
                                         authority=simulator.info["authorityHost"],
                                         disable_instance_discovery=True).get_token(
        "https://graph.microsoft.com/.default").token
    status, _, body = invoke(simulator, tenant["tenantId"], graph_token)
    assert (status, body["error"]["code"]) == (401, "Unauthorized")


def test_without_exchange_manage_as_app_the_admin_api_answers_401(simulator, tenant, graph_kit):
    certificate = graph_kit.certificate("certauth exo no permission")
    app_id = exchange_app(graph_kit, tenant, certificate, manage_as_app=False)
    status, _, body = invoke(simulator, tenant["tenantId"], exchange_token(simulator, tenant, app_id, certificate))
    assert status == 401
    assert body["error"]["code"] == "Unauthorized"
    assert "Exchange.ManageAsApp" in body["error"]["message"]
    assert app_id in body["error"]["message"]


@pytest.mark.parametrize("roles", [(), (APPLICATION_ADMINISTRATOR,)], ids=["no role", "unsupported role"])
def test_without_a_supported_role_the_admin_api_answers_403_with_the_role_message(simulator, tenant, graph_kit,
                                                                                   roles):
    certificate = graph_kit.certificate("certauth exo no role")
    app_id = exchange_app(graph_kit, tenant, certificate, roles=roles)
    status, _, body = invoke(simulator, tenant["tenantId"], exchange_token(simulator, tenant, app_id, certificate))
    assert status == 403
    message = body["error"]["message"]
    assert "[FailureCategory=AuthZ-CmdletAccessDeniedException]" in message
    assert f"The role assigned to application {app_id} {ROLE_MESSAGE}" in message


@pytest.mark.parametrize("role", [EXCHANGE_ADMINISTRATOR, SECURITY_READER], ids=["Exchange Administrator",
                                                                                 "Security Reader"])
def test_with_the_permission_and_a_supported_role_get_organization_config_answers(simulator, tenant, graph_kit,
                                                                                  role):
    certificate = graph_kit.certificate("certauth exo proof")
    app_id = exchange_app(graph_kit, tenant, certificate, roles=(role,))
    token = exchange_token(simulator, tenant, app_id, certificate)
    status, _, body = invoke(simulator, tenant["tenantId"], token)
    assert status == 200
    assert body["@odata.context"].endswith(f"/adminapi/beta/{tenant['tenantId']}/$metadata"
                                           "#Collection(Exchange.GenericHashTable)")
    [config] = body["value"]
    assert config["Name"] == config["Identity"] == tenant["domain"]
    assert config["DisplayName"] == tenant["displayName"]
    # The organization may be named by a verified domain too; the same organization answers.
    by_domain = invoke(simulator, tenant["domain"], token)
    assert by_domain[0] == 200
    assert by_domain[2]["value"] == [config]


def test_a_token_of_another_organization_is_refused(simulator, tenant, graph_kit):
    certificate = graph_kit.certificate("certauth exo other tenant")
    app_id = exchange_app(graph_kit, tenant, certificate)
    other = customers(simulator)[2]
    status, _, body = invoke(simulator, other["tenantId"], exchange_token(simulator, tenant, app_id, certificate))
    assert (status, body["error"]["code"]) == (401, "Unauthorized")


def test_only_get_organization_config_is_modelled(simulator, tenant, graph_kit):
    certificate = graph_kit.certificate("certauth exo cmdlets")
    app_id = exchange_app(graph_kit, tenant, certificate)
    token = exchange_token(simulator, tenant, app_id, certificate)
    status, _, body = invoke(simulator, tenant["tenantId"], token,
                             {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}})
    assert (status, body["error"]["code"], body["error"]["message"]) == (400, "BadRequest", "Invalid Operation")
    assert "'Get-Mailbox' is not recognized" in body["error"]["innererror"]["internalexception"]["message"]
    status, _, body = invoke(simulator, tenant["tenantId"], token, {"CmdletName": "Get-OrganizationConfig"})
    assert (status, body["error"]["code"]) == (400, "BadRequest")


def test_a_new_role_assignment_counts_only_in_tokens_issued_after_it_replicated(simulator, tenant, graph_kit,
                                                                                clean_faults):
    simulator.set_faults([], {"roleAssignment": 600})
    certificate = graph_kit.certificate("certauth exo replication")
    app_id = exchange_app(graph_kit, tenant, certificate)
    early = exchange_token(simulator, tenant, app_id, certificate)
    status, _, body = invoke(simulator, tenant["tenantId"], early)
    assert status == 403
    assert ROLE_MESSAGE in body["error"]["message"]
    simulator.advance_clock(601)
    # The role is in the directory now, but this token was issued before it replicated: Exchange reads the role
    # from the token, so only a new token proves it.
    assert invoke(simulator, tenant["tenantId"], early)[0] == 403
    assert invoke(simulator, tenant["tenantId"], exchange_token(simulator, tenant, app_id, certificate))[0] == 200


def test_fault_rules_reach_the_exchange_origin_by_name_and_by_star(simulator, tenant, clean_faults):
    simulator.set_faults([{"origin": "exchange", "status": 503, "count": 1},
                          {"origin": "*", "path": "InvokeCommand", "status": 429, "retryAfter": 7, "count": 1}])
    first = invoke(simulator, tenant["tenantId"], None)
    second = invoke(simulator, tenant["tenantId"], None)
    third = invoke(simulator, tenant["tenantId"], None)
    assert (first[0], first[2]["error"]["code"]) == (503, "ServiceUnavailable")
    assert (second[0], second[1]["Retry-After"]) == (429, "7")
    assert second[2]["error"]["innererror"]["type"] == "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"
    assert third[0] == 401  # both rules used up: the request reaches the API again
    served = simulator.requests_since(0)["requests"]
    assert [r["status"] for r in served if r["origin"] == "exchange"][-3:] == [503, 429, 401]
