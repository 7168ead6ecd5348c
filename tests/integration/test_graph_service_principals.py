"""Microsoft Graph service principals and app role assignments (admin consent), through msgraph-sdk.

Covers: SP upsert by appId (201 / 204), lookups, the consent chain ending in a CertificateCredential token
whose `roles` match what was granted, duplicate assignment 400, directory replication delay (the 403 an
OwnedBy caller sees, the 400 an .All caller sees, and the alternating 400 / 404 on reference updates), and
SPs for apps of another tenant (multi-tenant only).
"""

from __future__ import annotations

import uuid

import jwt
import pytest
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import EXCHANGE_APP_ID, GRAPH_APP_ID, prefer_create, resource_sp, role_id, run, unique

pytestmark = pytest.mark.timeout(60)







def test_consent_chain_gives_certificate_token_with_granted_roles(simulator, home, graph_kit):
    cert = graph_kit.certificate("CN-consent")
    name = unique()

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(name).patch(Application(
                display_name="consent chain", key_credentials=[KeyCredential(
                    type="AsymmetricX509Cert", usage="Verify", key=cert.der)]), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            again = await client.service_principals_with_app_id(app.app_id).patch(
                ServicePrincipal(notes="second run"), prefer_create())
            graph = await resource_sp(client, GRAPH_APP_ID)
            exchange = await resource_sp(client, EXCHANGE_APP_ID)
            wanted = [(graph, "User.Read.All"), (graph, "Mail.Send"), (exchange, "Exchange.ManageAsApp")]
            for resource, value in wanted:
                await client.service_principals.by_service_principal_id(resource.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=resource.id,
                                      app_role_id=role_id(resource, value)))
            with pytest.raises(ODataError) as duplicate:
                await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=graph.id,
                                      app_role_id=role_id(graph, "Mail.Send")))
            with pytest.raises(ODataError) as unknown_role:
                await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=graph.id, app_role_id=uuid.uuid4()))
            mine = await client.service_principals.by_service_principal_id(sp.id).app_role_assignments.get()
            assigned_to = await client.service_principals.by_service_principal_id(graph.id) \
                .app_role_assigned_to.get()
            by_app_id = await client.service_principals_with_app_id(app.app_id).get()

            app_credential = graph_kit.certificate_credential(home["tenantId"], app.app_id, cert.pem)
            async with app_credential:
                graph_token = await app_credential.get_token("https://graph.microsoft.com/.default")
                exo_token = await app_credential.get_token("https://outlook.office365.com/.default")
            return (app, sp, again, duplicate.value, unknown_role.value, mine, assigned_to, by_app_id,
                    graph_token, exo_token)

    (app, sp, again, duplicate, unknown_role, mine, assigned_to, by_app_id, graph_token,
     exo_token) = run(main())
    assert sp is not None
    assert sp.app_id == app.app_id
    assert again is None
    assert by_app_id.id == sp.id
    assert by_app_id.notes == "second run"
    assert duplicate.response_status_code == 400
    assert duplicate.error.message == "Permission being assigned already exists on the object."
    assert unknown_role.response_status_code == 400
    assert "was not found on application" in unknown_role.error.message
    assert len(mine.value) == 3
    assert {a.principal_id for a in mine.value} == {uuid.UUID(sp.id)}
    assert sum(1 for a in assigned_to.value if str(a.principal_id) == sp.id) == 2
    graph_claims = jwt.decode(graph_token.token, options={"verify_signature": False})
    exo_claims = jwt.decode(exo_token.token, options={"verify_signature": False})
    assert graph_claims["roles"] == ["Mail.Send", "User.Read.All"]
    assert graph_claims["appid"] == app.app_id
    assert exo_claims["roles"] == ["Exchange.ManageAsApp"]


def test_delete_assignment_and_service_principal(home, graph_kit):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="to delete"), prefer_create())
            sp = await client.service_principals.post(ServicePrincipal(app_id=app.app_id))
            graph = await resource_sp(client, GRAPH_APP_ID)
            assignment = await client.service_principals.by_service_principal_id(sp.id).app_role_assignments.post(
                AppRoleAssignment(principal_id=sp.id, resource_id=graph.id,
                                  app_role_id=role_id(graph, "Organization.Read.All")))
            await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to \
                .by_app_role_assignment_id(assignment.id).delete()
            left = await client.service_principals.by_service_principal_id(sp.id).app_role_assignments.get()
            with pytest.raises(ODataError) as second_sp:
                await client.service_principals.post(ServicePrincipal(app_id=app.app_id))
            await client.service_principals.by_service_principal_id(sp.id).delete()
            with pytest.raises(ODataError) as gone:
                await client.service_principals.by_service_principal_id(sp.id).get()
            with pytest.raises(ODataError) as bad_id:
                await client.service_principals.by_service_principal_id("not-a-guid").get()
            return left, second_sp.value, gone.value, bad_id.value

    left, second_sp, gone, bad_id = run(main())
    assert left.value == []
    assert second_sp.response_status_code == 409
    assert second_sp.error.code == "Request_MultipleObjectsWithSameKeyValue"
    assert gone.response_status_code == 404
    assert gone.error.code == "Request_ResourceNotFound"
    assert bad_id.response_status_code == 400
    assert bad_id.error.message == "Invalid object identifier 'not-a-guid'."


def test_replication_delay(simulator, home, graph_kit, clean_faults, restore_grants):
    simulator.set_faults([], replication_delay={"application": 60})

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="replicating"), prefer_create())
            with pytest.raises(ODataError) as owned_by:   # default roles: Application.ReadWrite.OwnedBy
                await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            return app, owned_by.value

    app, owned_by = run(main())
    assert owned_by.response_status_code == 403
    assert owned_by.error.code == "Authorization_RequestDenied"
    assert "backing application" in owned_by.error.message

    simulator.grant(home["tenantId"], [*simulator.info["defaultProvisionerRoles"], "Application.ReadWrite.All"])

    async def with_all():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as not_yet:
                await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            return not_yet.value

    not_yet = run(with_all())
    assert not_yet.response_status_code == 400
    assert not_yet.error.code == "Request_BadRequest"
    assert not_yet.error.message == (f"The appId '{app.app_id}' of the service principal does not reference a "
                                     "valid application object.")

    simulator.advance_clock(61)
    simulator.set_faults([], replication_delay={"application": 60, "servicePrincipal": 30})

    async def later():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            graph = await resource_sp(client, GRAPH_APP_ID)
            body = AppRoleAssignment(principal_id=sp.id, resource_id=graph.id,
                                     app_role_id=role_id(graph, "User.Read.All"))
            errors = []
            for _ in range(2):
                with pytest.raises(ODataError) as info:
                    await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(body)
                errors.append(info.value)
            simulator.advance_clock(31)
            created = await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                body)
            return sp, errors, created

    sp, errors, created = run(later())
    assert sp.app_id == app.app_id
    first, second = errors
    assert (first.response_status_code, first.error.message) == (400, "Not a valid reference update.")
    assert (second.response_status_code, second.error.code) == (404, "Request_ResourceNotFound")
    assert sp.id in second.error.message
    assert str(created.principal_id) == sp.id


def test_service_principal_for_another_tenants_app(simulator, home, customer, graph_kit, restore_grants):
    async def register():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            multi = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="multi", sign_in_audience="AzureADMultipleOrgs"), prefer_create())
            single = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="single"), prefer_create())
            return multi, single

    multi, single = run(register())

    async def in_customer():
        credential = graph_kit.secret_credential(customer)
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as info:
                await client.service_principals.post(ServicePrincipal(app_id=multi.app_id))
            return info.value

    owned_by = run(in_customer())
    assert owned_by.response_status_code == 403  # OwnedBy: the backing application must be local

    simulator.grant(customer["tenantId"], ["Application.ReadWrite.All", "Application.Read.All"])

    async def with_all():
        credential = graph_kit.secret_credential(customer)
        async with credential:
            client = graph_kit.client(credential)
            sp = await client.service_principals.post(ServicePrincipal(app_id=multi.app_id))
            with pytest.raises(ODataError) as info:
                await client.service_principals.post(ServicePrincipal(app_id=single.app_id))
            return sp, info.value

    sp, single_error = run(with_all())
    assert sp.app_id == multi.app_id
    assert sp.app_owner_organization_id == uuid.UUID(home["tenantId"])
    assert single_error.response_status_code == 400
    assert "does not reference a valid application object" in single_error.error.message
