"""Token credentials: the product's own identity (managed identity, federated into the multi-tenant
onboarding app for customer tenants) and the onboarded app's identity (a client assertion signed by
Key Vault, so a non-exportable key never leaves the vault).

The product's own credentials are shared by a worker's activities (shared/reuse.py), so tokens are fetched
once, not per step, and refreshed by azure-identity before they expire; callers that miss the cache at the same
time make one request between them (SingleFlight). Tokens live only in those in-memory
caches: never persisted, passed between activities, or logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable

from .reuse import shared
from .settings import Settings, SettingsError

ASSERTION_LIFETIME = 600  # seconds; Entra accepts client assertions of up to ten minutes here


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SingleFlight:
    """A shared TokenCredential that lets one request per token (scopes and options) go out at a time.

    azure-identity caches a token until shortly before it expires, but callers that miss the cache at once (steps
    running side by side, many onboardings of one tenant starting together, a refresh) would each ask Entra ID or
    the managed-identity endpoint for the same token. Here the others wait for the first one's answer and then
    find it in the cache: one request, not one per caller. Tokens of other scopes do not wait."""

    def __init__(self, credential) -> None:
        self._credential = credential
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, *key) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get_token(self, *scopes: str, **kwargs):
        """The wrapped credential's token, one request per (scopes, options) at a time."""
        with self._lock("token", scopes, tuple(sorted((k, repr(v)) for k, v in kwargs.items()))):
            return self._credential.get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, options=None):
        """The wrapped credential's AccessTokenInfo (azure-core prefers it), one request at a time as above."""
        with self._lock("info", scopes, tuple(sorted((k, repr(v)) for k, v in (options or {}).items()))):
            return self._credential.get_token_info(*scopes, options=options)

    def close(self) -> None:
        """Close the wrapped credential."""
        self._credential.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _identity_options(settings: Settings) -> dict:
    return {"authority": settings.authority_host, "disable_instance_discovery": not settings.instance_discovery}


def home_credential(settings: Settings):
    """The Function App's own identity in its home tenant (Key Vault, Table Storage, mail)."""

    def build():
        from azure.identity import DefaultAzureCredential

        return SingleFlight(DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id,
                                                   exclude_interactive_browser_credential=True,
                                                   **_identity_options(settings)))

    return shared(("home", settings), build)


def _managed_identity(settings: Settings):
    def build():
        from azure.identity import ManagedIdentityCredential

        return SingleFlight(ManagedIdentityCredential(client_id=settings.managed_identity_client_id))

    return shared(("managed-identity", settings), build)


def provisioner_credential(settings: Settings, tenant_id: str):
    """The product's identity in a customer tenant: the multi-tenant onboarding app, authenticated by the
    managed identity's federated assertion (no secret). Without an onboarding app configured, the home
    identity is used (single-tenant deployments). A sync credential: msgraph-sdk accepts one, and a sync
    credential can be shared by activities running on different event loops."""
    if not settings.provisioner_client_id:
        # Without the onboarding app the product can only act in its own tenant: using the home identity
        # for another tenant would write the customer's objects into the home tenant.
        if not settings.home_tenant_id or tenant_id.lower() != settings.home_tenant_id.lower():
            raise SettingsError(f"tenant {tenant_id}: only the home tenant (CERTAUTH_HOME_TENANT_ID) can be "
                                "onboarded unless CERTAUTH_PROVISIONER_CLIENT_ID names the onboarding app")
        return home_credential(settings)

    def build():
        from azure.identity import ClientAssertionCredential

        managed = _managed_identity(settings)
        exchange_scope = f"{settings.token_exchange_audience}/.default"
        return SingleFlight(ClientAssertionCredential(tenant_id, settings.provisioner_client_id,
                                                      lambda: managed.get_token(exchange_scope).token,
                                                      **_identity_options(settings)))

    return shared(("provisioner", settings, tenant_id), build)


def verifier_credential(settings: Settings, tenant_id: str):
    """The manual method's read-only identity in a customer tenant: the multi-tenant verifier app
    (Application.Read.All, Organization.Read.All), authenticated like the onboarding app by the managed
    identity's federated assertion. A sync credential, shared per process and tenant."""
    if not settings.verifier_client_id:
        raise SettingsError("the manual method needs the verifier app: set CERTAUTH_VERIFIER_CLIENT_ID")

    def build():
        from azure.identity import ClientAssertionCredential

        managed = _managed_identity(settings)
        exchange_scope = f"{settings.token_exchange_audience}/.default"
        return SingleFlight(ClientAssertionCredential(tenant_id, settings.verifier_client_id,
                                                      lambda: managed.get_token(exchange_scope).token,
                                                      **_identity_options(settings)))

    return shared(("verifier", settings, tenant_id), build)


def keyvault_signed_assertion(settings: Settings, tenant_id: str, client_id: str, certificate_der: bytes,
                              sign: Callable[[bytes], bytes]) -> Callable[[], str]:
    """A client-assertion factory for the onboarded app: RS256 over SHA-256, signed by `sign` (Key Vault).

    Its times are the wall clock's when a token is asked for, as MSAL's own assertions are."""
    header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(hashlib.sha1(certificate_der).digest())}
    audience = f"{settings.authority_host}/{tenant_id}/oauth2/v2.0/token"
    made: list[tuple[int, str]] = []

    def assertion() -> str:
        issued = int(time.time())
        # One signature serves every token request of the next few minutes (as MSAL reuses assertions).
        if made and 0 <= issued - made[0][0] < ASSERTION_LIFETIME / 2:
            return made[0][1]
        claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
                  "nbf": issued, "iat": issued, "exp": issued + ASSERTION_LIFETIME}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = sign(hashlib.sha256(signing_input.encode()).digest())
        made[:] = [(issued, f"{signing_input}.{_b64url(signature)}")]
        return made[0][1]

    return assertion


def onboarded_app_credential(settings: Settings, tenant_id: str, client_id: str, assertion: Callable[[], str]):
    """The onboarded app's own credential (sync), for the token proof."""
    from azure.identity import ClientAssertionCredential

    return ClientAssertionCredential(tenant_id, client_id, assertion, **_identity_options(settings))
