"""Token credentials: the product's own identity (managed identity, federated into the multi-tenant
onboarding app for customer tenants) and the onboarded app's identity (a client assertion signed by
Key Vault, so a non-exportable key never leaves the vault).

Credentials are cheap objects; activities build them per call so that no token cache outlives the
activity (tokens are never persisted or logged).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from .settings import Settings

TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"
ASSERTION_LIFETIME = 600  # seconds; Entra accepts client assertions of up to ten minutes here


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _identity_options(settings: Settings) -> dict:
    return {"authority": settings.authority_host, "disable_instance_discovery": not settings.instance_discovery}


def home_credential(settings: Settings):
    """The Function App's own identity in its home tenant (Key Vault, Table Storage, mail)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id,
                                  exclude_interactive_browser_credential=True, **_identity_options(settings))


def _managed_identity_assertion(settings: Settings) -> Callable[[], str]:
    """A function returning the managed identity's token for api://AzureADTokenExchange (the federated
    client assertion of the onboarding app)."""
    from azure.identity import ManagedIdentityCredential

    managed = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return lambda: managed.get_token(TOKEN_EXCHANGE_SCOPE).token


def provisioner_credential(settings: Settings, tenant_id: str, asynchronous: bool = True):
    """The product's identity in a customer tenant: the multi-tenant onboarding app, authenticated by
    the managed identity's federated assertion (no secret). Without an onboarding app configured, the
    home identity is used (single-tenant deployments)."""
    if not settings.provisioner_client_id:
        if asynchronous:
            from azure.identity.aio import DefaultAzureCredential

            return DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id,
                                          **_identity_options(settings))
        return home_credential(settings)
    if asynchronous:
        from azure.identity.aio import ClientAssertionCredential
    else:
        from azure.identity import ClientAssertionCredential
    return ClientAssertionCredential(tenant_id, settings.provisioner_client_id, _managed_identity_assertion(settings),
                                     **_identity_options(settings))


def keyvault_signed_assertion(settings: Settings, tenant_id: str, client_id: str, certificate_der: bytes,
                              sign: Callable[[bytes], bytes], now: datetime) -> Callable[[], str]:
    """A client-assertion factory for the onboarded app: RS256 over SHA-256, signed by `sign` (Key Vault).

    Times start from `now` (the orchestration's clock) plus the time elapsed since, so the assertion
    is judged on the same clock as the rest of the onboarding."""
    started = time.monotonic()
    header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(hashlib.sha1(certificate_der).digest())}
    audience = f"{settings.authority_host}/{tenant_id}/oauth2/v2.0/token"

    def assertion() -> str:
        issued = int(now.timestamp() + (time.monotonic() - started))
        claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
                  "nbf": issued, "iat": issued, "exp": issued + ASSERTION_LIFETIME}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = sign(hashlib.sha256(signing_input.encode()).digest())
        return f"{signing_input}.{_b64url(signature)}"

    return assertion


def onboarded_app_credential(settings: Settings, tenant_id: str, client_id: str, assertion: Callable[[], str]):
    """The onboarded app's own credential (sync), for the token proof."""
    from azure.identity import ClientAssertionCredential

    return ClientAssertionCredential(tenant_id, client_id, assertion, **_identity_options(settings))
