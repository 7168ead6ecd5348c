"""Exchange Online's admin API, as the Exchange Online PowerShell V3 module calls it: one origin that stands for
https://outlook.office365.com.

  POST /adminapi/beta/{tenant}/InvokeCommand   {"CmdletInput": {"CmdletName": "Get-OrganizationConfig",
                                                                "Parameters": {}}}

`{tenant}` is the organization's tenant id or one of its verified domains. Microsoft does not document the
endpoint; what is served here is what its public clients send and what was observed (microsoft.EXCHANGE_ADMIN_API
and EXCHANGE_ADMIN_ERRORS, each with its source and confidence). In order:

  * no token, or one that is malformed, expired or not for Exchange Online (`aud` https://outlook.office365.com):
    401 with a Bearer challenge;
  * a token of another organization than the one in the path: 401;
  * no Exchange.ManageAsApp in the token's `roles` (the app permission; new grants reach tokens only after the
    "appRoleAssignment" replication delay): 401;
  * no Exchange-supported directory role (microsoft.EXCHANGE_APP_ONLY_SUPPORTED_ROLES) in the token's role
    information: 403 "… The role assigned to application <appId> isn't supported in this scenario …". Exchange
    configures the session's RBAC from the role information in the token (EXO_APP_ONLY_AUTH): a role assignment
    counts when it had replicated (the "roleAssignment" replication delay) at the token's `iat`, so a token
    issued before then keeps getting 403 and only a new token sees the role. The sandbox's tokens carry no role
    claim, so the assignments are looked up at request time (a removed one stops counting at once: a
    simplification, a real token would keep it until it expires);
  * a cmdlet other than Get-OrganizationConfig (the only one modelled), or a body without CmdletInput: 400;
  * otherwise 200 {"@odata.context": …, "value": [{…a small organization config…}]}.

Errors have the admin API's OData shape: {"error": {"code", "message", "innererror": {"message", "type"}}}.
Fault rules reach this origin as `exchange` (and `*`).
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from . import microsoft as ms
from .errors import ServiceError
from .tokens import Caller, TokenRejected
from .world import Tenant, World

routes = web.RouteTableDef()

# Audiences the admin API accepts: Exchange Online's resource identifiers (the token endpoint issues
# "https://outlook.office365.com", microsoft.TOKEN_AUDIENCE).
EXCHANGE_AUDIENCES = frozenset(ms.RESOURCE_IDENTIFIERS[ms.EXCHANGE_ONLINE_APP_ID])
INVOKE_COMMAND = re.compile(r"^/adminapi/beta/(?P<tenant>[^/]+)/InvokeCommand/?$", re.IGNORECASE)
# A fixed namespace so an organization's Exchange Guid stays the same for the life of the simulator.
_ORGANIZATION_GUIDS = uuid.UUID("5f0e5d2c-6a2b-4f57-9b1e-2f7f3f1c0e11")


class ExchangeError(ServiceError):
    """An admin-API error; `inner` is the innererror's message when it differs from the error's own."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, headers=headers)
        self.inner = inner


def _error(kind: str, headers: dict[str, str] | None = None, **fields: str) -> ExchangeError:
    fact = ms.EXCHANGE_ADMIN_ERRORS[kind]
    inner = fact.get("inner")
    return ExchangeError(fact["status"], fact["code"], fact["message"].format(**fields),
                         inner.format(**fields) if inner else None, headers=headers)


def error_response(exc: ServiceError) -> web.Response:
    """Render any ServiceError of this origin (its own, or a fault rule's) in the admin API's OData shape."""
    inner = getattr(exc, "inner", None)
    innererror: dict = {"message": exc.message, "type": ms.EXCHANGE_ADMIN_API["innererror_type"], "stacktrace": ""}
    if inner:
        innererror["internalexception"] = {"message": inner, "type": "System.Management.Automation."
                                           "CommandNotFoundException", "stacktrace": ""}
    body = {"error": {"code": exc.code, "message": exc.message, "innererror": innererror}}
    return web.json_response(body, status=exc.status, headers={"Cache-Control": "no-store", **exc.headers})


def _challenge(request: web.Request) -> dict[str, str]:
    # The Bearer challenge Exchange Online's REST endpoints send (microsoft.EXCHANGE_ADMIN_ERRORS["invalid_token"]),
    # pointing at this simulator's login origin instead of login.microsoftonline.com.
    login = request.app["urls"]["login"]
    return {"WWW-Authenticate": f'Bearer client_id="{ms.EXCHANGE_ONLINE_APP_ID}", '
                                'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                                'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                                f'authorization_uri="{login}/common/oauth2/authorize", error="invalid_token"'}


def _caller(request: web.Request) -> Caller:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _error("invalid_token", headers=_challenge(request))
    world: World = request.app["world"]
    try:
        caller = request.app["issuer"].verify(token.strip(), set(EXCHANGE_AUDIENCES))
    except TokenRejected:
        raise _error("invalid_token", headers=_challenge(request)) from None
    tenant = world.tenants.get(caller.tenant_id)
    if tenant is None or caller.object_id not in tenant.service_principals:
        raise _error("invalid_token", headers=_challenge(request))  # the principal is gone
    return caller


def _organization_config(tenant: Tenant) -> dict:
    """A small Get-OrganizationConfig result (microsoft.EXCHANGE_ADMIN_API["modelled_cmdlet"])."""
    return {"Name": tenant.domain, "DisplayName": tenant.display_name, "Identity": tenant.domain,
            "Id": tenant.domain, "Guid": str(uuid.uuid5(_ORGANIZATION_GUIDS, tenant.id)), "IsDehydrated": False}


async def _cmdlet_name(request: web.Request) -> str:
    try:
        body = await request.json()
    except ValueError:
        raise _error("bad_request") from None
    cmdlet_input = body.get("CmdletInput") if isinstance(body, dict) else None
    name = cmdlet_input.get("CmdletName") if isinstance(cmdlet_input, dict) else None
    parameters = cmdlet_input.get("Parameters", {}) if isinstance(cmdlet_input, dict) else None
    if not isinstance(name, str) or not name or not isinstance(parameters, dict):
        raise _error("bad_request")
    return name


async def invoke_command(request: web.Request, tenant_ref: str) -> web.Response:
    """Run a cmdlet for the caller (only Get-OrganizationConfig is modelled)."""
    world: World = request.app["world"]
    caller = _caller(request)
    tenant = world.tenant(tenant_ref)
    if tenant is None or tenant.id != caller.tenant_id:
        raise _error("wrong_tenant", tenant=tenant_ref)
    if ms.EXCHANGE_ADMIN_API["permission"] not in caller.roles:
        raise _error("missing_permission", appId=caller.app_id)
    # The role information of the token: assignments replicated when it was issued (see the module docstring).
    issued_at = float(caller.claims.get("iat", world.clock.epoch()))
    if not world.role_template_ids(tenant, caller.object_id, at=issued_at) & ms.EXCHANGE_APP_ONLY_SUPPORTED_ROLES:
        raise _error("unsupported_role", appId=caller.app_id, requestId=str(uuid.uuid4()))
    name = await _cmdlet_name(request)
    if name.lower() != ms.EXCHANGE_ADMIN_API["modelled_cmdlet"].lower():
        raise _error("unknown_cmdlet", cmdlet=name)
    base = request.app["urls"]["exchange"]
    context = ms.EXCHANGE_ADMIN_API["odata_context"].format(base=base, tenant=tenant_ref)
    return web.json_response({"@odata.context": context, "value": [_organization_config(tenant)]})


@routes.route("*", "/{path:.*}")
async def dispatch(request: web.Request) -> web.Response:
    """The admin API's one modelled operation (its path matched case-insensitively, as clients spell it both
    ways); any other path or method is not found."""
    match = INVOKE_COMMAND.match(request.path)
    if match and request.method == "POST":
        return await invoke_command(request, match["tenant"])
    # UNCONFIRMED body for an unrouted path (the OData shape, code NotFound).
    raise ExchangeError(404, "NotFound", f"The resource '{request.path}' was not found.")


def setup(app: web.Application) -> None:
    """Mount the admin API on its origin's application."""
    app.add_routes(routes)
