"""Composes the simulator: one aiohttp application per origin, TLS, faults, and the admin API.

Origins (each its own loopback port):
  login     https  Entra ID (discovery, token, admin consent) and the admin routes under /_sandbox
  graph     https  Microsoft Graph, base path /v1.0
  vault     https  Key Vault
  identity  http   the App Service managed-identity endpoint (plain HTTP, as inside App Service)
  exchange  https  Exchange Online's admin API (POST /adminapi/beta/{tenant}/InvokeCommand), for
                   https://outlook.office365.com
  tables    http   Table Storage for the product's state: a proxy in front of Azurite (only with
                   --tables-upstream); fault rules reach it, "*" rules do not
  taskhub   http   the same for the sandbox host's task hub (its AzureWebJobsStorage)

Fault rules (PUT/POST /_sandbox/faults) add latency, errors in each service's own shape, or hold points; a rule may
name a `tenant` (the tenant named in the path, else the bearer token's `tid`: Graph throttles per app per tenant):
a hold rule parks matching requests until POST /_sandbox/holds/{name}/release (tests wait for it with
POST /_sandbox/holds/{name}/wait), so a test can stop the product at an exact call, not at a time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from sandbox.clock import Clock
from sandbox.faketime import CLOCK_FILE

from . import entra, exchange, storage_proxy
from .errors import ServiceError, error_response
from .tls import create_tls
from .tokens import TokenIssuer
from .world import CLOUD_ORIGINS, REPLICATION_KINDS, STORAGE_ORIGINS, FaultRule, RequestRecord, World

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
    ports: dict[str, int] = field(default_factory=lambda: {"login": 0, "graph": 0, "vault": 0, "identity": 0,
                                                           "exchange": 0, "tables": 0, "taskhub": 0})
    state_dir: Path | None = None
    provisioner_roles: list[str] = field(default_factory=lambda: list(DEFAULT_PROVISIONER_ROLES))
    faults: list[dict] = field(default_factory=list)
    replication_delay: dict[str, float] = field(default_factory=dict)
    # Azurite's Table endpoint (URL) or connection string: when set, the tables/taskhub proxies are served.
    tables_upstream: str | None = None
    # Key Vault: how many polls of a certificate creation answer inProgress before it completes (0 = the first).
    vault_creation_polls: int = 0


def _tenant_of_path(path: str) -> str | None:
    # Entra, Graph and Key Vault name the tenant first; Exchange's admin API after /adminapi/beta.
    match = re.match(r"^/(?:adminapi/beta/)?([0-9a-fA-F-]{36})/", path, re.IGNORECASE)
    return match.group(1) if match else None


def _middlewares(origin: str):
    @web.middleware
    async def observe(request: web.Request, handler):
        """Record the request, apply faults, and render ServiceErrors in the origin's shape."""
        world: World = request.app["world"]
        path = request.path_qs
        started = time.time()
        *caller, token_tenant = await _caller(request)
        tenant = _tenant_of_path(request.path) or token_tenant
        response: web.StreamResponse
        try:
            if not request.path.startswith("/_sandbox"):
                await _apply_faults(world, origin, request, tenant)
            response = await handler(request)
        except ServiceError as exc:
            if origin in STORAGE_ORIGINS:
                response = storage_proxy.storage_error_response(request, exc.status, exc.code, exc.message,
                                                                exc.headers)
            elif origin == "exchange":
                response = exchange.error_response(exc)
            else:
                response = error_response(origin, exc)
        except web.HTTPException as exc:
            response = exc
        if origin == "graph" and request.method not in ("GET", "HEAD"):
            world.note_key_credentials()  # when each key was added: the "keyCredential" replication delay
            world.note_role_assignments()  # and each directory role assignment: the "roleAssignment" delay
        if not request.path.startswith("/_sandbox"):
            world.requests.append(RequestRecord(origin, request.method, path, response.status, tenant, started,
                                                time.time(), *caller, response.headers.get("Retry-After")))
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return [observe]


async def _caller(request: web.Request) -> tuple[str | None, str | None, str | None, str | None]:
    """(grant_type of a token request, "app" or "delegated" for a bearer token, the token's app id, its tenant `tid`)
    for the request log and tenant-scoped faults: tests check that the product only ever calls app-only, benchmarks
    count concurrent calls per app and tenant. The token's claims are read unverified: the services verify it."""
    grant_type = token_type = app_id = tenant = None
    if request.method == "POST" and request.path.endswith("/token") and request.content_type == \
            "application/x-www-form-urlencoded":
        form = await request.post()  # aiohttp caches the form for the handler
        grant_type = form.get("grant_type")
        app_id = form.get("client_id")  # a token request names its app in the form, not in a bearer token
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            payload = header[7:].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            token_type = "delegated" if "scp" in claims else "app"
            app_id = claims.get("appid") or claims.get("azp")
            tenant = claims.get("tid")
        except (IndexError, ValueError, AttributeError):
            token_type = "unreadable"
    return (str(grant_type) if grant_type is not None else None), token_type, \
        (str(app_id) if app_id is not None else None), (str(tenant) if tenant is not None else None)


async def _apply_faults(world: World, origin: str, request: web.Request, tenant: str | None = None) -> None:
    now = time.monotonic()
    for rule in world.faults:
        if not rule.matches(origin, request.method, request.path_qs, tenant):
            continue
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.hold is not None:
            if rule.skipped < rule.skip:
                rule.skipped += 1
                continue
            if rule.fired >= rule.count:
                continue
            rule.fired += 1
            status = await world.holds.park(rule.hold, origin, request.method, request.path_qs)
            if status is not None:
                raise _fault_error(origin, status, None)
            continue
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
        raise _fault_error(origin, rule.status, rule.retry_after)


def _fault_error(origin: str, status: int, retry_after: float | None) -> ServiceError:
    """The error a fault rule (or a hold released with a status) answers, in the origin's terms."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    if origin in STORAGE_ORIGINS:
        # Azure Storage's common codes and messages (storage_proxy.STORAGE_ERRORS); rendered as the Table
        # service renders errors by the middleware.
        code, message = storage_proxy.STORAGE_ERRORS.get(status, (None, None))
        return ServiceError(status, code or "", message or "", headers=headers)
    code = {429: "TooManyRequests",
            503: "ServiceUnavailable", 500: "InternalServerError", 504: "GatewayTimeout"}.get(status, "UnknownError")
    message = {429: "Too many requests. Please try again later." if origin == "graph"
               else "Rate limit is exceeded. Try again in a while.",
               503: "Service is temporarily unavailable. Please try again later."}.get(
        status, "An internal server error occurred (sandbox fault injection).")
    return ServiceError(status, code, message, headers=headers)


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


def _parse_rules(body) -> list[FaultRule]:
    if not isinstance(body, dict) or not isinstance(body.get("rules", []), list):
        raise ValueError("an object {\"rules\": [...]} is required")
    return [FaultRule.from_json(r) for r in body.get("rules", [])]


def _install(world: World, rules: list[FaultRule]) -> None:
    """Make `rules` the active rules. A hold point is its name: a new rule naming a hold point that an old
    rule names keeps what it holds and how many it has held; hold points no rule names any more release
    their requests (they proceed)."""
    previous = {r.hold: r for r in world.faults if r.hold is not None}
    for rule in rules:
        if rule.hold in previous:
            rule.fired, rule.skipped = previous[rule.hold].fired, previous[rule.hold].skipped
    world.faults = rules
    world.holds.forget({r.hold for r in rules if r.hold is not None})


@admin.put("/_sandbox/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Replace fault rules and replication delays: {"rules": [...], "replicationDelay": {kind: seconds}}.

    Kinds: "application" and "servicePrincipal" (a new object cannot be referenced by Graph writes for that
    long; a new service principal cannot sign in either: AADSTS7000229 in its app's home tenant, AADSTS700016
    elsewhere), "keyCredential" (an assertion signed by a key added that recently gets AADSTS700027),
    "appRoleAssignment" (tokens' `roles` lack a grant that recent) and "roleAssignment" (a directory role
    assigned that recently is not in a token's role information: Exchange's admin API answers 403). Without a
    delay nothing lags."""
    world = request.app["world"]
    body = await request.json()
    try:
        rules = _parse_rules(body)
    except (ValueError, TypeError) as exc:
        return _json_error(400, f"rules: {exc}")
    delay = body.get("replicationDelay", {})
    if not isinstance(delay, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in delay.values()):
        return _json_error(400, "replicationDelay: an object of kind -> seconds >= 0")
    unknown = sorted(set(delay) - set(REPLICATION_KINDS))
    if unknown:
        return _json_error(400, f"replicationDelay: unknown kind(s) {unknown}; known: {list(REPLICATION_KINDS)}")
    _install(world, rules)
    world.replication_delay = {k: float(v) for k, v in delay.items()}
    return await get_faults(request)


@admin.post("/_sandbox/faults")
async def add_faults(request: web.Request) -> web.Response:
    """Add fault rules after the active ones: {"rules": [...]} (replication delays unchanged)."""
    world = request.app["world"]
    try:
        rules = _parse_rules(await request.json())
    except (ValueError, TypeError) as exc:
        return _json_error(400, f"rules: {exc}")
    names = [r.hold for r in world.faults + rules if r.hold is not None]
    if len(names) != len(set(names)):
        return _json_error(409, "rules: a hold name is already in use; release it or PUT the rules")
    _install(world, world.faults + rules)
    return await get_faults(request)


# -- hold points ---------------------------------------------------------------------------------------

def _hold_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not any(r.hold == name for r in request.app["world"].faults):
        raise web.HTTPNotFound(text=json.dumps({"error": f"no hold rule named {name!r}"}),
                               content_type="application/json")
    return name


async def _optional_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "a JSON object is required"}),
                                 content_type="application/json")
    return body


@admin.get("/_sandbox/holds")
async def get_holds(request: web.Request) -> web.Response:
    """Every hold point: its rule, the requests parked there now, and how many it has held."""
    world: World = request.app["world"]
    return web.json_response({rule.hold: {"rule": rule.to_json(), "total": rule.fired,
                                          "held": [h.to_json() for h in world.holds.parked.get(rule.hold, [])]}
                              for rule in world.faults if rule.hold is not None})


@admin.post("/_sandbox/holds/{name}/wait")
async def wait_held(request: web.Request) -> web.Response:
    """Long poll: {"timeout": seconds (default 30, at most 300), "count": n (default 1)}. Answers 200 with the
    parked requests once at least `count` are parked at the hold point, 408 when the timeout passes first."""
    name = _hold_name(request)
    body = await _optional_json(request)
    timeout, count = body.get("timeout", 30), body.get("count", 1)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 <= timeout <= 300:
        return _json_error(400, "timeout: seconds between 0 and 300")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return _json_error(400, "count: a positive integer")
    held = await request.app["world"].holds.wait(name, count, float(timeout))
    if len(held) < count:
        return web.json_response({"error": f"fewer than {count} request(s) held at {name!r} after {timeout} s",
                                  "name": name, "held": [h.to_json() for h in held]}, status=408)
    return web.json_response({"name": name, "held": [h.to_json() for h in held]})


@admin.post("/_sandbox/holds/{name}/release")
async def release_held(request: web.Request) -> web.Response:
    """Let the requests parked at a hold point go on: {"status": n} makes them fail with that error status
    (in their service's shape) instead. The rule stays (it holds no more once its count is used up)."""
    name = _hold_name(request)
    body = await _optional_json(request)
    status = body.get("status")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599):
        return _json_error(400, "status: an HTTP error status (400-599)")
    released = request.app["world"].holds.release(name, status)
    return web.json_response({"name": name, "released": released})


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
    """How the simulated administrator answers admin-consent prompts: {"decision": "accept"|"decline",
    "tenant": <tenant id or domain>|null}. `tenant` is the tenant the administrator signs in to when the
    consent URL names none (`organizations`); each field is optional and kept until changed."""
    body = await request.json()
    if not isinstance(body, dict) or not set(body) <= {"decision", "tenant"} or not body:
        return _json_error(400, "an object with 'decision' and/or 'tenant' is required")
    if "decision" in body and body["decision"] not in ("accept", "decline"):
        return _json_error(400, "decision: 'accept' or 'decline'")
    if "tenant" in body and body["tenant"] is not None:
        tenant = request.app["world"].tenant(str(body["tenant"]))
        if tenant is None:
            return _json_error(400, f"tenant: no tenant {body['tenant']!r}")
        body = {**body, "tenant": tenant.id}
    request.app["consent"].update(body)
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
        # The clock file: processes under libfaketime (sandbox/faketime.py) follow this clock as their own.
        self.clock_file = (config.state_dir or Path(".sandbox")) / CLOCK_FILE
        self.clock_file.parent.mkdir(parents=True, exist_ok=True)
        self.world = World(Clock(file=self.clock_file))
        self.runners: list[web.AppRunner] = []
        self.urls: dict[str, str] = {}
        self.consent = {"decision": "accept"}
        self.upstream: storage_proxy.Upstream | None = None

    async def start(self) -> dict:
        """Seed the world, bind every origin, and return the description printed at start."""
        from . import graph, graph_policies, keyvault  # aiohttp route modules: imported when serving, not on import

        state_dir = self.config.state_dir or Path(".sandbox")
        tls = create_tls(state_dir)
        world = self.world

        apps: dict[str, web.Application] = {}
        upstream = storage_proxy.Upstream(self.config.tables_upstream) if self.config.tables_upstream else None
        origins = CLOUD_ORIGINS + (STORAGE_ORIGINS if upstream else ())
        for origin in origins:
            # Table Storage takes batches up to 4 MiB (plus multipart framing): the proxies allow a little more.
            limit = 8 * 1024 * 1024 if origin in STORAGE_ORIGINS else 4 * 1024 * 1024
            app = web.Application(middlewares=_middlewares(origin), client_max_size=limit)
            app["world"] = world
            app["urls"] = self.urls
            app["consent"] = self.consent
            apps[origin] = app
        apps["login"].add_routes(admin)
        apps["login"].add_routes(keyvault.admin_routes)
        apps["login"].add_routes(graph_policies.admin_routes)
        apps["login"].add_routes(entra.routes)
        apps["identity"].add_routes(entra.identity_routes)
        graph.setup(apps["graph"])
        keyvault.setup(apps["vault"])
        exchange.setup(apps["exchange"])
        keyvault.set_creation_polls(world, self.config.vault_creation_polls)
        self.upstream = upstream
        for origin in STORAGE_ORIGINS if upstream else ():
            storage_proxy.setup(apps[origin], upstream)

        plain = ("identity", *STORAGE_ORIGINS)  # the MSI endpoint and Azurite speak plain HTTP
        for origin, app in apps.items():
            # A held request must not hold up the simulator's stop: holds are released first (stop()).
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
            await runner.setup()
            ssl_context = None if origin in plain else tls.server_context
            site = web.TCPSite(runner, self.config.host, self.config.ports.get(origin, 0), ssl_context=ssl_context)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # the bound port when 0 was asked
            scheme = "http" if origin in plain else "https"
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
                # The manual method's read-only verifier, federated with the same managed identity. Its admin
                # consent returns to the same callback (UNCONFIRMED which route the product uses for it).
                world.add_verifier_app(tenant, "http://127.0.0.1/api/onboard/callback", self.urls["login"])
        world.faults = [FaultRule.from_json(r) for r in self.config.faults]
        world.replication_delay = dict(self.config.replication_delay)

    def describe(self, ca_bundle: Path) -> dict:
        """The one-line JSON description of a running simulator."""
        return {
            "loginUrl": self.urls["login"],
            "authorityHost": self.urls["login"],
            "graphUrl": self.urls["graph"] + "/v1.0",
            "vaultUrl": self.urls["vault"] + "/",
            # Exchange Online's admin API (stands for https://outlook.office365.com; token scope unchanged:
            # https://outlook.office365.com/.default).
            "exchangeUrl": self.urls["exchange"],
            "identityEndpoint": self.urls["identity"] + "/msi/token",
            "identityHeader": self.world.identity_header,
            "caBundle": str(ca_bundle.resolve()),
            "clockUrl": self.urls["login"] + "/_sandbox/clock",
            "clockFile": str(self.clock_file.resolve()),
            "adminUrl": self.urls["login"] + "/_sandbox",
            "homeTenantId": self.world.home_tenant_id,
            "defaultProvisionerRoles": list(self.config.provisioner_roles),
            "tenants": describe_tenants(self.world),
            **self._describe_storage(),
        }

    def _describe_storage(self) -> dict:
        if self.upstream is None:
            return {}
        tables = f"{self.urls['tables']}{self.upstream.account_path}"
        taskhub = f"{self.urls['taskhub']}{self.upstream.account_path}"
        return {"tablesUpstream": self.upstream.endpoint,
                "tablesUrl": tables, "tablesConnectionString": self.upstream.connection_string(tables),
                "taskhubUrl": taskhub, "taskhubConnectionString": self.upstream.connection_string(taskhub)}

    async def stop(self) -> None:
        """Close every origin (requests still held are let go first)."""
        self.world.holds.forget(set())
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()
