"""Test material for the customer's own certificate: PFX files (good and bad) and a throw-away CA (trustme) that
signs a CSR's key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


def self_signed(key, common_name: str, not_before: datetime, days: float) -> x509.Certificate:
    """A self-signed certificate for `key`."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=days)).sign(key, hashes.SHA256()))


def make_pfx(password: str, now: datetime, *, days: float = 365, key_size: int = 2048, with_key: bool = True,
             elliptic: bool = False, common_name: str = "customer pfx") -> tuple[bytes, x509.Certificate]:
    """A PFX (and its certificate) valid from an hour before `now` for `days` (negative: already expired)."""
    key = ec.generate_private_key(ec.SECP256R1()) if elliptic else rsa.generate_private_key(65537, key_size)
    start = now - timedelta(hours=1) if days > 0 else now + timedelta(days=days * 2)
    certificate = self_signed(key, common_name, start, abs(days))
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    pfx = pkcs12.serialize_key_and_certificates(b"customer", key if with_key else None, certificate, None,
                                                encryption)
    return pfx, certificate


def sign_for_csr(ca, csr_der: bytes, now: datetime, days: float = 365) -> bytes:
    """PEM of a certificate signed by the trustme CA `ca` for the CSR's key and subject, followed by the CA."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    csr = x509.load_der_x509_csr(csr_der)
    certificate = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
                   .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(ca_key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM) + ca.cert_pem.bytes()


def sign_other_key(ca, csr_der: bytes, now: datetime) -> bytes:
    """DER of a certificate signed by `ca` with the CSR's subject but for another key."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    other = rsa.generate_private_key(65537, 2048)
    subject = x509.load_der_x509_csr(csr_der).subject
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                   .public_key(other.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365))
                   .sign(ca_key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.DER)


def utc(epoch: float) -> datetime:
    """A POSIX time as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, tz=UTC)
