"""Key Vault certificates in the simulator, driven only through azure-keyvault-certificates.

Polling: `begin_create_certificate` returns an LROPoller whose CreateCertificatePoller loops
`while not finished(): poll; if not finished(): sleep(5)`. The simulator answers the create with 202
inProgress (as Key Vault does) and completes the operation at the first poll when no creation delay is
configured, so the poller finishes after one GET /pending and never sleeps. No private SDK option
(`_polling_interval`) is used.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.certificates import (
    CertificateContentType,
    CertificatePolicy,
    KeyVaultCertificate,
    WellKnownIssuerNames,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def policy(subject: str = "CN=certauth test", *, months: int = 12, exportable: bool = False, key_size: int = 2048,
           content_type: CertificateContentType = CertificateContentType.pkcs12) -> CertificatePolicy:
    return CertificatePolicy(issuer_name=WellKnownIssuerNames.self, subject=subject, validity_in_months=months,
                             exportable=exportable, key_type="RSA", key_size=key_size, reuse_key=False,
                             content_type=content_type)


def create(client, name: str, certificate_policy: CertificatePolicy, **kwargs) -> KeyVaultCertificate:
    result = client.begin_create_certificate(name, certificate_policy, **kwargs).result()
    assert isinstance(result, KeyVaultCertificate), f"creation did not complete: {result!r}"
    return result


def add_months(moment, months):
    import calendar
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def test_create_get_versions_policy(simulator, vault_clients):
    client = vault_clients.certificates
    name = unique("create")
    mark = simulator.requests_since()["next"]

    first = create(client, name, policy("CN=certauth onboarding", months=3), tags={"purpose": "test"})

    # The certificate as Key Vault describes it, and the X.509 it carries.
    assert first.name == name
    assert first.properties.version
    assert first.properties.enabled is True
    assert first.properties.tags == {"purpose": "test"}
    assert first.properties.recovery_level == "Recoverable+Purgeable"
    assert first.id.endswith(f"/certificates/{name}/{first.properties.version}")
    assert first.key_id.endswith(f"/keys/{name}/{first.properties.version}")
    assert first.secret_id.endswith(f"/secrets/{name}/{first.properties.version}")
    cert = x509.load_der_x509_certificate(first.cer)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "certauth onboarding"
    assert cert.issuer == cert.subject  # self-signed
    assert first.properties.x509_thumbprint == hashlib.sha1(first.cer).digest()
    assert cert.not_valid_before_utc == first.properties.not_before
    assert cert.not_valid_after_utc == first.properties.expires_on
    assert cert.not_valid_after_utc == add_months(cert.not_valid_before_utc, 3)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 2048

    # One POST /create answered 202, then a single poll found the operation completed (no 5 s sleep).
    log = [r for r in simulator.requests_since(mark)["requests"] if f"/certificates/{name}" in r["path"]]
    creates = [r for r in log if r["method"] == "POST" and r["status"] == 202]
    polls = [r for r in log if r["path"].startswith(f"/certificates/{name}/pending") and r["status"] == 200]
    assert len(creates) == 1
    assert len(polls) == 1

    fetched = client.get_certificate(name)
    assert fetched.properties.version == first.properties.version
    assert fetched.cer == first.cer

    # A second create adds a version and keeps the first.
    second = create(client, name, policy("CN=certauth onboarding", months=6))
    assert second.properties.version != first.properties.version
    assert client.get_certificate(name).properties.version == second.properties.version
    versions = {p.version for p in client.list_properties_of_certificate_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert client.get_certificate_version(name, first.properties.version).cer == first.cer

    got = client.get_certificate_policy(name)
    assert got.subject == "CN=certauth onboarding"
    assert got.validity_in_months == 6
    assert got.exportable is False
    assert got.key_size == 2048
    assert got.issuer_name == "Self"
    assert got.content_type == CertificateContentType.pkcs12

    updated = client.update_certificate_policy(name, CertificatePolicy(validity_in_months=24))
    assert updated.validity_in_months == 24
    assert updated.subject == "CN=certauth onboarding"
    assert client.get_certificate_policy(name).validity_in_months == 24

    assert name in {p.name for p in client.list_properties_of_certificates()}


def test_key_sizes_and_dates_follow_the_sandbox_clock(simulator, vault_clients):
    before = simulator.advance_clock(0)["epochSeconds"]
    made = create(vault_clients.certificates, unique("size"), policy(key_size=3072, months=1))
    after = simulator.advance_clock(0)["epochSeconds"]
    cert = x509.load_der_x509_certificate(made.cer)
    assert cert.public_key().key_size == 3072
    # notBefore is sandbox "now" at completion, whole seconds.
    assert int(before) <= cert.not_valid_before_utc.timestamp() <= after


def test_creation_delay_and_pending_conflict(simulator, vault_clients, vault_admin):
    client = vault_clients.certificates
    name = unique("slow")
    vault_admin.admin("PUT", "/vault", {"creationDelaySeconds": 60})
    client.begin_create_certificate(name, policy())  # its poller sees inProgress and keeps polling
    operation = client.get_certificate_operation(name)
    assert operation.status == "inProgress"
    assert operation.issuer_name == "Self"

    with pytest.raises(ResourceExistsError) as conflict:
        client.begin_create_certificate(name, policy())
    assert conflict.value.status_code == 409
    assert conflict.value.error.code == "Conflict"
    with pytest.raises(ResourceNotFoundError):
        client.get_certificate(name)  # no version exists until the creation completes

    simulator.advance_clock(60)
    operation = client.get_certificate_operation(name)
    assert operation.status == "completed"
    assert operation.target.endswith(f"/certificates/{name}")
    assert client.get_certificate(name).cer


def test_failed_creation_returns_the_operation(vault_clients, vault_admin):
    """A failed creation is not an exception: the poller's result is the CertificateOperation."""
    from azure.keyvault.certificates import CertificateOperation

    vault_admin.admin("PUT", "/vault", {"failNextCreations": 1})
    name = unique("fails")
    result = vault_clients.certificates.begin_create_certificate(name, policy()).result()
    assert isinstance(result, CertificateOperation)
    assert result.status == "failed"
    assert result.error.code == "InternalError"
    with pytest.raises(ResourceNotFoundError):
        vault_clients.certificates.get_certificate(name)
    assert isinstance(create(vault_clients.certificates, name, policy()), KeyVaultCertificate)


def test_invalid_names_are_rejected(vault_clients):
    for bad in ("has_underscore", "x" * 128):
        with pytest.raises(HttpResponseError) as error:
            vault_clients.certificates.begin_create_certificate(bad, policy())
        assert error.value.status_code == 400
        assert error.value.error.code == "BadParameter"
        assert error.value.error.message == f"The request URI contains an invalid name: {bad}"


def test_delete_conflict_recover_purge(vault_clients):
    client = vault_clients.certificates
    name = unique("lifecycle")
    made = create(client, name, policy())

    deleted = client.begin_delete_certificate(name).result()
    assert deleted.recovery_id.endswith(f"/deletedcertificates/{name}")
    assert deleted.scheduled_purge_date - deleted.deleted_on == timedelta(days=90)
    assert deleted.properties.version == made.properties.version
    assert client.get_deleted_certificate(name).recovery_id == deleted.recovery_id
    with pytest.raises(ResourceNotFoundError):
        client.get_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        vault_clients.keys.get_key(name)

    # The name cannot be reused while the certificate is soft-deleted.
    with pytest.raises(ResourceExistsError) as reuse:
        client.begin_create_certificate(name, policy())
    assert reuse.value.status_code == 409
    assert reuse.value.error.code == "Conflict"
    assert reuse.value.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}
    assert reuse.value.error.message == (
        f"Certificate {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
        "in this state, the certificate can only be recovered or purged.")
    with pytest.raises(ResourceExistsError):
        client.import_certificate(name, _self_signed_pfx(b"pw")[0], password="pw")

    recovered = client.begin_recover_deleted_certificate(name).result()
    assert recovered.properties.version == made.properties.version
    assert client.get_certificate(name).cer == made.cer
    assert vault_clients.keys.get_key(name).properties.version == made.properties.version

    client.begin_delete_certificate(name).result()
    client.purge_deleted_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_certificate(name)
    again = create(client, name, policy())
    assert again.properties.version != made.properties.version


def _self_signed_pfx(password: bytes, *, days: int = 30, start=None) -> tuple[bytes, x509.Certificate]:
    from datetime import datetime

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported")])
    start = start or datetime.now(UTC) - timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days)).sign(key, hashes.SHA256()))
    pfx = pkcs12.serialize_key_and_certificates(b"imported", key, cert, None,
                                                serialization.BestAvailableEncryption(password))
    return pfx, cert


def test_import_pfx_keeps_exportable_flag(vault_clients):
    pfx, cert = _self_signed_pfx(b"s3cret")
    name = unique("import")
    imported = vault_clients.certificates.import_certificate(
        name, pfx, password="s3cret", policy=CertificatePolicy(exportable=True, key_type="RSA",
                                                                content_type=CertificateContentType.pkcs12))
    assert imported.cer == cert.public_bytes(serialization.Encoding.DER)
    assert imported.policy.exportable is True
    secret = vault_clients.secrets.get_secret(name)
    key, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert key is not None
    assert leaf == cert

    locked = unique("import-locked")
    vault_clients.certificates.import_certificate(
        locked, pfx, password="s3cret", policy=CertificatePolicy(exportable=False, key_type="RSA"))
    secret = vault_clients.secrets.get_secret(locked)
    key, leaf, others = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert key is None  # a PFX holding only the certificate (no key bag)
    assert cert in [c for c in (leaf, *others) if c is not None]


def test_import_pem_without_exportable_key(vault_clients):
    from datetime import datetime

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pem import")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=60)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    name = unique("pem")
    imported = vault_clients.certificates.import_certificate(
        name, pem, policy=CertificatePolicy(exportable=False, key_type="RSA", content_type=CertificateContentType.pem))
    assert imported.cer == cert.public_bytes(serialization.Encoding.DER)
    secret = vault_clients.secrets.get_secret(name)
    assert secret.properties.content_type == "application/x-pem-file"
    assert "PRIVATE KEY" not in secret.value
    assert x509.load_pem_x509_certificate(secret.value.encode()) == cert


def test_import_with_wrong_password_is_a_bad_parameter(vault_clients):
    pfx, _ = _self_signed_pfx(b"right")
    with pytest.raises(HttpResponseError) as error:
        vault_clients.certificates.import_certificate(unique("badpw"), pfx, password="wrong")
    assert error.value.status_code == 400
    assert error.value.error.code == "BadParameter"
