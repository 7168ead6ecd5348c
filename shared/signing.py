"""The product's signing key and the capability tokens it signs (status URLs; later onboarding links and the
consent state).

The key is one Key Vault secret (``CERTAUTH_SIGNING_KEY_SECRET``, default ``certauth-signing-key``), created on
first use when it is missing. Every token names the secret version that signed it, and the two most recent
enabled versions are accepted, so the key rotates by adding a version (``az keyvault secret set``): tokens signed
with the previous one keep working until the version after next. A token is
``<version>.<payload>.<mac>``: payload = base64url of compact JSON ``{"p": purpose, "s": subject, "e": expiry}``
(POSIX seconds), mac = base64url of HMAC-SHA256(key, "<version>.<payload>").

Tokens are capabilities: they go back to the caller that asked and nowhere else (never in Table Storage,
orchestration history or logs). Nothing here logs a token or a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

KEY_BYTES = 32                      # 256-bit HMAC-SHA256 key
ACCEPTED_VERSIONS = 2               # the newest enabled version signs; the one before still verifies
CACHE_SECONDS = 300.0               # how long a worker trusts its copy of the versions (a rotation shows within)
REFRESH_FLOOR_SECONDS = 30.0        # an unknown version re-reads the vault at most this often
VERSION = re.compile(r"^[0-9a-zA-Z]{1,64}$")
PART = re.compile(r"^[A-Za-z0-9_-]{1,2048}$")
CONTENT_TYPE = "application/vnd.certauth.hmac-sha256-key"


class TokenRejected(Exception):
    """A token that is malformed, forged, expired, for another purpose or subject, or signed by a retired key."""


@dataclass(frozen=True)
class SigningKey:
    """One version of the signing key."""

    version: str
    key: bytes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> str:
    return _b64url(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def make_token(key: SigningKey, purpose: str, subject: str, expires_at: int) -> str:
    """A token for `purpose` (e.g. "status") on `subject` (e.g. an onboarding id) until `expires_at`."""
    payload = _b64url(json.dumps({"p": purpose, "s": subject, "e": int(expires_at)}, separators=(",", ":")).encode())
    signed = f"{key.version}.{payload}"
    return f"{signed}.{_mac(key.key, signed)}"


def token_version(token: str) -> str:
    """The key version a token names (raises TokenRejected for a token that is not one)."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not VERSION.match(parts[0]) or not all(PART.match(p) for p in parts[1:]):
        raise TokenRejected("not a token")
    return parts[0]


def read_token(token: str, keys: Mapping[str, bytes], purpose: str, subject: str, now: float | None = None) -> dict:
    """The payload of a valid token for `purpose` and `subject`, checked with the accepted `keys`
    ({version: key}); raises TokenRejected otherwise. The MAC is compared in constant time, before the payload
    is read."""
    version = token_version(token)
    key = keys.get(version)
    if key is None:
        raise TokenRejected("signed by a key version that is not accepted")
    signed, mac = token.rsplit(".", 1)
    if not hmac.compare_digest(_mac(key, signed), mac):
        raise TokenRejected("bad signature")
    try:
        payload = json.loads(_unb64url(signed.split(".", 1)[1]))
    except ValueError:
        raise TokenRejected("unreadable payload") from None
    if not isinstance(payload, dict) or payload.get("p") != purpose or payload.get("s") != subject:
        raise TokenRejected("for another purpose or subject")
    expires = payload.get("e")
    if not isinstance(expires, int) or expires <= (time.time() if now is None else now):
        raise TokenRejected("expired")
    return payload


class SigningKeys:
    """The signing key's accepted versions, read from Key Vault and cached for a few minutes."""

    def __init__(self, secret_client, secret_name: str) -> None:
        self._client = secret_client
        self._name = secret_name
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []    # newest first
        self._read_at = float("-inf")

    def current(self) -> SigningKey:
        """The version that signs new tokens (the newest enabled one); creates the secret if it is missing."""
        with self._lock:
            if not self._keys or time.monotonic() - self._read_at > CACHE_SECONDS:
                self._refresh()
            return self._keys[0]

    def accepted(self, version: str) -> dict[str, bytes]:
        """{version: key} of the accepted versions; re-read once if `version` is not among them (a rotation
        since the last read), at most every REFRESH_FLOOR_SECONDS so forged versions cannot flood the vault."""
        with self._lock:
            stale = time.monotonic() - self._read_at > CACHE_SECONDS
            unknown = version not in {k.version for k in self._keys}
            if not self._keys or stale or (unknown and time.monotonic() - self._read_at > REFRESH_FLOOR_SECONDS):
                self._refresh()
            return {k.version: k.key for k in self._keys}

    def _refresh(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            keys = self._read()
        except ResourceNotFoundError:
            keys = []
        if not keys:
            self._create()
            keys = self._read()
        if not keys:
            raise RuntimeError(f"Key Vault secret {self._name} has no enabled version to sign with")
        self._keys = keys
        self._read_at = time.monotonic()

    def _read(self) -> list[SigningKey]:
        """The newest ACCEPTED_VERSIONS enabled, currently valid versions, newest first."""
        now = time.time()
        versions = [p for p in self._client.list_properties_of_secret_versions(self._name)
                    if p.enabled is not False
                    and (p.not_before is None or p.not_before.timestamp() <= now)
                    and (p.expires_on is None or p.expires_on.timestamp() > now)]
        # Newest first. Key Vault dates are whole seconds: between versions of one second, the one listed later
        # counts as newer (the sort keeps the reversed listing's order for equal times).
        versions.reverse()
        versions.sort(key=lambda p: p.created_on.timestamp() if p.created_on else 0, reverse=True)
        keys = []
        for properties in versions[:ACCEPTED_VERSIONS]:
            value = self._client.get_secret(self._name, properties.version).value or ""
            try:
                key = _unb64url(value)
            except ValueError:
                key = b""
            if len(key) < KEY_BYTES:
                log.warning("Key Vault secret %s version %s is not a %d-byte base64url key: skipped",
                            self._name, properties.version, KEY_BYTES)
                continue
            keys.append(SigningKey(properties.version, key))
        return keys

    def _create(self) -> None:
        # Two workers may both find the secret missing and each add a version: both are accepted, the newer signs.
        self._client.set_secret(self._name, _b64url(secrets.token_bytes(KEY_BYTES)), content_type=CONTENT_TYPE,
                                tags={"purpose": "certauth capability URLs (HMAC-SHA256)"})
        log.info("created the signing key: Key Vault secret %s", self._name)


def signing_keys(settings) -> SigningKeys:
    """The product's signing keys, shared by a worker (the home identity's SecretClient on the signing vault)."""
    from .credentials import home_credential
    from .reuse import shared

    def build() -> SigningKeys:
        from azure.keyvault.secrets import SecretClient

        client = SecretClient(settings.require("signing_key_vault_url"), home_credential(settings),
                              verify_challenge_resource=settings.keyvault_verify_challenge_resource)
        return SigningKeys(client, settings.signing_key_secret)

    return shared(("signing", settings), build)
