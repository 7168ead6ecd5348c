"""The product's verifier (the manual method's read-only identity) in the simulator: seeded in the home tenant,
federated with the managed identity, and consented to once by a customer's administrator, who grants it exactly
Application.Read.All and Organization.Read.All. Driven through azure-identity and msgraph-sdk."""

from __future__ import annotations

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)

from tests.conftest import customers
from tests.integration.conftest import GRAPH_APP_ID, prefer_create, resource_sp, role_id, run, unique

pytestmark = pytest.mark.timeout(90)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"
VERIFIER_ROLES = ["Application.Read.All", "Organization.Read.All"]


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def managed_identity_assertion():
    """The client assertion the product presents for the verifier: the home managed identity's token for
    api://AzureADTokenExchange (workload identity federation; no secret)."""
    managed = ManagedIdentityCredential()
    return lambda: managed.get_token(TOKEN_EXCHANGE_SCOPE).token


def verifier_credential(simulator, tenant_id: str, *, asynchronous: bool = False):
    """ClientAssertionCredential of the verifier in `tenant_id`, federated with the home managed identity."""
    client_id = simulator.home["verifierApp"]["clientId"]
    if asynchronous:
        from azure.identity.aio import ClientAssertionCredential as AsyncClientAssertionCredential

        return AsyncClientAssertionCredential(tenant_id, client_id, managed_identity_assertion(),
                                              authority=simulator.info["authorityHost"],
                                              disable_instance_discovery=True)
    return ClientAssertionCredential(tenant_id, client_id, managed_identity_assertion(),
                                     authority=simulator.info["authorityHost"], disable_instance_discovery=True)


@pytest.fixture
def consented(simulator, managed_identity_env) -> dict:
    """A customer tenant whose administrator consented to the verifier (consent is idempotent)."""
    tenant = customers(simulator)[0]
    assert "admin_consent=True" in simulator.consent_verifier(tenant["tenantId"])
    return tenant


def test_the_verifier_is_seeded_in_the_home_tenant_requesting_only_two_graph_permissions(simulator):
    verifier = simulator.home["verifierApp"]
    state = simulator.tenant_state(simulator.home["tenantId"])
    [app] = [a for a in state["applications"] if a["appId"] == verifier["clientId"]]
    assert app["signInAudience"] == "AzureADMultipleOrgs"
    assert verifier["redirectUri"] in app["web"]["redirectUris"]
    graph_roles = {r["id"]: r["value"] for r in next(
        sp for sp in state["servicePrincipals"] if sp["appId"] == GRAPH_APP_ID)["appRoles"]}
    [required] = app["requiredResourceAccess"]
    assert required["resourceAppId"] == GRAPH_APP_ID
    assert sorted(graph_roles[a["id"]] for a in required["resourceAccess"] if a["type"] == "Role") == VERIFIER_ROLES
    assert verifier["clientId"] != simulator.home["consentApp"]["clientId"]
    assert "clientSecret" not in verifier  # federated only


def test_without_consent_there_is_no_verifier_and_after_it_a_token_with_exactly_two_roles(simulator,
                                                                                         managed_identity_env):
    verifier_id = simulator.home["verifierApp"]["clientId"]
    # A customer tenant whose administrator has not consented to the verifier yet (other tests may have
    # consented in some; the sandbox has five customers).
    unconsented = [t for t in customers(simulator)
                   if not any(sp["appId"] == verifier_id
                              for sp in simulator.tenant_state(t["tenantId"])["servicePrincipals"])]
    assert unconsented, "every customer tenant already consented to the verifier"
    tenant = unconsented[-1]
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        verifier_credential(simulator, tenant["tenantId"]).get_token(GRAPH_SCOPE)

    location = simulator.consent_verifier(tenant["tenantId"], state="verifier")
    assert "admin_consent=True" in location
    assert f"tenant={tenant['tenantId']}" in location
    claims = _claims(verifier_credential(simulator, tenant["tenantId"]).get_token(GRAPH_SCOPE).token)
    assert claims["roles"] == VERIFIER_ROLES
    assert (claims["appid"], claims["tid"], claims["appidacr"]) == (verifier_id, tenant["tenantId"], "2")
    # The consent made exactly those two grants, on Microsoft Graph.
    state = simulator.tenant_state(tenant["tenantId"])
    [sp] = [s for s in state["servicePrincipals"] if s["appId"] == verifier_id]
    graph_sp = next(s for s in state["servicePrincipals"] if s["appId"] == GRAPH_APP_ID)
    grants = [a for a in state["appRoleAssignments"] if a["principalId"] == sp["id"]]
    assert {a["resourceId"] for a in grants} == {graph_sp["id"]}
    assert sorted(r["value"] for r in graph_sp["appRoles"] if r["id"] in {a["appRoleId"] for a in grants}) \
        == VERIFIER_ROLES


def _manual_setup(graph_kit, tenant: dict, certificate) -> dict:
    """What the admin's script would leave behind: an app with a certificate, its service principal and one
    Graph grant (made here by the tenant's provisioner)."""
    async def main() -> dict:
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            client = graph_kit.client(credential)
            unique_name = unique("certauth-manual")
            key = KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=certificate.der)
            app = await client.applications_with_unique_name(unique_name).patch(
                Application(display_name="certauth manual", key_credentials=[key]), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            graph = await resource_sp(client, GRAPH_APP_ID)
            await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                AppRoleAssignment(principal_id=sp.id, resource_id=graph.id,
                                  app_role_id=role_id(graph, "User.Read.All")))
            return {"uniqueName": unique_name, "appId": app.app_id, "applicationId": app.id, "spId": sp.id,
                    "graphSpId": graph.id, "userReadAll": role_id(graph, "User.Read.All")}

    return run(main())


def test_the_verifier_reads_applications_service_principals_and_app_role_assignments(simulator, consented,
                                                                                    graph_kit):
    certificate = graph_kit.certificate("certauth manual")
    setup = _manual_setup(graph_kit, consented, certificate)

    async def main():
        credential = verifier_credential(simulator, consented["tenantId"], asynchronous=True)
        async with credential:
            client = graph_kit.client(credential)
            by_name = await client.applications_with_unique_name(setup["uniqueName"]).get()
            listed = await client.applications.get(RequestConfiguration(
                query_parameters=ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
                    filter=f"appId eq '{setup['appId']}'")))
            sp = await client.service_principals_with_app_id(setup["appId"]).get()
            granted = await client.service_principals.by_service_principal_id(setup["spId"]).app_role_assignments.get()
            assigned_to = await client.service_principals.by_service_principal_id(
                setup["graphSpId"]).app_role_assigned_to.get()
            organization = await client.organization.get()
            return by_name, listed, sp, granted, assigned_to, organization

    by_name, listed, sp, granted, assigned_to, organization = run(main())
    assert by_name.app_id == setup["appId"]
    assert [k.custom_key_identifier for k in by_name.key_credentials] == [certificate.sha1]
    assert [a.app_id for a in listed.value] == [setup["appId"]]
    assert str(sp.id) == str(setup["spId"])
    assert [str(a.app_role_id) for a in granted.value] == [str(setup["userReadAll"])]
    assert str(setup["spId"]) in {str(a.principal_id) for a in assigned_to.value}
    assert [str(o.id) for o in organization.value] == [consented["tenantId"]]


def test_the_verifier_cannot_write_nor_read_directory_role_assignments(simulator, consented, graph_kit):
    certificate = graph_kit.certificate("certauth manual denied")
    setup = _manual_setup(graph_kit, consented, certificate)

    async def main():
        credential = verifier_credential(simulator, consented["tenantId"], asynchronous=True)
        async with credential:
            client = graph_kit.client(credential)
            denied = {}
            with pytest.raises(ODataError) as caught:
                await client.applications.by_application_id(setup["applicationId"]).patch(
                    Application(display_name="renamed by the verifier"))
            denied["PATCH /applications/{id}"] = caught.value
            with pytest.raises(ODataError) as caught:
                await client.service_principals.by_service_principal_id(setup["graphSpId"]).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=setup["spId"], resource_id=setup["graphSpId"],
                                      app_role_id=role_id(await resource_sp(client, GRAPH_APP_ID), "Mail.Send")))
            denied["POST appRoleAssignedTo"] = caught.value
            # roleManagement needs RoleManagement.Read.Directory (or higher): a read-only verifier cannot see
            # whether the directory role was assigned.
            with pytest.raises(ODataError) as caught:
                await client.role_management.directory.role_assignments.get(RequestConfiguration(
                    query_parameters=RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
                        filter=f"principalId eq '{setup['spId']}'")))
            denied["GET roleAssignments"] = caught.value
            return denied

    denied = run(main())
    for call, error in denied.items():
        assert (error.response_status_code, error.error.code) == (403, "Authorization_RequestDenied"), call
    state = simulator.tenant_state(consented["tenantId"])
    [app] = [a for a in state["applications"] if a["appId"] == setup["appId"]]
    assert app["displayName"] == "certauth manual"
    assert [a for a in state["appRoleAssignments"] if a["principalId"] == str(setup["spId"])
            and a["appRoleId"] != str(setup["userReadAll"])] == []
