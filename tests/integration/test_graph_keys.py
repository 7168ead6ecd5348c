"""addKey / removeKey with proof-of-possession JWTs, acting as the application itself (msgraph-sdk with a
ClientAssertionCredential signed by the app's current certificate)."""

from __future__ import annotations

import uuid

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.applications.item.add_key.add_key_post_request_body import AddKeyPostRequestBody
from msgraph.generated.applications.item.application_item_request_builder import ApplicationItemRequestBuilder
from msgraph.generated.applications.item.remove_key.remove_key_post_request_body import RemoveKeyPostRequestBody
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import prefer_create, run

pytestmark = pytest.mark.timeout(60)

PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"




def with_keys() -> RequestConfiguration:
    return RequestConfiguration(query_parameters=ApplicationItemRequestBuilder
                                .ApplicationItemRequestBuilderGetQueryParameters(select=["keyCredentials"]))


def proof(cert, object_id: str, now: float, lifetime: int = 600, aud: str = PROOF_AUDIENCE) -> str:
    """The proof of possession, as learn.microsoft.com/graph/application-rollkey-prooftoken builds it."""
    claims = {"aud": aud, "iss": object_id, "nbf": int(now), "exp": int(now) + lifetime}
    return jwt.encode(claims, cert.private_key, algorithm="RS256", headers={"x5t": cert.x5t})


def new_key(cert) -> KeyCredential:
    return KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=cert.der)


async def registered_app(graph_kit, home, *certs):
    """An app with `certs` and its service principal, created by the provisioner."""
    credential = graph_kit.secret_credential(home)
    async with credential:
        client = graph_kit.client(credential)
        app = await client.applications_with_unique_name(f"certauth-roll-{uuid.uuid4().hex[:10]}").patch(
            Application(display_name="rolling", key_credentials=[new_key(c) for c in certs]), prefer_create())
        await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
        return app


def test_app_rolls_its_own_key_with_proofs(home, graph_kit):
    current, successor = graph_kit.certificate("CN-current"), graph_kit.certificate("CN-successor")

    async def main():
        app = await registered_app(graph_kit, home, current)
        as_app = graph_kit.assertion_credential(home["tenantId"], app.app_id, current)
        async with as_app:
            client = graph_kit.client(as_app)  # the app's own token: no Graph roles at all
            item = client.applications.by_application_id(app.id)
            now = graph_kit.sandbox_epoch()
            failures = {}
            for label, bad in {
                "wrong aud": proof(current, app.id, now, aud="https://graph.microsoft.com"),
                "wrong iss": proof(current, app.app_id, now),
                "too long": proof(current, app.id, now, lifetime=601),
                "expired": proof(current, app.id, now - 1200),
                "unknown key": proof(successor, app.id, now),
                "padded": proof(current, app.id, now).split(".")[0] + "=." + proof(current, app.id, now)
                .split(".", 1)[1],
            }.items():
                with pytest.raises(ODataError) as info:
                    await item.add_key.post(AddKeyPostRequestBody(key_credential=new_key(successor),
                                                                  password_credential=None, proof=bad))
                failures[label] = info.value
            added = await item.add_key.post(AddKeyPostRequestBody(
                key_credential=new_key(successor), password_credential=None, proof=proof(current, app.id, now)))
            with pytest.raises(ODataError) as not_mine:  # the app cannot roll another app's keys
                await client.applications.by_application_id(home["provisioner"]["applicationObjectId"]) \
                    .add_key.post(AddKeyPostRequestBody(key_credential=new_key(successor), proof=proof(
                        current, home["provisioner"]["applicationObjectId"], now)))
        # the new key works; then the old one is removed with a proof signed by the new one
        # (reading the application needs Application.Read.All, which the app itself does not hold)
        provisioner = graph_kit.secret_credential(home)
        new_credential = graph_kit.certificate_credential(home["tenantId"], app.app_id, successor.pem)
        async with provisioner, new_credential:
            reader = graph_kit.client(provisioner)
            token = await new_credential.get_token("https://graph.microsoft.com/.default")
            client = graph_kit.client(new_credential)
            keys = (await reader.applications.by_application_id(app.id).get(with_keys())).key_credentials
            old = next(k for k in keys if k.key == current.der)
            await client.applications.by_application_id(app.id).remove_key.post(RemoveKeyPostRequestBody(
                key_id=old.key_id, proof=proof(successor, app.id, graph_kit.sandbox_epoch())))
            remaining = (await reader.applications.by_application_id(app.id).get(with_keys())).key_credentials
        old_credential = graph_kit.certificate_credential(home["tenantId"], app.app_id, current.pem)
        async with old_credential:
            with pytest.raises(ClientAuthenticationError):
                await old_credential.get_token("https://graph.microsoft.com/.default")
        return app, failures, added, not_mine.value, token, remaining

    app, failures, added, not_mine, token, remaining = run(main())
    for label, error in failures.items():
        assert (label, error.response_status_code) == (label, 401)
        assert error.error.code == "Authentication_MissingOrMalformed"
    assert added.type == "AsymmetricX509Cert"
    assert added.key_id
    assert added.custom_key_identifier == successor.sha1
    assert not_mine.response_status_code == 403
    assert jwt.decode(token.token, options={"verify_signature": False})["appid"] == app.app_id
    assert [k.key for k in remaining] == [successor.der]
    assert remaining[0].key_id == added.key_id


def test_add_key_needs_a_valid_certificate(home, graph_kit):
    expired = graph_kit.certificate("CN-expired", days=1, not_before_offset=-3 * 86400)
    fresh = graph_kit.certificate("CN-fresh")

    async def main():
        app = await registered_app(graph_kit, home, expired)
        credential = graph_kit.secret_credential(home)  # the owner (OwnedBy) calls on the app's behalf
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as info:
                await client.applications.by_application_id(app.id).add_key.post(AddKeyPostRequestBody(
                    key_credential=new_key(fresh), proof=proof(expired, app.id, graph_kit.sandbox_epoch())))
            # PATCH still works ("use Update application instead")
            await client.applications.by_application_id(app.id).patch(Application(key_credentials=[new_key(fresh)]))
            keys = (await client.applications.by_application_id(app.id).get(with_keys())).key_credentials
            return info.value, keys

    error, keys = run(main())
    assert error.response_status_code in (400, 403)
    assert [k.key for k in keys] == [fresh.der]
