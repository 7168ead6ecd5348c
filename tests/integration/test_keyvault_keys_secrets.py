"""A certificate's key (public JWK, sign) and secret (PFX / PEM export) in the simulated vault, through
azure-keyvault-keys (KeyClient, CryptographyClient) and azure-keyvault-secrets (SecretClient)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificateContentType, CertificatePolicy, KeyVaultCertificate
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(clients, *, exportable: bool, content_type=CertificateContentType.pkcs12) -> KeyVaultCertificate:
    name = unique("kv")
    result = clients.certificates.begin_create_certificate(name, CertificatePolicy(
        issuer_name="Self", subject=f"CN={name}", validity_in_months=12, exportable=exportable, key_type="RSA",
        key_size=2048, content_type=content_type)).result()
    assert isinstance(result, KeyVaultCertificate)
    return result


def crypto_client(clients, key_id: str) -> CryptographyClient:
    return CryptographyClient(key_id, clients.credential, verify_challenge_resource=False)


def test_key_is_public_only(vault_clients):
    made = create(vault_clients, exportable=False)
    key = vault_clients.keys.get_key(made.name)
    assert key.id == made.key_id
    assert key.key_type == "RSA"
    assert set(key.key_operations) >= {"sign", "verify"}
    assert key.key.n
    assert key.key.e
    for private in ("d", "p", "q", "dp", "dq", "qi"):
        assert getattr(key.key, private) is None
    public = x509.load_der_x509_certificate(made.cer).public_key().public_numbers()
    assert int.from_bytes(key.key.n, "big") == public.n
    assert vault_clients.keys.get_key(made.name, made.properties.version).id == made.key_id


@pytest.mark.parametrize(("algorithm", "pad"), [
    (SignatureAlgorithm.rs256, padding.PKCS1v15()),
    (SignatureAlgorithm.ps256, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)),
])
def test_sign_verifies_with_the_certificate(vault_clients, algorithm, pad):
    made = create(vault_clients, exportable=False)
    message = b"header.payload"
    digest = hashlib.sha256(message).digest()
    result = crypto_client(vault_clients, made.key_id).sign(algorithm, digest)
    assert result.key_id == made.key_id
    assert result.algorithm == algorithm
    public = x509.load_der_x509_certificate(made.cer).public_key()
    public.verify(result.signature, message, pad, hashes.SHA256())  # raises InvalidSignature if wrong
    with pytest.raises(InvalidSignature):
        public.verify(result.signature, b"something else", pad, hashes.SHA256())


def test_versionless_key_id_signs_with_the_latest_version(vault_clients, vault_url):
    made = create(vault_clients, exportable=False)
    result = crypto_client(vault_clients, f"{vault_url}keys/{made.name}").sign(
        SignatureAlgorithm.rs256, hashlib.sha256(b"latest").digest())
    assert result.key_id == made.key_id
    public = x509.load_der_x509_certificate(made.cer).public_key()
    public.verify(result.signature, b"latest", padding.PKCS1v15(), hashes.SHA256())


def test_sign_checks_digest_length(vault_clients):
    made = create(vault_clients, exportable=False)
    with pytest.raises(HttpResponseError) as error:
        crypto_client(vault_clients, made.key_id).sign(SignatureAlgorithm.rs256, hashlib.sha1(b"x").digest())
    assert error.value.status_code == 400
    assert error.value.error.code == "BadParameter"


def test_disabled_key_cannot_sign(vault_clients):
    made = create(vault_clients, exportable=False)
    vault_clients.certificates.update_certificate_properties(made.name, made.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as error:
        crypto_client(vault_clients, made.key_id).sign(SignatureAlgorithm.rs256, hashlib.sha256(b"x").digest())
    assert error.value.status_code == 403
    assert error.value.error.code == "Forbidden"
    assert error.value.error.message == "Operation sign is not allowed on a disabled key."


def test_expired_key_cannot_sign(simulator, vault_clients):
    """An imported certificate that expired (on the sandbox clock) a day ago."""
    now = datetime.fromtimestamp(simulator.advance_clock(0)["epochSeconds"], tz=UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=30))
            .not_valid_after(now - timedelta(days=1)).sign(key, hashes.SHA256()))
    pfx = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    imported = vault_clients.certificates.import_certificate(unique("expired"), pfx)
    with pytest.raises(HttpResponseError) as error:
        crypto_client(vault_clients, imported.key_id).sign(SignatureAlgorithm.rs256,
                                                           hashlib.sha256(b"x").digest())
    assert error.value.status_code == 403
    assert "expired" in error.value.error.message


def test_exportable_certificate_secret_is_a_pfx_with_its_key(vault_clients):
    made = create(vault_clients, exportable=True)
    secret = vault_clients.secrets.get_secret(made.name)
    assert secret.id == made.secret_id
    assert secret.properties.content_type == "application/x-pkcs12"
    assert secret.properties.managed is True
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert cert.public_bytes(serialization.Encoding.DER) == made.cer
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_exportable_certificate_secret_as_pem(vault_clients):
    made = create(vault_clients, exportable=True, content_type=CertificateContentType.pem)
    secret = vault_clients.secrets.get_secret(made.name, made.properties.version)
    assert secret.properties.content_type == "application/x-pem-file"
    key = serialization.load_pem_private_key(secret.value.encode(), None)
    cert = x509.load_pem_x509_certificate(secret.value.encode())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


@pytest.mark.parametrize("content_type", [CertificateContentType.pkcs12, CertificateContentType.pem])
def test_non_exportable_private_key_never_leaves_the_vault(vault_clients, content_type):
    """about-certificates#exportable-or-non-exportable-key: the secret holds the certificate only."""
    made = create(vault_clients, exportable=False, content_type=content_type)
    secret = vault_clients.secrets.get_secret(made.name)
    if content_type == CertificateContentType.pem:
        assert "PRIVATE KEY" not in secret.value
        assert x509.load_pem_x509_certificate(secret.value.encode()).public_bytes(
            serialization.Encoding.DER) == made.cer
    else:
        key, leaf, others = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
        assert key is None
        assert made.cer in [c.public_bytes(serialization.Encoding.DER) for c in (leaf, *others) if c is not None]
