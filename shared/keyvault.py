"""Key Vault: the onboarding certificate (create or reuse, import a customer's PFX, or a CSR for the customer's
CA and the merge of its signed certificate), its public part, and signing with its key.

The private key of a non-exportable certificate never leaves the vault: client assertions and
proof-of-possession tokens are signed with the key's `sign` operation. Nothing returned here holds
key material; `CertificateInfo` is safe to pass through orchestration history.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

NAME_RULE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")  # Key Vault object names
# How long one attempt waits for a new certificate. Longer creations end the attempt, and a later one (a durable
# retry) picks the result up.
CREATION_WAIT_SECONDS = 30.0
# How a new certificate's pending operation is polled. The SDK's poller polls once at once, then every 5 s, while a
# self-signed RSA certificate takes a second or a few. Here: once at once too (a creation may be done by then), then
# with backoff from CREATION_POLL_FIRST, each wait CREATION_POLL_FACTOR times the one before, at most the SDK's 5 s:
# the poll that sees the end comes at most about half the time waited late. A poll's own Retry-After is honoured
# (the next poll waits at least that long). The create's 202 carries a fixed `Retry-After: 10` whatever the issuer
# (a CA may take days); it is not taken as the wait for a self-signed certificate.
CREATION_POLL_FIRST = 0.5
CREATION_POLL_FACTOR = 1.5
CREATION_POLL_MAX = 5.0


MIN_RSA_KEY_SIZE = 2048  # DESIGN.md: RSA 2048+
MAX_SIGNING_CLIENTS = 64  # CryptographyClients kept per vault client (the most recently used keys)


class CreationPending(Exception):
    """The certificate is being created; try again later."""


class CertificateRejected(ValueError):
    """The customer's certificate (a PFX to import, a signed certificate to merge) cannot be used: a 400 that names
    the request's `field` and the problem; `code` is Key Vault's error code when Key Vault refused it."""

    def __init__(self, field: str, rule: str, code: str = "InvalidCertificate") -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule, self.code = field, rule, code


class NothingPending(Exception):
    """No CSR of this certificate waits for a signed certificate."""


@dataclass(frozen=True)
class CsrState:
    """The certificate's last create operation, as far as a CSR for the customer's CA goes."""

    status: str          # "pending" (the CSR waits for its certificate), "merged", or "none"
    csr_der: bytes | None = None


def _spki(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_pfx(pfx: bytes, password: str, now: datetime):
    """The PFX's leaf certificate if Key Vault can use it for certauth: it opens with the password, holds an RSA
    private key of at least MIN_RSA_KEY_SIZE bits with its certificate, and that certificate is valid at `now`
    (the wall clock). CertificateRejected naming the problem otherwise. Nothing here logs the PFX or password."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, certificate, _chain = pkcs12.load_key_and_certificates(pfx, password.encode() or None)
    except ValueError:
        try:  # a PFX without a password reads with None; one sealed with "" may need b""
            key, certificate, _chain = pkcs12.load_key_and_certificates(pfx, password.encode())
        except ValueError:
            raise CertificateRejected("certificate.password", "does not open the PFX (wrong password), or "
                                      "certificate.pfx is not a PKCS#12 file", "WrongPasswordOrNotPfx") from None
    if key is None:
        raise CertificateRejected("certificate.pfx", "holds no private key: export the PFX with its private key "
                                  "(Export-PfxCertificate, or openssl pkcs12 -export -inkey)", "NoPrivateKey")
    if certificate is None:
        raise CertificateRejected("certificate.pfx", "holds no certificate for its private key", "NoCertificate")
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        raise CertificateRejected("certificate.pfx", "holds a private key that does not belong to its certificate",
                                  "KeyMismatch")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateRejected("certificate.pfx", f"holds a {type(key).__name__.removesuffix('PrivateKey')} "
                                  f"key: certauth needs RSA of at least {MIN_RSA_KEY_SIZE} bits", "WeakKey")
    if key.key_size < MIN_RSA_KEY_SIZE:
        raise CertificateRejected("certificate.pfx", f"holds an RSA key of {key.key_size} bits: at least "
                                  f"{MIN_RSA_KEY_SIZE} are required", "WeakKey")
    if certificate.not_valid_after_utc <= now:
        raise CertificateRejected("certificate.pfx", f"holds a certificate that expired on "
                                  f"{_iso(certificate.not_valid_after_utc)}", "CertificateExpired")
    if certificate.not_valid_before_utc > now:
        raise CertificateRejected("certificate.pfx", f"holds a certificate that is not valid before "
                                  f"{_iso(certificate.not_valid_before_utc)}", "CertificateNotYetValid")
    return certificate


def read_certificates(data: bytes) -> list:
    """The certificates of an upload: PEM (one or a chain) or one DER certificate. CertificateRejected otherwise."""
    from cryptography import x509

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateRejected("body", "must be an X.509 certificate, PEM or DER", "InvalidCertificate") from None


def csr_pem(csr_der: bytes) -> str:
    """A PKCS#10 request (DER) as PEM."""
    text = base64.encodebytes(csr_der).decode().replace("\n", "")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE REQUEST-----\n"


def retry_after_seconds(value: str | None) -> float:
    """A Retry-After header's wait in seconds (delta-seconds or an HTTP date, RFC 9110 10.2.3); 0 when absent."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def _raise_for(response) -> None:
    """Key Vault's error answer as the exception the SDK's own calls raise (its error map, its OData error body)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
    )

    kind = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError}.get(
        response.status_code, HttpResponseError)
    raise kind(response=response)


def _refusal(error, field: str) -> CertificateRejected:
    """Key Vault's 400 to an import or merge as a 400 naming the request's field, with Key Vault's code."""
    code = getattr(getattr(error, "error", None), "code", None) or "BadParameter"
    message = getattr(getattr(error, "error", None), "message", None) or str(error.message)
    return CertificateRejected(field, f"Key Vault refused it: {message}", code)


@dataclass(frozen=True)
class CertificateInfo:
    """The public facts of one certificate version."""

    name: str
    version: str
    thumbprint: str          # SHA-1, upper-case hex (what Entra and PowerShell show)
    cer: str                 # base64 DER (Graph keyCredential `key`)
    not_before: str          # ISO-8601 UTC
    not_after: str
    key_id: str              # the versioned key identifier used for `sign`
    exportable: bool
    key_size: int | None = None

    def to_json(self) -> dict:
        """JSON-safe dict (orchestration inputs and outputs)."""
        return asdict(self)


def vault_for(settings) -> CertificateVault:
    """The product's vault client, shared by a worker's activities (see shared/reuse.py)."""
    from .credentials import home_credential
    from .reuse import shared

    return shared(("vault", settings), lambda: CertificateVault(
        settings.require("key_vault_url"), home_credential(settings),
        verify_challenge_resource=settings.keyvault_verify_challenge_resource))


def certificate_name(onboarding_id: str) -> str:
    """A Key Vault name for an onboarding: deterministic, within Key Vault's naming rule."""
    digest = hashlib.sha256(onboarding_id.encode()).hexdigest()[:32]
    return f"certauth-{digest}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


_PURGE_PROTECTED_NOTE = ("the vault has purge protection: the certificate stays soft-deleted (recoverable, not "
                         "usable) until its retention ends at {}, when Key Vault purges it")


def _deleted_facts(deleted) -> dict:
    """A DeletedCertificate's public facts: soft-deleted, when it will be purged, the vault's recovery level."""
    when = getattr(deleted, "scheduled_purge_date", None)
    props = getattr(deleted, "properties", None)
    return {"state": "softDeleted", "scheduledPurgeDate": _iso(when) if when else None,
            "recoveryLevel": getattr(props, "recovery_level", None)}


def _public_key(key_id: str, certificate_der: bytes):
    """A KeyVaultKey of the certificate's RSA public key (JWK n, e) under the vault's key id, for verify only."""
    from azure.keyvault.keys import KeyVaultKey
    from cryptography import x509

    numbers = x509.load_der_x509_certificate(certificate_der).public_key().public_numbers()

    def unsigned(value: int) -> bytes:
        return value.to_bytes((value.bit_length() + 7) // 8, "big")

    return KeyVaultKey(key_id=key_id, jwk={"kid": key_id, "kty": "RSA", "key_ops": ["verify"],
                                           "n": unsigned(numbers.n), "e": unsigned(numbers.e)})


def _info(certificate, exportable: bool) -> CertificateInfo:
    cer = bytes(certificate.cer)
    props = certificate.properties
    return CertificateInfo(
        name=certificate.name, version=props.version,
        thumbprint=hashlib.sha1(cer).hexdigest().upper(), cer=base64.b64encode(cer).decode(),
        not_before=_iso(props.not_before), not_after=_iso(props.expires_on), key_id=certificate.key_id,
        exportable=exportable, key_size=certificate.policy.key_size if certificate.policy else None,
    )


class CertificateVault:
    """Certificate operations on one vault, with a TokenCredential for the product's identity."""

    def __init__(self, vault_url: str, credential, verify_challenge_resource: bool = True) -> None:
        from azure.keyvault.certificates import CertificateClient

        self._credential = credential
        self._vault_url = vault_url
        self._verify = verify_challenge_resource
        self._certificates = CertificateClient(vault_url, credential,
                                               verify_challenge_resource=verify_challenge_resource)
        self._crypto: OrderedDict[str, object] = OrderedDict()  # key id -> CryptographyClient, most recent last
        self._lock = threading.Lock()

    def current(self, name: str) -> CertificateInfo | None:
        """The latest enabled version, or None when there is none."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            certificate = self._certificates.get_certificate(name)
        except ResourceNotFoundError:
            return None
        if not certificate.properties.enabled or certificate.cer is None:
            return None
        policy = certificate.policy
        return _info(certificate, bool(policy and policy.exportable))

    def ensure(self, name: str, subject: str, validity_months: int, key_size: int, exportable: bool,
               now: datetime, renew_within: timedelta = timedelta(days=30),
               wait_seconds: float = CREATION_WAIT_SECONDS) -> tuple[CertificateInfo, bool]:
        """Reuse the latest version if it is valid beyond `renew_within` with the asked key options;
        otherwise create a new version. Returns (info, created).

        A creation still running after `wait_seconds`, or one that an earlier attempt started (Key Vault
        answers 409 to a second create while one is pending), raises :class:`CreationPending`: the caller
        comes back later and then finds the finished certificate instead of starting another."""
        from azure.core.exceptions import HttpResponseError

        if not NAME_RULE.match(name):
            raise ValueError(f"certificate name {name!r} breaks Key Vault's rule: 1-127 of 0-9 a-z A-Z -")
        existing = self.current(name)
        if existing is not None:
            not_after = datetime.fromisoformat(existing.not_after.replace("Z", "+00:00"))
            same_key = existing.exportable == exportable and existing.key_size in (None, key_size)
            if not_after - renew_within > now and same_key:
                return existing, False
        try:
            operation = self._create(name, subject, validity_months, key_size, exportable)
        except HttpResponseError as error:
            if error.status_code == 409 and "deleted but recoverable" in str(error.message).lower():
                # The name belongs to a soft-deleted certificate (an earlier offboarding): bring it back
                # and judge it like any existing one on the next attempt.
                self._certificates.begin_recover_deleted_certificate(name).wait()
                raise CreationPending(f"certificate {name} was soft-deleted; recovered it") from None
            if error.status_code != 409 or "pending" not in str(error.message).lower():
                raise
            return self._resume(name, exportable)
        info = self._await_creation(name, operation, wait_seconds)
        log.info("created certificate %s version %s", name, info.version)
        return info, True

    def _create(self, name: str, subject: str, validity_months: int, key_size: int, exportable: bool) -> dict:
        """POST /certificates/{name}/create, a self-signed policy (rest/api/keyvault/certificates/create-certificate):
        the pending operation's JSON. Sent through the client's own pipeline (challenge auth, retries) with
        send_request: begin_create_certificate starts the SDK's poller, which polls every 5 s, at once."""
        from azure.core.rest import HttpRequest

        body = {"policy": {
            "key_props": {"exportable": exportable, "kty": "RSA", "key_size": key_size, "reuse_key": False},
            "secret_props": {"contentType": "application/x-pkcs12"},
            "x509_props": {"subject": subject, "validity_months": validity_months},
            # Never Key Vault's default AutoRenew: a version it renews on its own has a new key that no app
            # registration carries, so tokens would break. certauth rotates itself (new version, addKey, proof,
            # removeKey); Key Vault only tells the vault's certificate contacts when 80 % of the lifetime is gone.
            "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}],
            "issuer": {"name": "Self"}}}
        response = self._certificates.send_request(HttpRequest("POST", f"/certificates/{name}/create", json=body))
        if response.status_code >= 400:
            _raise_for(response)
        return response.json()

    def _await_creation(self, name: str, operation: dict, wait_seconds: float) -> CertificateInfo:
        """Poll the pending operation (CREATION_POLL_*) until the certificate exists; its public facts.
        CreationPending when it outlasts `wait_seconds`; a failed creation raises."""
        deadline = time.monotonic() + wait_seconds
        status, error = str(operation.get("status") or "").lower(), operation.get("error")
        delay = asked = 0.0  # the first poll at once
        answers: list = []  # each poll's HTTP response (its headers are case-insensitive)

        def keep(pipeline_response) -> None:
            answers.append(pipeline_response.http_response)

        while status == "inprogress":
            wait = max(delay, asked)
            if time.monotonic() + wait > deadline:
                raise CreationPending(f"Key Vault is still creating certificate {name}")
            time.sleep(wait)
            polled = self._certificates.get_certificate_operation(name, raw_response_hook=keep)
            status, error = (polled.status or "").lower(), polled.error
            asked = retry_after_seconds(answers[-1].headers.get("Retry-After")) if answers else 0.0
            delay = min(delay * CREATION_POLL_FACTOR, CREATION_POLL_MAX) if delay else CREATION_POLL_FIRST
        if status != "completed":
            raise RuntimeError(f"Key Vault could not create certificate {name}: {status or '?'} {error}")
        info = self.current(name)
        if info is None:  # completed, not readable yet: the next attempt reads it
            raise CreationPending(f"certificate {name} is created but not readable yet")
        return info

    def _resume(self, name: str, exportable: bool) -> tuple[CertificateInfo, bool]:
        """An earlier attempt's creation: finished (use it), running (come back later) or failed (clear it
        so the next attempt creates anew)."""
        operation = self._certificates.get_certificate_operation(name)
        status = (operation.status or "").lower()
        if status == "completed":
            info = self.current(name)
            if info is not None:
                return info, True
        if status == "inprogress":
            raise CreationPending(f"Key Vault is still creating certificate {name} (started by an earlier attempt)")
        self._certificates.delete_certificate_operation(name)
        raise CreationPending(f"certificate {name}: the earlier creation ended {status or 'unknown'}; cleared")

    def import_pfx(self, name: str, pfx: bytes, password: str, now: datetime) -> tuple[CertificateInfo, bool]:
        """Import the customer's PFX as a NON-exportable certificate (checked locally first, see check_pfx).
        Returns (info, imported): a PFX whose certificate is already the current version is not imported again."""
        from azure.core.exceptions import HttpResponseError
        from azure.keyvault.certificates import (
            CertificateContentType,
            CertificatePolicy,
            CertificatePolicyAction,
            KeyType,
            LifetimeAction,
        )
        from cryptography.hazmat.primitives.serialization import Encoding

        if not NAME_RULE.match(name):
            raise ValueError(f"certificate name {name!r} breaks Key Vault's rule: 1-127 of 0-9 a-z A-Z -")
        leaf = check_pfx(pfx, password, now)
        thumbprint = hashlib.sha1(leaf.public_bytes(Encoding.DER)).hexdigest().upper()
        existing = self.current(name)
        if existing is not None and existing.thumbprint == thumbprint and not existing.exportable:
            return existing, False
        policy = CertificatePolicy(
            issuer_name="Unknown", key_type=KeyType.rsa, key_size=leaf.public_key().key_size, exportable=False,
            reuse_key=False, content_type=CertificateContentType.pkcs12,
            # Key Vault cannot renew a certificate it did not issue; it tells the vault's contacts instead.
            lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, lifetime_percentage=80)])
        try:
            certificate = self._certificates.import_certificate(name, pfx, password=password or None, policy=policy)
        except HttpResponseError as error:
            if error.status_code == 400:
                raise _refusal(error, "certificate.pfx") from None
            raise
        log.info("imported certificate %s version %s (thumbprint %s)", name, certificate.properties.version,
                 thumbprint)
        return _info(certificate, False), True

    def csr_state(self, name: str) -> CsrState:
        """Whether the certificate's last operation is a CSR for the customer's CA, waiting or merged."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            operation = self._certificates.get_certificate_operation(name)
        except ResourceNotFoundError:
            return CsrState("none")
        if (operation.issuer_name or "").lower() != "unknown":
            return CsrState("none")
        status = (operation.status or "").lower()
        if status == "inprogress" and operation.csr:
            return CsrState("pending", bytes(operation.csr))
        if status == "completed":
            return CsrState("merged", bytes(operation.csr) if operation.csr else None)
        return CsrState("none")

    def request_csr(self, name: str, subject: str, validity_months: int, key_size: int) -> bytes:
        """Let Key Vault create a non-exportable key and a CSR for it (issuer Unknown): the customer's CA signs
        it and :meth:`merge` completes the certificate. Returns the CSR (DER)."""
        from azure.core.exceptions import HttpResponseError
        from azure.keyvault.certificates import (
            CertificateContentType,
            CertificatePolicy,
            CertificatePolicyAction,
            KeyType,
            LifetimeAction,
        )

        if not NAME_RULE.match(name):
            raise ValueError(f"certificate name {name!r} breaks Key Vault's rule: 1-127 of 0-9 a-z A-Z -")
        policy = CertificatePolicy(
            issuer_name="Unknown", subject=subject, validity_in_months=validity_months, key_type=KeyType.rsa,
            key_size=key_size, exportable=False, reuse_key=False, content_type=CertificateContentType.pkcs12,
            lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, lifetime_percentage=80)])
        try:
            # For issuer Unknown the SDK's poller ends at once: the operation waits for the merge.
            self._certificates.begin_create_certificate(name, policy=policy).wait()
        except HttpResponseError as error:
            if error.status_code == 409 and "deleted but recoverable" in str(error.message).lower():
                self._certificates.begin_recover_deleted_certificate(name).wait()
                raise CreationPending(f"certificate {name} was soft-deleted; recovered it") from None
            if error.status_code != 409:
                raise
        state = self.csr_state(name)
        if state.status != "pending" or state.csr_der is None:
            raise CreationPending(f"Key Vault has no CSR for certificate {name} yet")
        log.info("requested a CSR for certificate %s", name)
        return state.csr_der

    def merge(self, name: str, upload: bytes) -> CertificateInfo:
        """Merge the certificate the customer's CA signed for the pending CSR, after checking that it is for the
        CSR's key (CertificateRejected if not; NothingPending when no CSR waits)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        certificates = read_certificates(upload)
        state = self.csr_state(name)
        if state.status != "pending" or state.csr_der is None:
            raise NothingPending(f"no CSR of certificate {name} waits for a signed certificate")
        wanted = _spki(x509.load_der_x509_csr(state.csr_der).public_key())
        leaves = [c for c in certificates if _spki(c.public_key()) == wanted]
        if not leaves:
            raise CertificateRejected("body", "is a certificate for another key than the CSR's: sign the CSR of GET "
                                      "/api/onboardings/{id}/csr", "CertificateKeyMismatch")
        chain = leaves[:1] + [c for c in certificates if c is not leaves[0]]
        try:
            certificate = self._certificates.merge_certificate(name, [c.public_bytes(Encoding.DER) for c in chain])
        except ResourceNotFoundError:
            raise NothingPending(f"no CSR of certificate {name} waits for a signed certificate") from None
        except HttpResponseError as error:
            if error.status_code == 400:
                raise _refusal(error, "body") from None
            if error.status_code in (403, 409):
                raise NothingPending(f"certificate {name}: {error.message}") from None
            raise
        log.info("merged certificate %s version %s", name, certificate.properties.version)
        return _info(certificate, False)

    def version(self, name: str, version: str) -> CertificateInfo | None:
        """One version's public facts (a rotation's old certificate), or None when it is gone."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            certificate = self._certificates.get_certificate_version(name, version)
        except ResourceNotFoundError:
            return None
        if certificate.cer is None:
            return None
        return _info(certificate, bool(certificate.policy and certificate.policy.exportable))

    def version_with_thumbprint(self, name: str, thumbprint: str) -> CertificateInfo | None:
        """The version whose SHA-1 thumbprint is `thumbprint` (upper-case hex), or None."""
        from azure.core.exceptions import ResourceNotFoundError

        latest = self.current(name)
        if latest is not None and latest.thumbprint == thumbprint:
            return latest
        try:
            versions = list(self._certificates.list_properties_of_certificate_versions(name))
        except ResourceNotFoundError:
            return None
        for props in versions:
            if props.x509_thumbprint and bytes(props.x509_thumbprint).hex().upper() == thumbprint:
                return self.version(name, props.version)
        return None

    def renew(self, name: str, replaces_version: str, subject: str, validity_months: int, key_size: int,
              exportable: bool, now: datetime) -> tuple[CertificateInfo, bool]:
        """A new version after `replaces_version` (a rotation): the latest enabled version when it is already a
        newer one (an earlier attempt made it), else a new version with the given policy. Returns (info, created)."""
        latest = self.current(name)
        if latest is not None and latest.version != replaces_version:
            return latest, False
        # Reuse nothing that exists: every version up to the one being replaced is the old key.
        return self.ensure(name, subject, validity_months, key_size, exportable, now,
                           renew_within=timedelta(days=365 * 100))

    # -- offboarding: soft delete, purge --------------------------------------------------------------------
    def delete(self, name: str) -> dict:
        """Soft-delete the certificate (its key and secret with it; delete-certificate): recoverable until its
        scheduledPurgeDate. Idempotent: a certificate deleted already (or never made) reports what the vault has.
        Returns {"state": "softDeleted"|"absent", "scheduledPurgeDate", "recoveryLevel"}."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            deleted = self._certificates.begin_delete_certificate(name).result()
        except ResourceNotFoundError:
            deleted = self._deleted(name)
            if deleted is None:
                return {"state": "absent", "scheduledPurgeDate": None, "recoveryLevel": None}
        log.info("soft-deleted certificate %s", name)
        return _deleted_facts(deleted)

    def _deleted(self, name: str):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._certificates.get_deleted_certificate(name)
        except ResourceNotFoundError:
            return None

    def purge(self, name: str) -> dict:
        """Purge the soft-deleted certificate where the vault allows it (purge-deleted-certificate). A vault with
        purge protection (recoveryLevel without "Purgeable") keeps it until its scheduledPurgeDate: that is
        reported, not raised. Returns {"state": "purged"|"softDeleted"|"absent", "scheduledPurgeDate",
        "recoveryLevel", "note"?}."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        deleted = self._deleted(name)
        if deleted is None:
            return {"state": "absent", "scheduledPurgeDate": None, "recoveryLevel": None}
        facts = _deleted_facts(deleted)
        # "The operation is not available if the recovery level does not specify 'Purgeable'. This operation
        # requires the certificate/purge permission." (rest/api/keyvault/certificates/purge-deleted-certificate)
        if "purgeable" not in (facts["recoveryLevel"] or "").lower():
            return {**facts, "note": _PURGE_PROTECTED_NOTE.format(facts["scheduledPurgeDate"] or "its retention end")}
        try:
            self._certificates.purge_deleted_certificate(name)
        except ResourceNotFoundError:
            pass  # purged by an earlier attempt
        except HttpResponseError as error:
            if error.status_code != 403:
                raise
            # Purge protection switched on since the read, or the identity lacks the purge data action.
            message = str(getattr(getattr(error, "error", None), "message", None) or error.message)[:300]
            return {**facts, "note": f"Key Vault refused the purge (403: {message}); the certificate stays "
                                     f"soft-deleted until {facts['scheduledPurgeDate'] or 'its retention ends'}"}
        log.info("purged certificate %s", name)
        return {"state": "purged", "scheduledPurgeDate": None, "recoveryLevel": facts["recoveryLevel"]}

    def sign(self, key_id: str, algorithm: str, digest: bytes, certificate_der: bytes | None = None) -> bytes:
        """Sign a digest with the certificate's key inside the vault (RS256 or PS256). Given the certificate
        (`certificate_der`, whose public key is the key's), the client does not read the key first."""
        from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm

        with self._lock:
            client = self._crypto.get(key_id)
            if client is not None:
                self._crypto.move_to_end(key_id)
            else:
                # One client per key version. Built from a key id alone, CryptographyClient first GETs the key
                # (for local public-key operations; sign is always the vault's): the certificate's public key
                # makes that read needless. key_ops "verify" only: sign stays in the vault.
                key = _public_key(key_id, certificate_der) if certificate_der else key_id
                client = self._crypto[key_id] = CryptographyClient(key, self._credential,
                                                                   verify_challenge_resource=self._verify)
                # One per onboarding's key: bounded, a worker signs for many. A dropped client is not closed (another
                # thread may be signing with it); it goes with its last user.
                while len(self._crypto) > MAX_SIGNING_CLIENTS:
                    self._crypto.popitem(last=False)
        return client.sign(SignatureAlgorithm(algorithm), digest).signature

    def close(self) -> None:
        """Close the HTTP sessions."""
        self._certificates.close()
