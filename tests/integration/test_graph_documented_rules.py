"""Microsoft Graph rules the simulator takes from Microsoft's documentation, and the differences the Azure CLI
found (issue 8): higher-privileged permissions, Edm.Binary with white space, keyCredential dates inside the
certificate's validity, the `any` lambda, the unknown URL segment, GUID literals, advanced queries
(ConsistencyLevel: eventual + $count=true) and the request ids Graph echoes.

msgraph-sdk drives what it can express; the rest goes as raw HTTP with a provisioner token, as the Azure CLI
sends it. Facts and sources: sandbox/azure/microsoft.py (GRAPH_PERMISSIONS, KEY_CREDENTIAL_FACTS,
GRAPH_FILTER_FACTS, GRAPH_ERRORS_CATALOG).
"""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest
import requests
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import GRAPH_APP_ID, prefer_create, resource_sp, role_id, run, unique

pytestmark = pytest.mark.timeout(90)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class RawGraph:
    """Raw HTTP against the simulated Graph with a fresh token of the tenant's seeded provisioner."""

    def __init__(self, simulator, tenant: dict) -> None:
        from azure.identity import ClientSecretCredential

        self.base = simulator.info["graphUrl"]
        credential = ClientSecretCredential(tenant["tenantId"], tenant["provisioner"]["clientId"],
                                            tenant["provisioner"]["clientSecret"],
                                            authority=simulator.info["authorityHost"], disable_instance_discovery=True)
        try:
            self.token = credential.get_token(GRAPH_SCOPE).token
        finally:
            credential.close()
        self.session = requests.Session()
        self.session.verify = simulator.info["caBundle"]

    def call(self, method: str, path: str, headers: dict | None = None, **kwargs) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=30,
                                    headers={"Authorization": f"Bearer {self.token}", **(headers or {})}, **kwargs)

    def upsert_app(self, **fields) -> dict:
        response = self.call("PATCH", f"/applications(uniqueName='{unique()}')", json={"displayName": "rules",
                                                                                          **fields},
                             headers={"Prefer": "create-if-missing"})
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def raw(simulator, home) -> RawGraph:
    return RawGraph(simulator, home)


def wrapped_base64(der: bytes) -> str:
    """The certificate as the Azure CLI sends it: a PEM body, 64 characters a line (plus CRLF and a space)."""
    text = base64.b64encode(der).decode()
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "\n".join(lines[:-1]) + "\r\n " + lines[-1] + "\n"


def z(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- 1. permission tables as Microsoft documents them ------------------------------------------------------

def test_application_readwrite_all_with_app_role_assignment_grants_app_roles(simulator, home, graph_kit,
                                                                             restore_grants):
    # serviceprincipal-post-approleassignedto: 'AppRoleAssignment.ReadWrite.All and Application.Read.All';
    # Application.ReadWrite.All is the higher-privileged read (application-get, serviceprincipal-get).
    simulator.grant(home["tenantId"], ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"])

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="higher privileged"), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            graph = await resource_sp(client, GRAPH_APP_ID)
            granted = await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                AppRoleAssignment(principal_id=sp.id, resource_id=graph.id,
                                  app_role_id=role_id(graph, "User.Read.All")))
            mine = await client.service_principals.by_service_principal_id(sp.id).app_role_assignments.get()
            return graph, granted, mine

    graph, granted, mine = run(main())
    assert granted.resource_id == uuid.UUID(graph.id)
    assert [a.app_role_id for a in mine.value] == [role_id(graph, "User.Read.All")]


@pytest.mark.parametrize("roles", [["AppRoleAssignment.ReadWrite.All"], ["Application.ReadWrite.All"]],
                         ids=["assignment-permission-alone", "application-permission-alone"])
def test_one_half_of_the_pair_cannot_grant(simulator, home, graph_kit, restore_grants, roles):
    # Neither alone is in the table (Application.ReadWrite.All "Does not allow management of consent grants").
    async def prepare():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="pair"), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            return sp, await resource_sp(client, GRAPH_APP_ID)

    sp, graph = run(prepare())
    simulator.grant(home["tenantId"], roles)

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as info:
                await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=graph.id,
                                      app_role_id=role_id(graph, "User.Read.All")))
            return info.value

    error = run(main())
    assert error.response_status_code == 403
    assert error.error.code == "Authorization_RequestDenied"


def test_documented_higher_permissions_read_role_assignments_and_delete_sps(simulator, home, raw, restore_grants):
    # rbacapplication-list-roleassignments lists Directory.Read.All; serviceprincipal-delete lists
    # Directory.ReadWrite.All; serviceprincipal-list-approleassignments lists Application.ReadWrite.OwnedBy.
    app = raw.upsert_app()
    sp = raw.call("PATCH", f"/servicePrincipals(appId='{app['appId']}')", json={},
                  headers={"Prefer": "create-if-missing"}).json()
    simulator.grant(home["tenantId"], ["Directory.Read.All"])
    reader = RawGraph(simulator, home)
    listed = reader.call("GET", "/roleManagement/directory/roleAssignments",
                         params={"$filter": f"principalId eq '{sp['id']}'"})
    simulator.grant(home["tenantId"], ["Application.ReadWrite.OwnedBy"])
    owner = RawGraph(simulator, home)
    assignments = owner.call("GET", f"/servicePrincipals/{sp['id']}/appRoleAssignments")
    simulator.grant(home["tenantId"], ["Directory.ReadWrite.All"])
    deleted = RawGraph(simulator, home).call("DELETE", f"/servicePrincipals/{sp['id']}")
    assert listed.status_code == 200, listed.text
    assert listed.json()["value"] == []
    assert assignments.status_code == 200, assignments.text
    assert deleted.status_code == 204, deleted.text


# -- 2. what the Azure CLI found ----------------------------------------------------------------------------

def test_binary_with_white_space_and_dates_inside_the_validity_are_accepted(raw, graph_kit):
    cert = graph_kit.certificate("CN-azcli")
    app = raw.upsert_app()
    start, end = cert.not_before + timedelta(seconds=1), cert.not_after - timedelta(seconds=1)
    custom = base64.b64encode(cert.sha1).decode()
    patched = raw.call("PATCH", f"/applications/{app['id']}", json={"keyCredentials": [{
        "type": "AsymmetricX509Cert", "usage": "Verify", "key": wrapped_base64(cert.der),
        "customKeyIdentifier": custom[:8] + " \t" + custom[8:], "displayName": "CN=azcli",
        "startDateTime": z(start), "endDateTime": z(end)}]})
    stored = raw.call("GET", f"/applications/{app['id']}", params={"$select": "keyCredentials"}).json()
    assert patched.status_code == 204, patched.text
    [key] = stored["keyCredentials"]
    assert base64.b64decode(key["key"]) == cert.der
    assert base64.b64decode(key["customKeyIdentifier"]) == cert.sha1
    assert key["startDateTime"] == z(start)  # the dates sent are kept
    assert key["endDateTime"] == z(end)


def test_invalid_base64_and_dates_outside_the_validity_are_still_refused(raw, graph_kit):
    cert = graph_kit.certificate("CN-outside")
    app = raw.upsert_app()

    def patch(**fields) -> requests.Response:
        body = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(cert.der).decode(),
                **fields}
        return raw.call("PATCH", f"/applications/{app['id']}", json={"keyCredentials": [body]})

    bad_character = patch(key="MIIB $ AAAA")
    bad_length = patch(key=wrapped_base64(cert.der)[:-3])
    early = patch(startDateTime=z(cert.not_before - timedelta(seconds=1)))
    late = patch(endDateTime=z(cert.not_after + timedelta(seconds=1)))
    backwards = patch(startDateTime=z(cert.not_before + timedelta(days=2)),
                      endDateTime=z(cert.not_before + timedelta(days=1)))
    for response in (bad_character, bad_length):
        assert response.status_code == 400
        assert "Edm.Binary" in response.json()["error"]["message"]
    assert early.status_code == 400
    assert early.json()["error"]["code"] == "KeyCredentialsInvalidStartDate"
    assert late.status_code == 400
    assert late.json()["error"]["code"] == "KeyCredentialsInvalidEndDate"
    assert backwards.status_code == 400
    assert raw.call("GET", f"/applications/{app['id']}").json()["keyCredentials"] == []


def test_any_lambda_finds_service_principals_and_applications(home, graph_kit, raw):
    uri = f"api://{uuid.uuid4()}"
    app = raw.upsert_app(identifierUris=[uri], tags=["certauth", "HideApp"])
    sp = raw.call("PATCH", f"/servicePrincipals(appId='{app['appId']}')", json={},
                  headers={"Prefer": "create-if-missing"}).json()

    async def main():
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.service_principals_request_builder import (
            ServicePrincipalsRequestBuilder,
        )

        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            q = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters
            # az ad sp show --id <appId>: servicePrincipalNames/any(c:c eq '<appId>')
            return await client.service_principals.get(RequestConfiguration(query_parameters=q(
                filter=f"servicePrincipalNames/any(c:c eq '{app['appId']}')")))

    by_name = run(main())
    by_uri = raw.call("GET", "/applications", params={"$filter": f"identifierUris/any(x:x eq '{uri.upper()}')"})
    by_prefix = raw.call("GET", "/applications", params={
        "$filter": f"identifierUris/any(x:startswith(x, '{uri[:20]}')) and tags/any(t:t eq 'hideapp')"})
    all_lambda = raw.call("GET", "/applications", params={"$filter": f"identifierUris/all(x:x eq '{uri}')"})
    not_a_collection = raw.call("GET", "/applications", params={"$filter": "displayName/any(x:x eq 'rules')"})
    assert [s.id for s in by_name.value] == [sp["id"]]
    assert [a["id"] for a in by_uri.json()["value"]] == [app["id"]]  # directory strings compare case-insensitively
    assert [a["id"] for a in by_prefix.json()["value"]] == [app["id"]]
    assert all_lambda.status_code == 400  # "all ... isn't supported in Microsoft Graph"
    assert all_lambda.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert not_a_collection.status_code == 400
    assert not_a_collection.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_unknown_segment_is_named(raw, home):
    app_id = home["provisioner"]["applicationObjectId"]
    cases = {f"/applications/{app_id}/bogus": "bogus", "/bogus/applications": "bogus",
             "/roleManagement/directory/bogus": "bogus", f"/applications/{app_id}/owners/x/y": "x"}
    for path, segment in cases.items():
        response = raw.call("GET", path)
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "BadRequest"
        assert response.json()["error"]["message"] == f"Resource not found for the segment '{segment}'.", path


# -- 3. smaller differences ----------------------------------------------------------------------------------

def test_guid_literals_for_edm_guid_properties(raw):
    app = raw.upsert_app()
    sp = raw.call("PATCH", f"/servicePrincipals(appId='{app['appId']}')", json={},
                  headers={"Prefer": "create-if-missing"}).json()
    graph = raw.call("GET", "/servicePrincipals", params={"$filter": f"appId eq '{GRAPH_APP_ID}'"}).json()["value"][0]
    role = next(r["id"] for r in graph["appRoles"] if r["value"] == "Organization.Read.All")
    posted = raw.call("POST", f"/servicePrincipals/{graph['id']}/appRoleAssignedTo",
                      json={"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": role})
    path = f"/servicePrincipals/{graph['id']}/appRoleAssignedTo"
    unquoted = raw.call("GET", path, params={"$filter": f"principalId eq {sp['id']}"})
    quoted = raw.call("GET", path, params={"$filter": f"principalId eq '{sp['id']}'"})
    assert posted.status_code == 201, posted.text
    assert [a["principalId"] for a in unquoted.json()["value"]] == [sp["id"]]
    assert quoted.status_code == 400  # Edm.Guid against Edm.String (msgraph-sdk-dotnet#2306)
    assert "incompatible types" in quoted.json()["error"]["message"]


def test_ne_not_endswith_need_the_advanced_query_parameters(raw):
    app = raw.upsert_app(displayName=f"advanced {uuid.uuid4()}")
    eventual = {"ConsistencyLevel": "eventual"}
    clauses = {"ne": f"displayName ne '{app['displayName']}'", "not": f"not(displayName eq '{app['displayName']}')",
               "endsWith": "endswith(displayName,'x')"}
    for operator, clause in clauses.items():
        plain = raw.call("GET", "/applications", params={"$filter": clause})
        header_only = raw.call("GET", "/applications", params={"$filter": clause}, headers=eventual)
        count_only = raw.call("GET", "/applications", params={"$filter": clause, "$count": "true"})
        for response in (plain, header_only, count_only):
            assert response.status_code == 400, (operator, response.text)
            assert response.json()["error"]["code"] == "Request_UnsupportedQuery"
            assert f"Operator '{operator}' is not supported" in response.json()["error"]["message"]
    advanced = {clause: raw.call("GET", "/applications", params={"$filter": clause, "$count": "true"},
                                 headers=eventual) for clause in clauses.values()}
    for clause in (clauses["ne"], clauses["not"]):
        body = advanced[clause].json()
        assert advanced[clause].status_code == 200, body
        assert app["id"] not in [a["id"] for a in body["value"]]
        assert body["@odata.count"] == len(body["value"])
    # endsWith is indexed only for mail, otherMails, userPrincipalName and proxyAddresses (aad-advanced-queries)
    assert advanced[clauses["endsWith"]].status_code == 400
    assert "displayName" in advanced[clauses["endsWith"]].json()["error"]["message"]


def test_count_without_consistency_level_is_ignored(raw):
    app = raw.upsert_app()
    params = {"$filter": f"id eq '{app['id']}'", "$count": "true"}
    plain = raw.call("GET", "/applications", params=params)
    eventual = raw.call("GET", "/applications", params=params, headers={"ConsistencyLevel": "eventual"})
    assert plain.status_code == 200
    assert "@odata.count" not in plain.json()
    assert [a["id"] for a in plain.json()["value"]] == [app["id"]]
    assert eventual.json()["@odata.count"] == 1


def test_client_request_id_is_echoed_in_headers_and_errors(raw):
    mine = str(uuid.uuid4())
    missing = raw.call("GET", f"/applications/{uuid.uuid4()}", headers={"client-request-id": mine})
    found = raw.call("GET", "/organization", headers={"client-request-id": mine})
    anonymous = raw.call("GET", f"/applications/{uuid.uuid4()}")
    inner = missing.json()["error"]["innerError"]
    assert missing.status_code == 404
    assert missing.headers["client-request-id"] == mine
    assert inner["client-request-id"] == mine
    assert inner["request-id"] == missing.headers["request-id"] != mine
    assert found.headers["client-request-id"] == mine
    assert found.headers["request-id"] != mine
    # without one, Graph makes one up: present, and a GUID
    assert uuid.UUID(anonymous.headers["client-request-id"])
    assert anonymous.json()["error"]["innerError"]["client-request-id"] == anonymous.headers["client-request-id"]
