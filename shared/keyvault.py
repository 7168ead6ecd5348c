"""Key Vault: the onboarding certificate (create or reuse), its public part, and signing with its key.

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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

NAME_RULE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")  # Key Vault object names
# How long one attempt waits for a new certificate. The SDK polls every 5 s; self-signed RSA certificates
# take seconds. Longer creations end the attempt, and a later one (a durable retry) picks the result up.
CREATION_WAIT_SECONDS = 30.0


class CreationPending(Exception):
    """The certificate is being created; try again later."""


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
        self._crypto: dict[str, object] = {}
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
        from azure.keyvault.certificates import (
            CertificateContentType,
            CertificatePolicy,
            CertificatePolicyAction,
            KeyType,
            LifetimeAction,
        )

        if not NAME_RULE.match(name):
            raise ValueError(f"certificate name {name!r} breaks Key Vault's rule: 1-127 of 0-9 a-z A-Z -")
        existing = self.current(name)
        if existing is not None:
            not_after = datetime.fromisoformat(existing.not_after.replace("Z", "+00:00"))
            same_key = existing.exportable == exportable and existing.key_size in (None, key_size)
            if not_after - renew_within > now and same_key:
                return existing, False
        policy = CertificatePolicy(
            issuer_name="Self", subject=subject, validity_in_months=validity_months, key_type=KeyType.rsa,
            key_size=key_size, exportable=exportable, reuse_key=False,
            content_type=CertificateContentType.pkcs12,
            # Never Key Vault's default AutoRenew: a version it renews on its own has a new key that no app
            # registration carries, so tokens would break. certauth rotates itself (new version, addKey, proof,
            # removeKey); Key Vault only tells the vault's certificate contacts when 80 % of the lifetime is gone.
            lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, lifetime_percentage=80)],
        )
        try:
            poller = self._certificates.begin_create_certificate(name, policy=policy)
        except HttpResponseError as error:
            if error.status_code == 409 and "deleted but recoverable" in str(error.message).lower():
                # The name belongs to a soft-deleted certificate (an earlier offboarding): bring it back
                # and judge it like any existing one on the next attempt.
                self._certificates.begin_recover_deleted_certificate(name).wait()
                raise CreationPending(f"certificate {name} was soft-deleted; recovered it") from None
            if error.status_code != 409 or "pending" not in str(error.message).lower():
                raise
            return self._resume(name, exportable)
        result = poller.result(timeout=wait_seconds)
        if not poller.done():
            raise CreationPending(f"Key Vault is still creating certificate {name}")
        if not hasattr(result, "cer") or result.cer is None:
            # begin_create_certificate returns the CertificateOperation (not an error) when creation fails.
            raise RuntimeError(f"Key Vault could not create certificate {name}: "
                               f"{getattr(result, 'status', '?')} {getattr(result, 'error', None)}")
        log.info("created certificate %s version %s", name, result.properties.version)
        return _info(result, exportable), True

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

    def sign(self, key_id: str, algorithm: str, digest: bytes) -> bytes:
        """Sign a digest with the certificate's key inside the vault (RS256 or PS256)."""
        from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm

        with self._lock:
            client = self._crypto.get(key_id)
            if client is None:
                # One client per key version: it reads the key once, then only signs.
                client = self._crypto[key_id] = CryptographyClient(key_id, self._credential,
                                                                   verify_challenge_resource=self._verify)
        return client.sign(SignatureAlgorithm(algorithm), digest).signature

    def close(self) -> None:
        """Close the HTTP sessions."""
        self._certificates.close()
