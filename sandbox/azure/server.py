"""Composes the simulator: one aiohttp application per origin, TLS, faults, and the admin API.

Origins (each its own loopback port):
  login     https  Entra ID (discovery, token, admin consent) and the admin routes under /_sandbox
  graph     https  Microsoft Graph, base path /v1.0
  vault     https  Key Vault
  identity  http   the App Service managed-identity endpoint (plain HTTP, as inside App Service)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from sandbox.clock import Clock

from . import entra
from .errors import ServiceError, error_response
from .tls import create_tls
from .tokens import TokenIssuer
from .world import FaultRule, RequestRecord, World

log = logging.getLogger(__name__)

DEFAULT_PROVISIONER_ROLES = [
    "Application.ReadWrite.OwnedBy", "Application.Read.All", "AppRoleAssignment.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory", "Organization.Read.All", "Mail.Send",
]


@dataclass
class SimulatorConfig:
    """What the simulator starts with."""

    tenants: int = 2
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: {"login": 0, "graph": 0, "vault": 0, "identity": 0})
    state_dir: Path | None = None
    provisioner_roles: list[str] = field(default_factory=lambda: list(DEFAULT_PROVISIONER_ROLES))
    faults: list[dict] = field(default_factory=list)
    replication_delay: dict[str, float] = field(default_factory=dict)


def _tenant_of_path(path: str) -> str | None:
    match = re.match(r"^/([0-9a-fA-F-]{36})/", path)
    return match.group(1) if match else None


def _middlewares(origin: str):
    @web.middleware
    async def observe(request: web.Request, handler):
        """Record the request, apply faults, and render ServiceErrors in the origin's shape."""
        world: World = request.app["world"]
        path = request.path_qs
        started = time.time()
        response: web.StreamResponse
        try:
            if not request.path.startswith("/_sandbox"):
                await _apply_faults(world, origin, request)
            response = await handler(request)
        except ServiceError as exc:
            response = error_response(origin, exc)
        except web.HTTPException as exc:
            response = exc
        if not request.path.startswith("/_sandbox"):
            world.requests.append(RequestRecord(origin, request.method, path, response.status,
                                                _tenant_of_path(request.path), started, time.time()))
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return [observe]


async def _apply_faults(world: World, origin: str, request: web.Request) -> None:
    now = time.monotonic()
    for rule in world.faults:
        if rule.origin not in ("*", origin) or rule.method not in ("*", request.method):
            continue
        if rule.path and not re.search(rule.path, request.path_qs):
            continue
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.status is None:
            continue
        if rule.rate_per_second is not None:
            rule.window = [t for t in rule.window if now - t < 1.0]
            if len(rule.window) < rule.rate_per_second:
                rule.window.append(now)
                continue
        elif rule.count is not None and rule.fired >= rule.count:
            continue
        rule.fired += 1
        headers = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(int(rule.retry_after)) if float(rule.retry_after).is_integer() \
                else str(rule.retry_after)
        code = {429: "TooManyRequests",
                503: "ServiceUnavailable", 500: "InternalServerError", 504: "GatewayTimeout"}.get(
            rule.status, "UnknownError")
        message = {429: "Too many requests. Please try again later." if origin == "graph"
                   else "Rate limit is exceeded. Try again in a while.",
                   503: "Service is temporarily unavailable. Please try again later."}.get(
            rule.status, "An internal server error occurred (sandbox fault injection).")
        raise ServiceError(rule.status, code, message, headers=headers)


# -- admin API -----------------------------------------------------------------------------------------

admin = web.RouteTableDef()


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@admin.get("/_sandbox/clock")
async def get_clock(request: web.Request) -> web.Response:
    """Read the sandbox clock."""
    return web.json_response(request.app["world"].clock.document())


@admin.post("/_sandbox/clock")
async def advance_clock(request: web.Request) -> web.Response:
    """Move the sandbox clock forward: {"advanceSeconds": N}."""
    body = await request.json()
    seconds = body.get("advanceSeconds") if isinstance(body, dict) else None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return _json_error(400, "advanceSeconds: a number of seconds is required")
    try:
        request.app["world"].clock.advance(seconds)
    except ValueError as exc:
        return _json_error(400, str(exc))
    return web.json_response(request.app["world"].clock.document())


@admin.get("/_sandbox/faults")
async def get_faults(request: web.Request) -> web.Response:
    """The active fault rules and replication delays."""
    world = request.app["world"]
    return web.json_response({"rules": [r.to_json() for r in world.faults],
                              "replicationDelay": world.replication_delay})


@admin.put("/_sandbox/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Replace fault rules and replication delays: {"rules": [...], "replicationDelay": {kind: seconds}}."""
    world = request.app["world"]
    body = await request.json()
    try:
        rules = [FaultRule.from_json(r) for r in body.get("rules", [])]
    except (ValueError, TypeError) as exc:
        return _json_error(400, f"rules: {exc}")
    delay = body.get("replicationDelay", {})
    if not isinstance(delay, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in delay.values()):
        return _json_error(400, "replicationDelay: an object of kind -> seconds >= 0")
    world.faults = rules
    world.replication_delay = {k: float(v) for k, v in delay.items()}
    return await get_faults(request)


@admin.get("/_sandbox/requests")
async def get_requests(request: web.Request) -> web.Response:
    """Requests served so far (origin, method, path, status), optionally from index `since`."""
    world = request.app["world"]
    since = int(request.query.get("since", "0"))
    records = world.requests[since:]
    return web.json_response({"next": len(world.requests),
                              "requests": [r.__dict__ for r in records]})


def _tenant_or_404(request: web.Request):
    tenant = request.app["world"].tenant(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound(text=f"no tenant {request.match_info['tenant']}")
    return tenant


@admin.get("/_sandbox/tenants")
async def list_tenants(request: web.Request) -> web.Response:
    """The tenants and their seeded identities."""
    return web.json_response(describe_tenants(request.app["world"]))


@admin.get("/_sandbox/tenants/{tenant}")
async def tenant_state(request: web.Request) -> web.Response:
    """Counts and objects of one tenant (tests assert what exists)."""
    tenant = _tenant_or_404(request)

    def public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def strip(app: dict) -> dict:
        app = public(app)
        app["keyCredentials"] = [public(k) for k in app.get("keyCredentials", [])]
        return app

    return web.json_response({
        "tenantId": tenant.id, "counts": tenant.counts(),
        "applications": [strip(a) for a in tenant.applications.values()],
        "servicePrincipals": [public(s) for s in tenant.service_principals.values()],
        "appRoleAssignments": list(tenant.app_role_assignments.values()),
        "roleAssignments": list(tenant.role_assignments.values()),
        "owners": {k: sorted(v) for k, v in tenant.owners.items()},
    })


@admin.get("/_sandbox/tenants/{tenant}/mail")
async def tenant_mail(request: web.Request) -> web.Response:
    """sendMail requests recorded in this tenant."""
    return web.json_response({"value": _tenant_or_404(request).mail})


@admin.put("/_sandbox/tenants/{tenant}/grants")
async def put_grants(request: web.Request) -> web.Response:
    """Set the app roles a principal holds on a resource:
    {"principal": "provisioner"|"managedIdentity"|<appId>, "resourceAppId": <appId>, "roles": [values]}."""
    world: World = request.app["world"]
    tenant = _tenant_or_404(request)
    body = await request.json()
    principal_ref = body.get("principal", "provisioner")
    if principal_ref in ("provisioner", "managedIdentity"):
        app_id = tenant.seeded[principal_ref]["clientId"]
    else:
        app_id = principal_ref
    principal = tenant.service_principal_by_app_id(app_id)
    resource = tenant.service_principal_by_app_id(body.get("resourceAppId", "00000003-0000-0000-c000-000000000000"))
    if principal is None or resource is None:
        return _json_error(404, "principal or resourceAppId has no service principal in this tenant")
    roles = body.get("roles")
    if not isinstance(roles, list):
        return _json_error(400, "roles: a list of app-role values is required")
    try:
        granted = world.set_roles(tenant, principal["id"], resource["id"], roles)
    except ValueError as exc:
        return _json_error(400, f"roles: {exc}")
    return web.json_response({"principalId": principal["id"], "resourceId": resource["id"], "roles": granted})


@admin.put("/_sandbox/consent")
async def put_consent(request: web.Request) -> web.Response:
    """How the simulated administrator answers admin-consent prompts: {"decision": "accept"|"decline"}."""
    body = await request.json()
    if body.get("decision") not in ("accept", "decline"):
        return _json_error(400, "decision: 'accept' or 'decline'")
    request.app["consent"]["decision"] = body["decision"]
    return web.json_response(request.app["consent"])


def describe_tenants(world: World) -> list[dict]:
    """Tenants with their seeded identities, as printed at start and written to endpoints.json."""
    return [{"tenantId": t.id, "domain": t.domain, "displayName": t.display_name,
             "home": t.id == world.home_tenant_id, **t.seeded} for t in world.tenants.values()]


# -- composition ---------------------------------------------------------------------------------------

class SimulatorServer:
    """Builds the world and serves every origin on the current event loop."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.world = World(Clock())
        self.runners: list[web.AppRunner] = []
        self.urls: dict[str, str] = {}
        self.consent = {"decision": "accept"}

    async def start(self) -> dict:
        """Seed the world, bind every origin, and return the description printed at start."""
        from . import graph, keyvault  # aiohttp route modules: imported when serving, not on import

        state_dir = self.config.state_dir or Path(".sandbox")
        tls = create_tls(state_dir)
        world = self.world

        apps: dict[str, web.Application] = {}
        for origin in ("login", "graph", "vault", "identity"):
            app = web.Application(middlewares=_middlewares(origin), client_max_size=4 * 1024 * 1024)
            app["world"] = world
            app["urls"] = self.urls
            app["consent"] = self.consent
            apps[origin] = app
        apps["login"].add_routes(admin)
        apps["login"].add_routes(keyvault.admin_routes)
        apps["login"].add_routes(entra.routes)
        apps["identity"].add_routes(entra.identity_routes)
        graph.setup(apps["graph"])
        keyvault.setup(apps["vault"])

        for origin, app in apps.items():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            ssl_context = None if origin == "identity" else tls.server_context
            site = web.TCPSite(runner, self.config.host, self.config.ports.get(origin, 0), ssl_context=ssl_context)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # the bound port when 0 was asked
            scheme = "http" if origin == "identity" else "https"
            self.urls[origin] = f"{scheme}://{self.config.host}:{port}"
            self.runners.append(runner)
        issuer = TokenIssuer(world.clock, self.urls["login"])
        for app in apps.values():
            app["issuer"] = issuer
        # Seeded after binding because the consent app's federated credential names the login URL; nothing
        # is served before the description line is printed.
        self._seed()
        return self.describe(tls.ca_bundle)

    def _seed(self) -> None:
        world = self.world
        for i in range(1, self.config.tenants + 1):
            tenant = world.add_tenant(i, self.config.provisioner_roles)
            if world.home_tenant_id is None:
                world.home_tenant_id = tenant.id
                world.managed_identity_default = (tenant.id, tenant.seeded["managedIdentity"]["clientId"])
                # The product's multi-tenant app that onboarding links send customers to consent to.
                # Loopback redirect URIs match on any port, so one registration serves any host port.
                world.add_consent_app(tenant, self.config.provisioner_roles,
                                      "http://127.0.0.1/api/onboard/callback", self.urls["login"])
        world.faults = [FaultRule.from_json(r) for r in self.config.faults]
        world.replication_delay = dict(self.config.replication_delay)

    def describe(self, ca_bundle: Path) -> dict:
        """The one-line JSON description of a running simulator."""
        return {
            "loginUrl": self.urls["login"],
            "authorityHost": self.urls["login"],
            "graphUrl": self.urls["graph"] + "/v1.0",
            "vaultUrl": self.urls["vault"] + "/",
            "identityEndpoint": self.urls["identity"] + "/msi/token",
            "identityHeader": self.world.identity_header,
            "caBundle": str(ca_bundle.resolve()),
            "clockUrl": self.urls["login"] + "/_sandbox/clock",
            "adminUrl": self.urls["login"] + "/_sandbox",
            "homeTenantId": self.world.home_tenant_id,
            "defaultProvisionerRoles": list(self.config.provisioner_roles),
            "tenants": describe_tenants(self.world),
        }

    async def stop(self) -> None:
        """Close every origin."""
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()
