"""The simulator's client-assertion checks, in process: signature, thumbprint, key and assertion lifetimes."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandbox.azure.entra import check_client_assertion
from sandbox.azure.errors import AADError
from sandbox.azure.world import World
from sandbox.clock import isoformat_z

AUDIENCE = "https://login.example/tenant/oauth2/v2.0/token"


def _certificate(key, not_before: datetime, days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "assertion test")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=days)).sign(key, hashes.SHA256()))


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def setup(key):
    world = World()
    tenant = world.add_tenant(1, ["Application.Read.All"])
    start = world.now().replace(microsecond=0) - timedelta(days=1)
    cert = _certificate(key, start, 30)
    der = cert.public_bytes(serialization.Encoding.DER)
    app = world.new_application(tenant, {"displayName": "app"})
    app["keyCredentials"] = [{"type": "AsymmetricX509Cert", "usage": "Verify", "keyId": "k1", "_der": der,
                              "startDateTime": isoformat_z(cert.not_valid_before_utc),
                              "endDateTime": isoformat_z(cert.not_valid_after_utc)}]
    return world, app, der


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assertion(world, app, key, der, *, alg="RS256", header_kind="x5t", aud=AUDIENCE, lifetime=600,
               iss=None) -> str:
    now = int(world.clock.epoch())
    header = {"x5t": _b64url(hashlib.sha1(der).digest()) + "="} if header_kind == "x5t" \
        else {"x5t#S256": _b64url(hashlib.sha256(der).digest())}
    claims = {"aud": aud, "iss": iss or app["appId"], "sub": app["appId"], "jti": "j", "nbf": now,
              "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, key, algorithm=alg, headers=header)


@pytest.mark.parametrize(("alg", "kind"), [("RS256", "x5t"), ("PS256", "x5t#S256")])
def test_valid_assertions_pass(setup, key, alg, kind):
    world, app, der = setup
    check_client_assertion(world, app, _assertion(world, app, key, der, alg=alg, header_kind=kind), {AUDIENCE})


def test_signature_by_another_key_is_refused(setup):
    world, app, der = setup
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, _assertion(world, app, other, der), {AUDIENCE})
    assert caught.value.aadsts == 700027
    assert "did not match the expected signature" in caught.value.message


def test_unregistered_certificate_is_refused(setup, key):
    world, app, _ = setup
    other_der = _certificate(key, world.now() - timedelta(days=1), 5).public_bytes(serialization.Encoding.DER)
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, _assertion(world, app, key, other_der), {AUDIENCE})
    assert caught.value.aadsts == 700027
    assert "not registered on application" in caught.value.message


def test_expired_key_is_refused_on_the_sandbox_clock(setup, key):
    world, app, der = setup
    world.clock.advance(31 * 86400)
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, _assertion(world, app, key, der), {AUDIENCE})
    assert "The key used is expired" in caught.value.message


def test_expired_assertion_is_refused(setup, key):
    world, app, der = setup
    assertion = _assertion(world, app, key, der, lifetime=60)
    world.clock.advance(3600)
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, assertion, {AUDIENCE})
    assert caught.value.aadsts == 700024


def test_wrong_audience_and_issuer_are_refused(setup, key):
    world, app, der = setup
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, _assertion(world, app, key, der, aud="https://elsewhere"), {AUDIENCE})
    # AADSTS700023, not the federated-credential code AADSTS700212 (microsoft.AADSTS_ERRORS).
    assert caught.value.aadsts == 700023
    assert caught.value.message.startswith("Client assertion audience claim does not match Realm issuer.")
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, _assertion(world, app, key, der, iss="someone-else"), {AUDIENCE})
    assert caught.value.aadsts == 700021


def test_hs256_is_refused(setup):
    world, app, _ = setup
    forged = jwt.encode({"iss": app["appId"]}, "a-shared-secret-long-enough-for-hs256!", algorithm="HS256",
                        headers={"x5t": "abc"})
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, forged, {AUDIENCE})
    assert "not a supported signature algorithm" in caught.value.message


def test_a_key_added_within_the_keycredential_delay_is_not_found(setup, key):
    world, app, der = setup
    world.replication_delay = {"keyCredential": 60}
    world.note_key_credentials()  # as after the Graph write that added the key
    with pytest.raises(AADError) as caught:
        check_client_assertion(world, app, _assertion(world, app, key, der), {AUDIENCE})
    assert caught.value.aadsts == 700027
    assert "not registered on application" in caught.value.message
    world.clock.advance(61)
    check_client_assertion(world, app, _assertion(world, app, key, der), {AUDIENCE})


def test_a_key_is_not_subject_to_a_delay_set_for_other_kinds(setup, key):
    world, app, der = setup
    world.replication_delay = {"servicePrincipal": 60, "appRoleAssignment": 60}
    world.note_key_credentials()
    check_client_assertion(world, app, _assertion(world, app, key, der), {AUDIENCE})


def test_token_roles_catch_up_with_a_new_assignment_after_the_delay():
    world = World()
    tenant = world.add_tenant(1, [])
    graph = tenant.service_principal_by_app_id("00000003-0000-0000-c000-000000000000")
    principal = tenant.service_principals[tenant.seeded["provisioner"]["servicePrincipalId"]]
    role = next(r for r in graph["appRoles"] if r["value"] == "User.Read.All")
    world.replication_delay = {"appRoleAssignment": 60}
    world.new_app_role_assignment(tenant, principal, graph, role["id"])
    assert world.token_roles(tenant, principal["id"], graph["id"]) == []
    assert tenant.roles_for(principal["id"], graph["id"]) == ["User.Read.All"]  # Graph sees it at once
    world.clock.advance(60)
    assert world.token_roles(tenant, principal["id"], graph["id"]) == ["User.Read.All"]


def test_grants_set_through_the_admin_api_do_not_lag():
    world = World()
    tenant = world.add_tenant(1, [])
    graph = tenant.service_principal_by_app_id("00000003-0000-0000-c000-000000000000")
    principal_id = tenant.seeded["provisioner"]["servicePrincipalId"]
    world.replication_delay = {"appRoleAssignment": 60}
    world.set_roles(tenant, principal_id, graph["id"], ["Organization.Read.All"])
    assert world.token_roles(tenant, principal_id, graph["id"]) == ["Organization.Read.All"]


@pytest.mark.parametrize(("issuer", "version"), [(None, "1.0"), ("https://login.example/t/v2.0", "2.0")])
def test_token_claims_follow_the_token_version(issuer, version):
    from sandbox.azure.tokens import CLIENT_SECRET, TokenIssuer

    world = World()
    token, _ = TokenIssuer(world.clock, "https://login.example").issue(
        tenant_id="t", object_id="o", app_id="a", audience="https://graph.microsoft.com", roles=["R"],
        client_auth=CLIENT_SECRET, issuer=issuer)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["ver"] == version
    if version == "1.0":
        assert (claims["appid"], claims["appidacr"]) == ("a", "1")
        assert not {"azp", "azpacr"} & set(claims)
        assert claims["iss"] == "https://sts.windows.net/t/"
    else:
        assert (claims["azp"], claims["azpacr"]) == ("a", "1")
        assert not {"appid", "appidacr"} & set(claims)
