"""The customer's own certificate: the request's variants, the body limit raised for a PFX only, the local PFX
checks, CSR PEM and the upload's parsing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.keyvault import CertificateRejected, check_pfx, csr_pem, read_certificates
from shared.models import MAX_BODY_BYTES, MAX_PFX_BODY_BYTES, RequestError, parse_onboarding_request
from tests.customer_pfx import make_pfx

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
NOW = datetime.now(UTC)


def _body(certificate, **extra) -> bytes:
    return json.dumps({"tenantId": TENANT, "serviceMailbox": "sync@contoso.com", "certificate": certificate,
                       **extra}).encode()


def _problems(body: bytes) -> list[dict]:
    with pytest.raises(RequestError) as caught:
        parse_onboarding_request(body)
    return caught.value.problems


def test_the_three_variants_parse_to_their_source():
    assert parse_onboarding_request(_body({"keySize": 3072})).certificate.source == "keyVault"
    pfx = parse_onboarding_request(_body({"pfx": base64.b64encode(b"x" * 10).decode(), "password": "p"}))
    assert (pfx.certificate.source, pfx.certificate.pfx_bytes()) == ("imported", b"x" * 10)
    assert parse_onboarding_request(_body({"issuer": "customer"})).certificate.source == "customerCa"


@pytest.mark.parametrize(("certificate", "field"), [
    ({"pfx": "AAAA", "password": "p", "keySize": 2048}, "certificate.keySize"),
    ({"pfx": "AAAA", "password": "p", "exportable": False}, "certificate.exportable"),
    ({"issuer": "customer", "validityMonths": 3}, "certificate.validityMonths"),
    ({"pfx": "AAAA", "password": "p", "issuer": "customer"}, "certificate.issuer"),
    ({"pfx": "AAAA"}, "certificate.password"),
    ({"password": "p"}, "certificate.password"),
    ({"pfx": "not base64!", "password": "p"}, "certificate.pfx"),
    ({"pfx": "", "password": "p"}, "certificate.pfx"),
    ({"pfx": 12, "password": "p"}, "certificate.pfx"),
    ({"issuer": "Self"}, "certificate.issuer"),
])
def test_mixed_or_bad_variants_name_the_field(certificate, field):
    assert [p["field"] for p in _problems(_body(certificate))] == [field]


def test_the_body_limit_is_raised_for_a_pfx_only():
    padding = "A" * (MAX_BODY_BYTES + 100)
    large_pfx = _body({"pfx": padding, "password": "p"})
    assert MAX_BODY_BYTES < len(large_pfx) <= MAX_PFX_BODY_BYTES
    assert parse_onboarding_request(large_pfx).certificate.source == "imported"
    # The same size without a PFX stays refused, and a PFX beyond its own limit too.
    assert _problems(_body({}, permissionProfile=padding))[0]["field"] == "body"
    too_large = _body({"pfx": "A" * MAX_PFX_BODY_BYTES, "password": "p"})
    assert _problems(too_large)[0]["field"] == "body"


def test_no_validation_message_carries_the_password_or_pfx():
    secret = "s3cr3t-Pa55word"
    for certificate in ({"password": secret}, {"pfx": "QUJD", "password": secret, "keySize": 2048},
                        {"pfx": "QUJD" + secret + "!!", "password": secret}):
        assert secret not in json.dumps(_problems(_body(certificate)))
    request = parse_onboarding_request(_body({"pfx": "QUJD", "password": secret}))
    assert secret not in repr(request)
    assert "QUJD" not in repr(request)


def test_a_good_pfx_passes_the_local_checks():
    pfx, certificate = make_pfx("pw", NOW)
    assert check_pfx(pfx, "pw", NOW) == certificate
    unprotected, _ = make_pfx("", NOW)
    assert check_pfx(unprotected, "", NOW).public_key().key_size == 2048


@pytest.mark.parametrize(("make", "password", "field", "code"), [
    (lambda: make_pfx("right", NOW), "Xq9-not-it", "certificate.password", "WrongPasswordOrNotPfx"),
    (lambda: make_pfx("pw", NOW, with_key=False), "pw", "certificate.pfx", "NoPrivateKey"),
    (lambda: make_pfx("pw", NOW, days=-10), "pw", "certificate.pfx", "CertificateExpired"),
    (lambda: make_pfx("pw", NOW, key_size=1024), "pw", "certificate.pfx", "WeakKey"),
    (lambda: make_pfx("pw", NOW, elliptic=True), "pw", "certificate.pfx", "WeakKey"),
    (lambda: (b"not a pfx at all", None), "Zz-7", "certificate.password", "WrongPasswordOrNotPfx"),
])
def test_bad_pfx_files_are_named(make, password, field, code):
    pfx, _ = make()
    with pytest.raises(CertificateRejected) as caught:
        check_pfx(pfx, password, NOW)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert password not in str(caught.value)


def test_expiry_is_judged_on_the_given_clock():
    pfx, _ = make_pfx("pw", NOW, days=30)
    assert check_pfx(pfx, "pw", NOW + timedelta(days=29))
    with pytest.raises(CertificateRejected, match="expired"):
        check_pfx(pfx, "pw", NOW + timedelta(days=31))


def test_uploads_read_as_pem_chain_or_der():
    _, first = make_pfx("pw", NOW)
    _, second = make_pfx("pw", NOW)
    pem = first.public_bytes(serialization.Encoding.PEM) + second.public_bytes(serialization.Encoding.PEM)
    assert read_certificates(pem) == [first, second]
    assert read_certificates(first.public_bytes(serialization.Encoding.DER)) == [first]
    with pytest.raises(CertificateRejected) as caught:
        read_certificates(b"hello")
    assert caught.value.field == "body"


def test_csr_pem_round_trips():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(65537, 2048)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(key, hashes.SHA256()))
    der = csr.public_bytes(serialization.Encoding.DER)
    pem = csr_pem(der)
    assert pem.startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    assert x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER) == der
