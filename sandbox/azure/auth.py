"""Bearer-token checks shared by the resource origins (Graph, Key Vault)."""

from __future__ import annotations

from aiohttp import web

from .errors import ServiceError
from .tokens import Caller, TokenRejected


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def caller_for(request: web.Request, audiences: set[str]) -> Caller:
    """Verify the request's bearer token for one of `audiences`; raise Graph's 401 shape otherwise.

    Graph answers 401 InvalidAuthenticationToken for a missing, malformed, expired or foreign token
    (learn.microsoft.com/graph/resolve-auth-errors). Key Vault wraps this with its own challenge.
    """
    token = bearer_token(request)
    if token is None:
        raise ServiceError(401, "InvalidAuthenticationToken", "Access token is empty.")
    world = request.app["world"]
    try:
        caller = request.app["issuer"].verify(token, audiences)
    except TokenRejected as exc:
        raise ServiceError(401, "InvalidAuthenticationToken", str(exc)) from exc
    tenant = world.tenants.get(caller.tenant_id)
    if tenant is None or caller.object_id not in tenant.service_principals:
        # The principal was deleted after the token was issued.
        raise ServiceError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
    return caller
