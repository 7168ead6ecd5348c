"""Microsoft Graph /applications in the simulator, driven only through msgraph-sdk.

Covers: upsert by uniqueName (201 / 204 / 404 without Prefer), idempotency, $filter / $select / $top,
keyCredentials via PATCH with a real certificate (and the 400s for malformed keys and wrong dates), `key`
null in lists but returned with $select on one object, OwnedBy semantics, least-privilege 403s, the Graph
error shape, and msgraph's retry handler on 429 + Retry-After.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from tests.integration.conftest import prefer_create, run, unique

pytestmark = pytest.mark.timeout(60)





def key_credential(cert, **overrides) -> KeyCredential:
    """A KeyCredential for `cert` (msgraph-sdk: `key` must be bytes)."""
    fields = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.der, "display_name": "CN=test",
              "start_date_time": cert.not_before, "end_date_time": cert.not_after}
    fields.update(overrides)
    return KeyCredential(**fields)


async def upsert(client, unique_name: str, **fields) -> Application | None:
    return await client.applications_with_unique_name(unique_name).patch(Application(**fields), prefer_create())


def statuses(simulator, since: int, method: str, fragment: str) -> list[int]:
    return [r["status"] for r in simulator.requests_since(since)["requests"]
            if r["origin"] == "graph" and r["method"] == method and fragment in r["path"]]


def test_upsert_creates_201_then_updates_204_and_is_idempotent(simulator, home, graph_kit):
    name = unique()

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            display = "Itrezzo \u2013 cba \u2013 (a@x)"  # the product's naming convention uses en dashes
            created = await upsert(client, name, display_name=display, sign_in_audience="AzureADMyOrg")
            again = await upsert(client, name, display_name=display + " renamed")
            same = await upsert(client, name, display_name=display + " renamed")
            found = await client.applications_with_unique_name(name).get()
            return created, again, same, found

    since = simulator.requests_since()["next"]
    created, again, same, found = run(main())
    assert created is not None
    assert created.unique_name == name
    assert created.app_id
    assert again is None
    assert same is None
    assert statuses(simulator, since, "PATCH", "uniqueName=") == [201, 204, 204]
    assert found.id == created.id
    assert found.display_name.endswith("renamed")
    state = simulator.tenant_state(home["tenantId"])
    assert sum(1 for a in state["applications"] if a["uniqueName"] == name) == 1
    # the calling service principal became the owner
    assert state["owners"][created.id] == [home["provisioner"]["servicePrincipalId"]]


def test_upsert_without_prefer_is_404_and_error_has_graph_shape(home, graph_kit):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as info:
                await client.applications_with_unique_name(unique()).patch(Application(display_name="x"))
            return info.value

    error = run(main())
    assert error.response_status_code == 404
    assert error.error.code == "Request_ResourceNotFound"
    assert error.error.inner_error is not None
    assert error.error.inner_error.request_id


def test_list_filter_select_and_top(home, graph_kit):
    prefix = unique("certauth-filter")

    async def main():
        from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder

        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            apps = [await upsert(client, f"{prefix}-{i}", display_name=f"{prefix} app {i}") for i in range(3)]
            q = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters
            by_prefix = await client.applications.get(RequestConfiguration(query_parameters=q(
                filter=f"startswith(displayName,'{prefix}')", select=["id", "displayName", "appId"])))
            by_app_id = await client.applications.get(RequestConfiguration(query_parameters=q(
                filter=f"appId eq '{apps[1].app_id}' and displayName eq '{prefix} APP 1'")))
            paged = await client.applications.get(RequestConfiguration(query_parameters=q(
                filter=f"startswith(displayName,'{prefix}')", top=2)))
            with pytest.raises(ODataError) as bad_filter:
                await client.applications.get(RequestConfiguration(query_parameters=q(filter="notes eq 'x'")))
            with pytest.raises(ODataError) as bad_select:
                await client.applications.get(RequestConfiguration(query_parameters=q(select=["nope"])))
            return apps, by_prefix, by_app_id, paged, bad_filter.value, bad_select.value

    apps, by_prefix, by_app_id, paged, bad_filter, bad_select = run(main())
    assert sorted(a.display_name for a in by_prefix.value) == [f"{prefix} app {i}" for i in range(3)]
    assert all(a.unique_name is None and a.app_id for a in by_prefix.value)  # not selected → not returned
    assert [a.id for a in by_app_id.value] == [apps[1].id]  # eq is case-insensitive
    assert len(paged.value) == 2
    assert paged.odata_next_link
    assert "skiptoken" in paged.odata_next_link
    assert bad_filter.response_status_code == 400
    assert bad_filter.error.code == "Request_UnsupportedQuery"
    assert bad_select.response_status_code == 400
    assert "nope" in bad_select.error.message


def test_key_credential_via_patch_key_null_in_lists_present_with_select(home, graph_kit):
    cert = graph_kit.certificate("CN-patch")

    async def main():
        from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
        from msgraph.generated.applications.item.application_item_request_builder import (
            ApplicationItemRequestBuilder,
        )

        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await upsert(client, unique(), display_name="keys")
            await client.applications.by_application_id(app.id).patch(
                Application(key_credentials=[key_credential(cert)]))
            listed = await client.applications.get(RequestConfiguration(
                query_parameters=ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
                    filter=f"id eq '{app.id}'")))
            plain = await client.applications.by_application_id(app.id).get()
            selected = await client.applications.by_application_id(app.id).get(RequestConfiguration(
                query_parameters=ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(
                    select=["keyCredentials"])))
            # Re-send the existing key as a client would after a plain GET (key null, keyId kept) plus a new one.
            second = graph_kit.certificate("CN-second")
            existing = plain.key_credentials[0]
            await client.applications.by_application_id(app.id).patch(Application(key_credentials=[
                KeyCredential(key_id=existing.key_id, type="AsymmetricX509Cert", usage="Verify"),
                key_credential(second)]))
            after = await client.applications.by_application_id(app.id).get(RequestConfiguration(
                query_parameters=ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(
                    select=["keyCredentials"])))
            return listed, plain, selected, after, second

    listed, plain, selected, after, second = run(main())
    [listed_key] = listed.value[0].key_credentials
    assert listed_key.key is None
    assert plain.key_credentials[0].key is None
    [selected_key] = selected.key_credentials
    assert selected_key.key == cert.der
    assert selected_key.custom_key_identifier == cert.sha1  # defaults to the SHA-1 thumbprint
    assert selected_key.start_date_time == cert.not_before
    assert selected_key.end_date_time == cert.not_after
    assert uuid.UUID(str(selected_key.key_id))
    assert {k.key for k in after.key_credentials} == {cert.der, second.der}
    assert str(selected_key.key_id) in {str(k.key_id) for k in after.key_credentials}


def test_malformed_keys_and_wrong_dates_are_400(home, graph_kit, simulator):
    cert = graph_kit.certificate("CN-bad")

    async def main():
        import ssl

        import httpx

        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await upsert(client, unique(), display_name="bad keys")
            errors = {}
            for label, kc in {
                "not a certificate": key_credential(cert, key=b"definitely not DER"),
                "empty key": key_credential(cert, key=b""),
                "end date": key_credential(cert, end_date_time=cert.not_after.replace(year=cert.not_after.year + 1)),
            }.items():
                with pytest.raises(ODataError) as info:
                    await client.applications.by_application_id(app.id).patch(Application(key_credentials=[kc]))
                errors[label] = info.value
            # base64url (what a careless client sends) is not Edm.Binary: send it raw through the SDK's adapter.
            token = (await credential.get_token("https://graph.microsoft.com/.default")).token
            urlsafe = base64.urlsafe_b64encode(cert.der + b"\xfb\xff").decode()
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=simulator.info["caBundle"])) as http:
                raw = await http.patch(f"{simulator.info['graphUrl']}/applications/{app.id}",
                                       headers={"Authorization": f"Bearer {token}"},
                                       json={"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify",
                                                                 "key": urlsafe}]})
            state = await client.applications.by_application_id(app.id).get()
            return errors, raw, state

    errors, raw, state = run(main())
    assert errors["not a certificate"].response_status_code == 400
    assert errors["not a certificate"].error.code == "KeyCredentialsInvalidValue"
    assert errors["empty key"].error.code == "KeyCredentialsInvalidValue"
    assert errors["empty key"].error.message == "KeyValue cannot be null or empty"
    assert errors["end date"].response_status_code == 400
    assert errors["end date"].error.code == "KeyCredentialsInvalidEndDate"
    assert raw.status_code == 400
    assert "Edm.Binary" in raw.json()["error"]["message"]
    assert state.key_credentials == []  # nothing was stored by the failed PATCHes


def test_owned_by_cannot_touch_apps_it_does_not_own(home, graph_kit):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            seeded = home["provisioner"]["applicationObjectId"]  # the seed app has no owner
            with pytest.raises(ODataError) as patch_error:
                await client.applications.by_application_id(seeded).patch(Application(notes="mine now"))
            with pytest.raises(ODataError) as delete_error:
                await client.applications.by_application_id(seeded).delete()
            readable = await client.applications.by_application_id(seeded).get()  # reading is allowed
            mine = await upsert(client, unique(), display_name="mine")
            await client.applications.by_application_id(mine.id).patch(Application(notes="ok"))
            owners = await client.applications.by_application_id(mine.id).owners.get()
            return patch_error.value, delete_error.value, readable, owners

    patch_error, delete_error, readable, owners = run(main())
    for error in (patch_error, delete_error):
        assert error.response_status_code == 403
        assert error.error.code == "Authorization_RequestDenied"
        assert error.error.message == "Insufficient privileges to complete the operation."
    assert readable.id == home["provisioner"]["applicationObjectId"]
    assert [o.id for o in owners.value] == [home["provisioner"]["servicePrincipalId"]]


def test_least_privilege_403s(simulator, home, graph_kit, restore_grants):
    simulator.grant(home["tenantId"], ["Organization.Read.All"])

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            errors = []
            for call in (lambda: upsert(client, unique(), display_name="nope"),
                         lambda: client.applications.get(),
                         lambda: client.service_principals.get()):
                with pytest.raises(ODataError) as info:
                    await call()
                errors.append(info.value)
            org = await client.organization.get()
            return errors, org

    errors, org = run(main())
    assert [e.response_status_code for e in errors] == [403, 403, 403]
    assert {e.error.code for e in errors} == {"Authorization_RequestDenied"}
    assert org.value[0].id == home["tenantId"]


def test_retry_handler_honours_429_retry_after(simulator, home, graph_kit, clean_faults):
    simulator.set_faults([{"origin": "graph", "method": "GET", "path": "/v1.0/organization", "status": 429,
                           "count": 2, "retryAfter": 0}])
    since = simulator.requests_since()["next"]

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            return await graph_kit.client(credential).organization.get()

    org = run(main())
    assert org.value[0].id == home["tenantId"]
    assert statuses(simulator, since, "GET", "/v1.0/organization") == [429, 429, 200]
