"""The rotation's pure parts: the addKey / removeKey proof-of-possession JWT (application-rollkey-prooftoken),
the rotate request's options, and the record the rotation is rebuilt from."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from functions.rotation import _parse_options
from shared.rotation import (
    PROOF_AUDIENCE,
    PROOF_LIFETIME_SECONDS,
    manual_action,
    proof_token,
    rotation_instance_id,
    rotation_request,
    source_of,
)
from shared.settings import get_settings

OBJECT_ID = "3f9c1e2a-6b7d-4e8f-9a0b-1c2d3e4f5a6b"
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def key_and_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certauth test")])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(start).not_valid_after(start + timedelta(days=365))
                   .sign(key, hashes.SHA256()))
    return key, certificate


def _sign_digest(key):
    """What Key Vault's sign does with RS256: PKCS#1 v1.5 over the given SHA-256 digest."""
    calls: list[bytes] = []

    def sign(digest: bytes) -> bytes:
        calls.append(digest)
        return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    return sign, calls


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_proof_is_signed_by_the_key_with_the_documented_claims(key_and_certificate) -> None:
    key, certificate = key_and_certificate
    der = certificate.public_bytes(Encoding.DER)
    sign, calls = _sign_digest(key)
    proof = proof_token(OBJECT_ID, der, sign, NOW)
    claims = jwt.decode(proof, certificate.public_key(), algorithms=["RS256"], audience=PROOF_AUDIENCE,
                        options={"verify_exp": False, "verify_nbf": False})
    assert claims["aud"] == "00000002-0000-0000-c000-000000000000"
    assert claims["iss"] == OBJECT_ID  # the application's object id, not its appId
    assert claims["nbf"] == NOW
    assert 0 < claims["exp"] - claims["nbf"] <= 600 == PROOF_LIFETIME_SECONDS
    header = jwt.get_unverified_header(proof)
    assert header["alg"] == "RS256"
    assert _b64url_decode(header["x5t"]) == hashlib.sha1(der).digest()
    signing_input = proof.rsplit(".", 1)[0]
    assert calls == [hashlib.sha256(signing_input.encode()).digest()]  # Key Vault gets the digest only


def test_the_proof_has_no_padding_in_any_part(key_and_certificate) -> None:
    key, certificate = key_and_certificate
    der = certificate.public_bytes(Encoding.DER)
    sign, _ = _sign_digest(key)
    # Vary the issuer length so that some encoding would need padding.
    for object_id in (OBJECT_ID, OBJECT_ID[:-1], OBJECT_ID[:-2]):
        proof = proof_token(object_id, der, sign, NOW)
        assert proof.count(".") == 2
        assert "=" not in proof
        assert json.loads(_b64url_decode(proof.split(".")[1]))["iss"] == object_id


def test_a_proof_by_another_key_does_not_verify(key_and_certificate) -> None:
    _, certificate = key_and_certificate
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sign, _ = _sign_digest(other)
    proof = proof_token(OBJECT_ID, certificate.public_bytes(Encoding.DER), sign, NOW)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(proof, certificate.public_key(), algorithms=["RS256"], audience=PROOF_AUDIENCE,
                   options={"verify_exp": False, "verify_nbf": False})


def test_the_rotation_instance_is_deterministic_per_onboarding() -> None:
    onboarding = "c0ffee00-0000-4000-8000-000000000001.0123456789abcdef0123"
    assert rotation_instance_id(onboarding) == f"rotation-{onboarding}"
    assert rotation_instance_id(onboarding) == rotation_instance_id(onboarding)


def test_the_request_is_rebuilt_from_the_record() -> None:
    record = {"TenantId": "t", "ServiceMailbox": "svc@contoso.com", "Method": "manual",
              "PermissionProfile": "exchange-full", "DirectoryRole": "",
              "CertificateOptions": json.dumps({"validityMonths": 12, "keySize": 2048, "exportable": False})}
    request = rotation_request("id", record)
    assert request == {"onboardingId": "id", "tenantId": "t", "serviceMailbox": "svc@contoso.com",
                       "method": "manual", "permissionProfile": "exchange-full", "directoryRole": None,
                       "certificate": {"validityMonths": 12, "keySize": 2048, "exportable": False}}
    assert source_of(request["certificate"]) == "keyVault"
    assert source_of({"imported": True}) == "imported"
    assert source_of({"issuer": "customer"}) == "customerCa"
    assert rotation_request("id", {**record, "Method": ""})["method"] == "automatic"
    # The automatic method's role step writes the role's display name; the request carries the catalog key.
    for stored in ("exchange-administrator", "Exchange Administrator"):
        assert rotation_request("id", {**record, "DirectoryRole": stored})["directoryRole"] == "exchange-administrator"


def test_a_manual_action_names_its_kind_and_link() -> None:
    result = manual_action("regenerateScript", "run the script", {"scriptUrl": "/api/onboardings/x/script"})
    assert result == {"ok": True, "manualActionNeeded": {"kind": "regenerateScript", "detail": "run the script",
                                                         "links": {"scriptUrl": "/api/onboardings/x/script"}}}


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch):
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_rotate_options_are_validated(settings_env) -> None:
    assert _parse_options(b"") == ({}, [])
    assert _parse_options(b'{"keySize": 3072, "validityMonths": 6}') == ({"keySize": 3072, "validityMonths": 6}, [])
    assert _parse_options(b'{"certificate": {"keySize": 4096}}') == ({"keySize": 4096}, [])
    assert _parse_options(b'{"pfx": "AAAA", "password": "p"}') == ({"pfx": "AAAA", "password": "p"}, [])
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert _parse_options(json.dumps({"signedCertificate": pem}).encode()) == ({"signedCertificate": pem}, [])
    for body in ({"signedCertificate": ""}, {"signedCertificate": 5}, {"signedCertificate": pem, "keySize": 2048}):
        assert [p["field"] for p in _parse_options(json.dumps(body).encode())[1]] == ["signedCertificate"], body
    for body, field in ((b'{"keySize": 1024}', "keySize"), (b'{"validityMonths": 0}', "validityMonths"),
                        (b'{"validityMonths": "6"}', "validityMonths"), (b'{"exportable": "yes"}', "exportable"),
                        (b'{"pfx": "not base64!"}', "pfx"), (b'{"pfx": "AAAA", "keySize": 2048}', "pfx"),
                        (b'{"password": "p"}', "password"), (b'{"pfx": 1}', "pfx"),
                        (b'{"issuer": "customer"}', "issuer"),
                        (b"[1]", "body"), (b"{", "body")):
        _, problems = _parse_options(body)
        assert [p["field"] for p in problems] == [field], body


def test_exportable_rotation_needs_the_operator_switch(settings_env) -> None:
    settings_env.delenv("CERTAUTH_ALLOW_EXPORTABLE_KEYS", raising=False)
    assert [p["field"] for p in _parse_options(b'{"exportable": true}')[1]] == ["exportable"]
    get_settings.cache_clear()
    settings_env.setenv("CERTAUTH_ALLOW_EXPORTABLE_KEYS", "true")
    assert _parse_options(b'{"exportable": true}') == ({"exportable": True}, [])
