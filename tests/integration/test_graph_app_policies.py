"""Tenant app management policies in the simulator: the default policy and an app's assigned policies read
through msgraph-sdk, the admin route that configures the policy, and the 400 a certificate longer than the
policy's asymmetricKeyLifetime gets on POST /applications, PATCH keyCredentials and addKey."""

from __future__ import annotations

import urllib.error
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.applications.item.add_key.add_key_post_request_body import AddKeyPostRequestBody
from msgraph.generated.applications.item.application_item_request_builder import ApplicationItemRequestBuilder
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import prefer_create, run, unique

pytestmark = pytest.mark.timeout(90)

DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
LIFETIME_CODE = "CredentialInvalidLifetimeAsPerAppPolicy"


def key_cap_policy(max_lifetime: str = "P90D", since: str = "2020-01-01T00:00:00Z", enabled: bool = True,
                   state: str = "enabled") -> dict:
    """Graph's tenantAppManagementPolicy JSON with one asymmetricKeyLifetime restriction for applications."""
    return {"isEnabled": enabled, "applicationRestrictions": {"passwordCredentials": [], "keyCredentials": [
        {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": max_lifetime, "state": state,
         "restrictForAppsCreatedAfterDateTime": since}]}}


@pytest.fixture
def tenant(simulator, customer):
    """The first customer tenant; its policy and its provisioner's roles are restored afterwards."""
    yield customer
    simulator.set_app_management_policy(customer["tenantId"], None)
    simulator.grant(customer["tenantId"], simulator.info["defaultProvisionerRoles"])


def with_policy_read(simulator, tenant: dict) -> None:
    """The provisioner also holds Policy.Read.All (a new credential gets a token with it)."""
    simulator.grant(tenant["tenantId"], [*simulator.info["defaultProvisionerRoles"], "Policy.Read.All"])


def key(cert) -> KeyCredential:
    return KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=cert.der)


def with_keys() -> RequestConfiguration:
    return RequestConfiguration(query_parameters=ApplicationItemRequestBuilder
                                .ApplicationItemRequestBuilderGetQueryParameters(select=["keyCredentials"]))


def assert_lifetime_refused(error: ODataError) -> None:
    """Graph's 400 for a credential over the policy's lifetime, with the details Graph sends (OBSERVED)."""
    assert error.response_status_code == 400
    assert error.error.code == LIFETIME_CODE
    assert error.error.message == ("Credential lifetime exceeds the max value allowed as per assigned policy "
                                   f"'{DEFAULT_POLICY_ID}'.")
    [detail] = error.error.details
    assert (detail.code, detail.target) == ("InvalidKeyEndDate", "EndDate")
    headers = {k.lower(): v for k, v in (error.response_headers or {}).items()}
    assert error.error.inner_error.request_id == headers["request-id"]


def test_the_default_policy_is_disabled_and_reading_it_needs_policy_read_all(simulator, tenant, graph_kit):
    async def read(client):
        return await client.policies.default_app_management_policy.get()

    async def main():
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            with pytest.raises(ODataError) as refused:
                await read(graph_kit.client(credential))
        assert refused.value.response_status_code == 403
        assert refused.value.error.code == "Authorization_RequestDenied"

        with_policy_read(simulator, tenant)
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            policy = await read(graph_kit.client(credential))
        assert policy.id == DEFAULT_POLICY_ID
        assert policy.display_name == "Default app management tenant policy"
        assert policy.is_enabled is False
        assert policy.application_restrictions.key_credentials == []
        assert policy.application_restrictions.password_credentials == []

    run(main())


def test_a_configured_policy_reads_back_through_graph_and_an_app_lists_no_assigned_policy(
        simulator, tenant, graph_kit):
    answered = simulator.set_app_management_policy(tenant["tenantId"], key_cap_policy())
    assert answered["isEnabled"] is True
    assert answered["applicationRestrictions"]["keyCredentials"][0]["maxLifetime"] == "P90D"
    assert simulator.app_management_policy(tenant["tenantId"]) == answered
    with_policy_read(simulator, tenant)

    async def main():
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            client = graph_kit.client(credential)
            policy = await client.policies.default_app_management_policy.get()
            app = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="policy reader"), prefer_create())
            assigned = await client.applications.by_application_id(app.id).app_management_policies.get()
        [restriction] = policy.application_restrictions.key_credentials
        assert policy.is_enabled is True
        assert restriction.restriction_type.value == "asymmetricKeyLifetime"
        assert restriction.state.value == "enabled"
        assert restriction.max_lifetime == timedelta(days=90)
        assert restriction.restrict_for_apps_created_after_date_time == datetime(2020, 1, 1, tzinfo=UTC)
        assert assigned.value == []

    run(main())


def test_a_certificate_over_the_cap_is_refused_on_create_update_and_add_key(simulator, tenant, graph_kit):
    simulator.set_app_management_policy(tenant["tenantId"], key_cap_policy("P90D"))
    fits, at_the_cap = graph_kit.certificate("CN=fits", days=60), graph_kit.certificate("CN=cap", days=90)
    too_long = graph_kit.certificate("CN=too long", days=365)

    async def main():
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as on_create:
                await client.applications.post(Application(display_name="too long", unique_name=unique(),
                                                            key_credentials=[key(too_long)]))
            assert_lifetime_refused(on_create.value)
            with pytest.raises(ODataError) as on_upsert:
                await client.applications_with_unique_name(unique()).patch(
                    Application(display_name="too long", key_credentials=[key(too_long)]), prefer_create())
            assert_lifetime_refused(on_upsert.value)

            app = await client.applications_with_unique_name(unique()).patch(
                Application(display_name="fits", key_credentials=[key(fits)]), prefer_create())
            await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            item = client.applications.by_application_id(app.id)
            existing = (await item.get(with_keys())).key_credentials
            with pytest.raises(ODataError) as on_update:
                await item.patch(Application(key_credentials=[*existing, key(too_long)]))
            assert_lifetime_refused(on_update.value)
            await item.patch(Application(key_credentials=[*existing, key(at_the_cap)]))  # exactly P90D is allowed
            kept = (await item.get(with_keys())).key_credentials
        assert len(kept) == 2
        return app

    app = run(main())

    async def roll():
        as_app = graph_kit.assertion_credential(tenant["tenantId"], app.app_id, fits)
        async with as_app:
            item = graph_kit.client(as_app).applications.by_application_id(app.id)
            now = int(graph_kit.sandbox_epoch())
            proof = jwt.encode({"aud": "00000002-0000-0000-c000-000000000000", "iss": app.id, "nbf": now,
                                "exp": now + 600}, fits.private_key, algorithm="RS256", headers={"x5t": fits.x5t})
            with pytest.raises(ODataError) as on_add_key:
                await item.add_key.post(AddKeyPostRequestBody(key_credential=key(too_long), password_credential=None,
                                                              proof=proof))
            assert_lifetime_refused(on_add_key.value)
            added = await item.add_key.post(AddKeyPostRequestBody(
                key_credential=key(graph_kit.certificate("CN=successor", days=30)), password_credential=None,
                proof=proof))
        assert added.key_id is not None

    run(roll())


def test_the_cap_binds_only_enabled_restrictions_of_an_enabled_policy_on_apps_created_after_its_date(
        simulator, tenant, graph_kit):
    too_long = graph_kit.certificate("CN=long", days=365)

    async def create(client, label: str):
        return await client.applications_with_unique_name(unique()).patch(
            Application(display_name=label, key_credentials=[key(too_long)]), prefer_create())

    async def main():
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            client = graph_kit.client(credential)
            simulator.set_app_management_policy(tenant["tenantId"], key_cap_policy(enabled=False))
            assert (await create(client, "policy disabled")).id
            simulator.set_app_management_policy(tenant["tenantId"], key_cap_policy(state="disabled"))
            assert (await create(client, "restriction disabled")).id

            now = datetime.fromtimestamp(graph_kit.sandbox_epoch(), tz=UTC).replace(microsecond=0)
            since = (now + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
            simulator.set_app_management_policy(tenant["tenantId"], key_cap_policy(since=since))
            older = await create(client, "created before the date")
            simulator.advance_clock(60)
            with pytest.raises(ODataError) as newer:
                await create(client, "created after the date")
            assert_lifetime_refused(newer.value)
            # The older app stays outside the restriction: a new long key is still accepted on it.
            item = client.applications.by_application_id(older.id)
            existing = (await item.get(with_keys())).key_credentials
            await item.patch(Application(key_credentials=[*existing, key(graph_kit.certificate("CN=2", days=365))]))

    run(main())


@pytest.mark.parametrize(("body", "names"), [
    ([], "object"),
    ({"colour": "blue"}, "colour"),
    ({"id": "11111111-1111-1111-1111-111111111111"}, "id"),
    ({"isEnabled": "yes"}, "isEnabled"),
    (key_cap_policy("P1Y"), "maxLifetime"),
    (key_cap_policy("90 days"), "maxLifetime"),
    (key_cap_policy("PT"), "maxLifetime"),
    ({"applicationRestrictions": {"keyCredentials": [{"restrictionType": "asymmetricKeyLifetime"}]}}, "maxLifetime"),
    ({"applicationRestrictions": {"keyCredentials": [{"restrictionType": "keyLength", "maxLifetime": "P1D"}]}},
     "restrictionType"),
    ({"applicationRestrictions": {"keyCredentials": [key_cap_policy()["applicationRestrictions"]["keyCredentials"][0]]
                                  * 2}}, "only once"),
    (key_cap_policy(since="yesterday"), "restrictForAppsCreatedAfterDateTime"),
])
def test_the_admin_route_refuses_a_policy_graph_would_not_hold(simulator, tenant, body, names):
    with pytest.raises(urllib.error.HTTPError) as refused:
        simulator.admin("PUT", f"/tenants/{tenant['tenantId']}/appManagementPolicy", body)
    assert refused.value.code == 400
    assert names in refused.value.read().decode()
    assert simulator.app_management_policy(tenant["tenantId"])["isEnabled"] is False  # nothing was stored


def test_the_admin_route_restores_the_default_policy(simulator, tenant):
    simulator.set_app_management_policy(tenant["tenantId"], key_cap_policy("P4DT12H30M5S"))
    restored = simulator.set_app_management_policy(tenant["tenantId"], None)
    assert restored["isEnabled"] is False
    assert restored["applicationRestrictions"] == {"passwordCredentials": [], "keyCredentials": []}
    assert restored["id"] == DEFAULT_POLICY_ID
