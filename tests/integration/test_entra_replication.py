"""The token endpoint lags the directory when replication delay is on: a new service principal cannot sign in
(AADSTS7000229), a new certificate is not known yet (AADSTS700027), new grants are not in `roles` yet. Driven
through msgraph-sdk and azure-identity; time moves with the sandbox clock only."""

from __future__ import annotations

import urllib.error

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import GRAPH_APP_ID, prefer_create, resource_sp, role_id, run, unique

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _key(certificate) -> KeyCredential:
    return KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=certificate.der,
                         start_date_time=certificate.not_before, end_date_time=certificate.not_after)


def _register(graph_kit, tenant: dict, certificate, *, service_principal: bool = True,
              grants: tuple[str, ...] = ()) -> dict:
    """An app carrying `certificate` in `tenant`, registered by the tenant's provisioner; optionally its service
    principal and Graph app roles."""

    async def work() -> dict:
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(unique("lag")).patch(
                Application(display_name="token lag", key_credentials=[_key(certificate)]), prefer_create())
            sp = None
            if service_principal:
                sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(),
                                                                                   prefer_create())
            graph = await resource_sp(client, GRAPH_APP_ID)
            for value in grants:
                await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=graph.id, app_role_id=role_id(graph, value)))
            return {"appId": app.app_id, "objectId": app.id, "spId": sp.id if sp else None}

    return run(work())


def _token(graph_kit, tenant_id: str, app_id: str, certificate) -> dict:
    """The claims of a fresh token (a new credential each time: no token cache between attempts)."""

    async def work() -> str:
        credential = graph_kit.certificate_credential(tenant_id, app_id, certificate.pem)
        async with credential:
            return (await credential.get_token(GRAPH_SCOPE)).token

    return jwt.decode(run(work()), options={"verify_signature": False})


def test_an_app_without_a_service_principal_in_its_home_tenant_gets_aadsts7000229(simulator, customer, graph_kit):
    certificate = graph_kit.certificate("no sp")
    app = _register(graph_kit, customer, certificate, service_principal=False)
    with pytest.raises(ClientAuthenticationError) as caught:
        _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    assert "AADSTS7000229" in caught.value.message
    assert (f"The client application {app['appId']} is missing service principal in the tenant "
            f"{customer['tenantId']}") in caught.value.message


def test_a_new_service_principal_signs_in_only_after_the_delay(simulator, customer, graph_kit, clean_faults):
    simulator.set_faults([], {"servicePrincipal": 60})
    certificate = graph_kit.certificate("new sp")
    app = _register(graph_kit, customer, certificate)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000229"):
        _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    simulator.advance_clock(30)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000229"):
        _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    simulator.advance_clock(31)
    claims = _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    assert claims["oid"] == app["spId"]


def test_a_new_certificate_is_unknown_to_the_token_endpoint_until_the_delay_passes(
        simulator, customer, graph_kit, clean_faults):
    old = graph_kit.certificate("old key")
    app = _register(graph_kit, customer, old)
    simulator.set_faults([], {"keyCredential": 60})
    simulator.advance_clock(61)  # the first key is old now
    new = graph_kit.certificate("new key")

    async def add_key() -> None:
        credential = graph_kit.secret_credential(customer)
        async with credential:
            client = graph_kit.client(credential)
            current = await client.applications.by_application_id(app["objectId"]).get()
            kept = [KeyCredential(key_id=k.key_id, type=k.type, usage=k.usage) for k in current.key_credentials]
            await client.applications.by_application_id(app["objectId"]).patch(
                Application(key_credentials=[*kept, _key(new)]))

    run(add_key())
    assert _token(graph_kit, customer["tenantId"], app["appId"], old)["oid"] == app["spId"]
    with pytest.raises(ClientAuthenticationError) as caught:
        _token(graph_kit, customer["tenantId"], app["appId"], new)
    assert "AADSTS700027" in caught.value.message
    assert "is not registered on application" in caught.value.message
    simulator.advance_clock(61)
    assert _token(graph_kit, customer["tenantId"], app["appId"], new)["oid"] == app["spId"]


def test_roles_catch_up_with_new_grants_after_the_delay(simulator, customer, graph_kit, clean_faults):
    simulator.set_faults([], {"appRoleAssignment": 60})
    certificate = graph_kit.certificate("roles lag")
    app = _register(graph_kit, customer, certificate, grants=("User.Read.All", "Organization.Read.All"))
    assert "roles" not in _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    simulator.advance_clock(61)
    claims = _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    assert claims["roles"] == ["Organization.Read.All", "User.Read.All"]


def test_without_a_delay_nothing_lags(simulator, customer, graph_kit):
    certificate = graph_kit.certificate("no lag")
    app = _register(graph_kit, customer, certificate, grants=("User.Read.All",))
    claims = _token(graph_kit, customer["tenantId"], app["appId"], certificate)
    assert claims["roles"] == ["User.Read.All"]
    assert claims["oid"] == app["spId"]


def test_an_unknown_replication_kind_is_refused(simulator, clean_faults):
    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.set_faults([], {"servicePrincipals": 60})
    assert caught.value.code == 400
    assert "unknown kind" in caught.value.read().decode()
