"""Key Vault's certificate material for the simulator: keys, self-signed X.509 certificates, the
secret value (PFX or PEM), JWKs and signatures. Pure functions, no HTTP, no state.

Everything CPU-heavy here (RSA key generation, signing) is called from the simulator through a thread
executor so the event loop keeps serving.

Sources:
- learn.microsoft.com/azure/key-vault/certificates/about-certificates (composition of a certificate:
  addressable key and secret of the same name; exportable or non-exportable key; policy fields);
- learn.microsoft.com/rest/api/keyvault/certificates/create-certificate/create-certificate (policy JSON:
  key_props, secret_props, x509_props, lifetime_actions, issuer, attributes);
- learn.microsoft.com/rest/api/keyvault/keys/sign/sign (JsonWebKeySignatureAlgorithm: PS256 … RS512;
  `value` is base64url of the digest);
- learn.microsoft.com/azure/key-vault/keys/about-keys (JWK, key_ops).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"

# Key Vault's default EKUs and key usage for a certificate policy that names none (what the service
# returns in x509_props for a policy created without them: serverAuth + clientAuth,
# digitalSignature + keyEncipherment). Source: the create-certificate REST examples
# (learn.microsoft.com/rest/api/keyvault/certificates/create-certificate/create-certificate#examples).
DEFAULT_EKUS = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
DEFAULT_KEY_USAGE = ["digitalSignature", "keyEncipherment"]
RSA_KEY_SIZES = (2048, 3072, 4096)  # about-keys: "RSA: 2048-bit, 3072-bit, 4096-bit"

# JsonWebKeySignatureAlgorithm for RSA keys and the digest length each expects (sign/sign REST page).
SIGN_ALGORITHMS: dict[str, tuple[str, int]] = {
    "RS256": ("pkcs1", 32), "RS384": ("pkcs1", 48), "RS512": ("pkcs1", 64),
    "PS256": ("pss", 32), "PS384": ("pss", 48), "PS512": ("pss", 64),
}
_HASHES = {32: hashes.SHA256, 48: hashes.SHA384, 64: hashes.SHA512}

_KEY_USAGE_FIELDS = {
    "digitalSignature": "digital_signature", "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only", "decipherOnly": "decipher_only",
}
_NAME_OIDS = {
    "CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME, "S": NameOID.STATE_OR_PROVINCE_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME, "E": NameOID.EMAIL_ADDRESS, "EMAIL": NameOID.EMAIL_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT, "STREET": NameOID.STREET_ADDRESS, "SERIALNUMBER": NameOID.SERIAL_NUMBER,
}


class MaterialError(ValueError):
    """Input Key Vault would answer with 400 BadParameter."""


def b64url(data: bytes) -> str:
    """base64url without padding (Key Vault's encoding of x5t, JWK n/e and signatures)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; MaterialError when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise MaterialError("value is not base64url") from exc


def generate_key(size: int) -> rsa.RSAPrivateKey:
    """An RSA private key (slow for 4096: call it in an executor)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _subject_parts(subject: str) -> list[str]:
    """The RDNs of a policy subject: split at "," or ";" outside quoted values (KEYVAULT_SUBJECT_FACTS)."""
    parts, current, quoted, index = [], [], False, 0
    while index < len(subject):
        char = subject[index]
        if char == '"' and quoted and subject[index + 1:index + 2] == '"':
            current.append('""')  # a quotation mark inside a quoted value
            index += 2
            continue
        if char == '"' and (quoted or "".join(current).rstrip().endswith("=")):
            quoted = not quoted  # a quoted value opens right after "=" (elsewhere a quote is a plain character)
        elif char in ",;" and not quoted:
            parts.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    if quoted:
        raise MaterialError(f"Invalid subject: {subject}")
    parts.append("".join(current))
    return parts


def _subject_value(value: str, subject: str) -> str:
    """An attribute value as written: quoted ("a, b" with "" for a quotation mark) or plain."""
    value = value.strip()
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"') or '"' in value[1:-1].replace('""', ""):
            raise MaterialError(f"Invalid subject: {subject}")
        return value[1:-1].replace('""', '"')
    return value


def parse_subject(subject: str) -> x509.Name:
    """A policy subject ("CN=name, O=org") as an X.509 name. Key Vault accepts ',' or ';' separators,
    spaces around them, and quoted values (KEYVAULT_SUBJECT_FACTS in microsoft.py)."""
    attributes = []
    for part in _subject_parts(subject):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        oid = _NAME_OIDS.get(key.strip().upper())
        value = _subject_value(value, subject) if sep else ""
        if not sep or oid is None or not value.strip():
            raise MaterialError(f"Invalid subject: {subject}")
        attributes.append(x509.NameAttribute(oid, value))
    if not attributes:
        raise MaterialError(f"Invalid subject: {subject}")
    return x509.Name(attributes)


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months (the day is clamped to the month's length)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _sans(sans: dict | None) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    if not sans:
        return names
    names += [x509.DNSName(d) for d in sans.get("dns_names") or []]
    names += [x509.RFC822Name(e) for e in sans.get("emails") or []]
    names += [x509.UniformResourceIdentifier(u) for u in sans.get("uris") or []]
    for ip in sans.get("ipAddresses") or []:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError as exc:
            raise MaterialError(f"Invalid IP address in subject alternative names: {ip}") from exc
    for upn in sans.get("upns") or []:
        # UPN otherName (1.3.6.1.4.1.311.20.2.3), DER UTF8String.
        encoded = upn.encode()
        names.append(x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"),
                                    b"\x0c" + _der_length(len(encoded)) + encoded))
    return names


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _extensions(x509_props: dict) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions a policy's x509_props ask for (key usage, EKUs, SANs), with their criticality."""
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    usage = x509_props.get("key_usage") or DEFAULT_KEY_USAGE
    flags = dict.fromkeys(_KEY_USAGE_FIELDS.values(), False)
    for name in usage:
        if name not in _KEY_USAGE_FIELDS:
            raise MaterialError(f"Invalid key usage: {name}")
        flags[_KEY_USAGE_FIELDS[name]] = True
    extensions.append((x509.KeyUsage(**flags), True))
    ekus = x509_props.get("ekus")
    ekus = DEFAULT_EKUS if ekus is None else ekus
    if ekus:
        try:
            oids = [x509.ObjectIdentifier(e) for e in ekus]
        except ValueError as exc:
            raise MaterialError(f"Invalid extended key usage: {ekus}") from exc
        extensions.append((x509.ExtendedKeyUsage(oids), False))
    sans = _sans(x509_props.get("sans"))
    if sans:
        extensions.append((x509.SubjectAlternativeName(sans), False))
    return extensions


def self_signed_certificate(key: rsa.RSAPrivateKey, x509_props: dict, not_before: datetime) -> x509.Certificate:
    """The self-signed certificate Key Vault issues for a policy with issuer "Self": subject, SANs,
    EKUs and key usage from x509_props, valid from `not_before` for validity_months calendar months."""
    subject = parse_subject(x509_props["subject"]) if x509_props.get("subject") else x509.Name([])
    not_before = not_before.replace(microsecond=0)
    not_after = add_months(not_before, int(x509_props.get("validity_months") or 12))
    public = key.public_key()
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(subject).public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False))
    for extension, critical in _extensions(x509_props):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def certificate_request(key: rsa.RSAPrivateKey, x509_props: dict) -> bytes:
    """The PKCS#10 request (DER) Key Vault makes for a pending certificate: the policy's subject, key usage,
    EKUs and SANs, signed with the new key (CertificateOperation.csr; certificates/create-certificate-
    signing-request: "Key Vault generates a key pair and returns a CSR")."""
    subject = parse_subject(x509_props["subject"]) if x509_props.get("subject") else x509.Name([])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for extension, critical in _extensions(x509_props):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def load_x5c(chain: list) -> list[x509.Certificate]:
    """The certificates of a merge request's x5c (base64 DER each, leaf first)."""
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise MaterialError("Property x5c is required: a list of base64-encoded certificates.")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
    except ValueError as exc:
        raise MaterialError("Property x5c holds a value that is not a base64-encoded DER certificate.") from exc


def matches_key(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    """Whether the certificate certifies `key`'s public key."""
    def spki(public) -> bytes:
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    return spki(certificate.public_key()) == spki(key.public_key())


def der(certificate: x509.Certificate) -> bytes:
    """DER bytes of a certificate (the `cer` field, base64)."""
    return certificate.public_bytes(serialization.Encoding.DER)


def x5t(certificate: x509.Certificate) -> str:
    """SHA-1 thumbprint, base64url (the `x5t` field)."""
    return b64url(hashlib.sha1(der(certificate)).digest())


def key_ops(key_usage: list[str] | None) -> list[str]:
    """JWK key_ops of a certificate's key, from the certificate's key usage (as Key Vault derives them:
    digitalSignature → sign/verify; key or data encipherment → encrypt/decrypt/wrapKey/unwrapKey)."""
    usage = set(key_usage or DEFAULT_KEY_USAGE)
    ops: list[str] = []
    if usage & {"digitalSignature", "nonRepudiation"}:
        ops += ["sign", "verify"]
    if usage & {"keyEncipherment", "dataEncipherment"}:
        ops += ["wrapKey", "unwrapKey", "encrypt", "decrypt"]
    return ops


def public_jwk(key: rsa.RSAPrivateKey, kid: str, ops: list[str]) -> dict:
    """The public JWK Key Vault returns (never d, p, q, dp, dq, qi)."""
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {"kid": kid, "kty": "RSA", "key_ops": list(ops), "n": b64url(n), "e": b64url(e)}


def sign(key: rsa.RSAPrivateKey, algorithm: str, digest: bytes) -> bytes:
    """Sign a precomputed digest as Key Vault's keys/sign does."""
    scheme, length = SIGN_ALGORITHMS[algorithm]
    if len(digest) != length:
        raise MaterialError(f"Invalid digest length for {algorithm}: {len(digest)} bytes; expected {length}.")
    hash_algorithm = _HASHES[length]()
    # RFC 7518 §3.5: PS* uses MGF1 with the same hash and a salt as long as the hash.
    pad = padding.PKCS1v15() if scheme == "pkcs1" else padding.PSS(mgf=padding.MGF1(hash_algorithm),
                                                                  salt_length=length)
    return key.sign(digest, pad, Prehashed(hash_algorithm))


def verify(key: rsa.RSAPrivateKey, algorithm: str, digest: bytes, signature: bytes) -> bool:
    """Verify a signature over a precomputed digest (keys/verify); False when it does not match."""
    from cryptography.exceptions import InvalidSignature

    scheme, length = SIGN_ALGORITHMS[algorithm]
    if len(digest) != length:
        return False
    hash_algorithm = _HASHES[length]()
    pad = padding.PKCS1v15() if scheme == "pkcs1" else padding.PSS(mgf=padding.MGF1(hash_algorithm),
                                                                  salt_length=length)
    try:
        key.public_key().verify(signature, digest, pad, Prehashed(hash_algorithm))
    except InvalidSignature:
        return False
    return True


def secret_value(key: rsa.RSAPrivateKey, certificate: x509.Certificate, content_type: str,
                 exportable: bool) -> str:
    """The value of the certificate's addressable secret. A non-exportable key is never part of it:
    "If the policy indicates that the key is non-exportable, then the private key isn't a part of
    the value when it's retrieved as a secret" (about-certificates#exportable-or-non-exportable-key)."""
    private = key if exportable else None
    if content_type == PEM:
        parts = []
        if private is not None:
            parts.append(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode())
        parts.append(certificate.public_bytes(serialization.Encoding.PEM).decode())
        return "".join(parts)
    blob = pkcs12.serialize_key_and_certificates(None, private, certificate, None, serialization.NoEncryption())
    return base64.b64encode(blob).decode()


@dataclass
class Imported:
    """Material read from an import request."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    content_type: str


def load_import(value: str, password: str | None) -> Imported:
    """Read a certificate import: base64 of a PFX, or of a PEM holding the private key and the
    certificate (certificates/import-certificate REST page; the SDK base64-encodes both forms)."""
    try:
        raw = base64.b64decode(value, validate=False)
    except (ValueError, TypeError) as exc:
        raise MaterialError("The specified PEM X.509 certificate content is in an unexpected format. "
                            "Please check if certificate is in valid PEM format.") from exc
    secret = password.encode() if password else None
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            certificates = x509.load_pem_x509_certificates(raw)
        except ValueError as exc:
            raise MaterialError("The specified PEM X.509 certificate content is in an unexpected format. "
                                "Please check if certificate is in valid PEM format.") from exc
        key = None
        for marker in (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                       b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
            start = raw.find(marker)
            if start >= 0:
                end_marker = marker.replace(b"BEGIN", b"END")
                end = raw.find(end_marker, start) + len(end_marker)
                try:
                    key = serialization.load_pem_private_key(raw[start:end], secret)
                except (ValueError, TypeError) as exc:
                    raise MaterialError("The specified PEM private key could not be read (wrong password "
                                        "or malformed key).") from exc
                break
        if key is None:
            raise MaterialError("The specified PEM X.509 certificate content does not contain a private key.")
        content_type = PEM
        certificate = _leaf_for(key, certificates)
    else:
        try:
            key, certificate, _chain = pkcs12.load_key_and_certificates(raw, secret)
        except (ValueError, TypeError) as exc:
            raise MaterialError("The specified PKCS#12 X.509 certificate content can not be read. Please "
                                "check if certificate is in valid PKCS#12 format.") from exc
        if key is None or certificate is None:
            raise MaterialError("The specified PKCS#12 X.509 certificate content does not contain a private "
                                "key and a certificate.")
        content_type = PKCS12
    if not isinstance(key, rsa.RSAPrivateKey):
        raise MaterialError("The sandbox vault imports RSA keys only.")
    return Imported(key=key, certificate=certificate, content_type=content_type)


def _leaf_for(key, certificates: list[x509.Certificate]) -> x509.Certificate:
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    for certificate in certificates:
        if certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo) == public:
            return certificate
    raise MaterialError("Private key specified in the certificate content does not match the certificate.")


def epoch(moment: datetime) -> int:
    """Whole POSIX seconds (Key Vault's date format)."""
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())


def validity_months_of(certificate: x509.Certificate) -> int:
    """Whole months between notBefore and notAfter (an imported certificate's policy validity)."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end + timedelta(days=1):
        months -= 1
    return max(months, 1)


def key_usage_of(certificate: x509.Certificate) -> list[str]:
    """Key usage names of a certificate (imported policies report them)."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = []
    for name, field in _KEY_USAGE_FIELDS.items():
        if field in ("encipher_only", "decipher_only") and not usage.key_agreement:
            continue
        if getattr(usage, field):
            names.append(name)
    return names


def ekus_of(certificate: x509.Certificate) -> list[str]:
    """Extended key usage OIDs of a certificate."""
    try:
        return [oid.dotted_string for oid in
                certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        return []



