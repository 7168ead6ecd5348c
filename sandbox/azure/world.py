"""In-memory state of the simulated Microsoft cloud: tenants, directory objects, the vault, faults.

Directory objects are stored as the JSON Graph returns (camelCase dicts). What Graph never returns
(client secrets, creation times used for replication delay) lives beside them, not inside them.
Everything runs on one asyncio loop, so handlers need no locks as long as they do not await between
a read and the write that depends on it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sandbox.clock import Clock, isoformat_z

from . import microsoft as ms


def new_id() -> str:
    """A directory object id (GUID)."""
    return str(uuid.uuid4())


@dataclass
class Tenant:
    """One Entra ID tenant and its directory."""

    id: str
    domain: str
    display_name: str
    applications: dict[str, dict] = field(default_factory=dict)        # object id -> application
    service_principals: dict[str, dict] = field(default_factory=dict)  # object id -> servicePrincipal
    app_role_assignments: dict[str, dict] = field(default_factory=dict)  # id -> appRoleAssignment
    role_assignments: dict[str, dict] = field(default_factory=dict)    # id -> unifiedRoleAssignment
    role_definitions: dict[str, dict] = field(default_factory=dict)    # id -> unifiedRoleDefinition
    owners: dict[str, set[str]] = field(default_factory=dict)          # application object id -> owner ids
    client_secrets: dict[str, list[dict]] = field(default_factory=dict)  # application object id -> secrets
    created_at: dict[str, float] = field(default_factory=dict)         # object id -> sandbox epoch
    deleted_items: dict[str, dict] = field(default_factory=dict)       # object id -> soft-deleted (graph_deleted)
    mail: list[dict] = field(default_factory=list)                     # recorded sendMail requests
    organization: dict = field(default_factory=dict)
    seeded: dict = field(default_factory=dict)                         # provisioner / managed identity ids
    app_management_policy: dict | None = None  # tenantAppManagementPolicy from /_sandbox; None = Graph's default

    # -- lookups ---------------------------------------------------------------------------------
    def application_by_app_id(self, app_id: str) -> dict | None:
        """The application object registered in this tenant with this appId."""
        return next((a for a in self.applications.values() if a["appId"] == app_id), None)

    def application_by_unique_name(self, unique_name: str) -> dict | None:
        """The application with this uniqueName (compared case-insensitively, as Graph does)."""
        wanted = unique_name.lower()
        return next((a for a in self.applications.values()
                     if (a.get("uniqueName") or "").lower() == wanted), None)

    def service_principal_by_app_id(self, app_id: str) -> dict | None:
        """The service principal of `app_id` in this tenant."""
        return next((s for s in self.service_principals.values() if s["appId"] == app_id), None)

    def assignments_of(self, principal_id: str) -> list[dict]:
        """App role assignments granted to a principal."""
        return [a for a in self.app_role_assignments.values() if a["principalId"] == principal_id]

    def roles_for(self, principal_id: str, resource_sp_id: str) -> list[str]:
        """The app-role values `principal_id` holds on the resource service principal (token `roles`)."""
        resource = self.service_principals.get(resource_sp_id)
        if resource is None:
            return []
        by_id = {r["id"]: r["value"] for r in resource.get("appRoles", [])}
        return sorted({by_id[a["appRoleId"]] for a in self.assignments_of(principal_id)
                       if a["resourceId"] == resource_sp_id and a["appRoleId"] in by_id})

    def counts(self) -> dict:
        """How many objects of each kind exist (tests assert 'nothing new was created')."""
        return {
            "applications": len(self.applications),
            "servicePrincipals": len(self.service_principals),
            "appRoleAssignments": len(self.app_role_assignments),
            "roleAssignments": len(self.role_assignments),
            "mail": len(self.mail),
        }


# Origins of the simulator process. The Table Storage proxies (in front of Azurite) are left out of
# "origin": "*" rules: those predate them and mean "every Microsoft cloud endpoint" (Exchange Online's admin
# API, `exchange`, is one); a rule reaches Table Storage only by naming `tables` (the product's state) or
# `taskhub` (the sandbox host's task hub).
CLOUD_ORIGINS = ("login", "graph", "vault", "identity", "exchange")
STORAGE_ORIGINS = ("tables", "taskhub")
ORIGINS = CLOUD_ORIGINS + STORAGE_ORIGINS
# Object kinds that replicationDelay can name (World.replication_delay).
REPLICATION_KINDS = ("application", "servicePrincipal", "keyCredential", "appRoleAssignment", "roleAssignment")


@dataclass
class FaultRule:
    """One fault: latency and/or an error status on matching requests, or a hold point.

    A hold rule (`hold`: a name) parks the first `count` (default 1) matching requests before they are
    handled, until the admin API releases that name (they then proceed, or fail with a given status). With
    `skip`, that many matching requests pass first (a call that happens once before the one to stop at)."""

    origin: str = "*"           # login | graph | vault | identity | exchange | tables | taskhub | * (cloud ones)
    method: str = "*"
    path: str = ""              # regular expression searched in the path (with query)
    # the tenant the request is for (RequestRecord.tenant_id: named in the path, else the bearer token's `tid`):
    # Graph throttles per app per tenant, so a fault can be one tenant's; None = any tenant
    tenant: str | None = None
    latency_ms: float = 0.0
    status: int | None = None   # 429, 500, 503 …
    count: int | None = None    # fire the error (or hold) this many times; None = every time (or per rate)
    rate_per_second: float | None = None  # throttle only requests above this rate
    retry_after: float | None = None
    hold: str | None = None     # park matching requests at this hold point until released
    skip: int = 0               # hold rules: matching requests let through before the first is parked
    fired: int = 0
    skipped: int = 0
    window: list[float] = field(default_factory=list)

    def matches(self, origin: str, method: str, path_qs: str, tenant: str | None = None) -> bool:
        """Whether a request to `origin` (for `tenant`, when known) is subject to this rule."""
        if self.origin != origin and not (self.origin == "*" and origin in CLOUD_ORIGINS):
            return False
        if self.method not in ("*", method):
            return False
        if self.tenant is not None and (tenant or "").lower() != self.tenant.lower():
            return False
        return not self.path or re.search(self.path, path_qs) is not None

    def to_json(self) -> dict:
        """The rule as the admin API shows it."""
        return {"origin": self.origin, "method": self.method, "path": self.path, "tenant": self.tenant,
                "latencyMs": self.latency_ms,
                "status": self.status, "count": self.count, "ratePerSecond": self.rate_per_second,
                "retryAfter": self.retry_after, "hold": self.hold, "skip": self.skip, "fired": self.fired}

    @classmethod
    def from_json(cls, data: dict) -> FaultRule:
        """Parse a rule from the admin API (camelCase keys)."""
        known = {"origin", "method", "path", "tenant", "latencyMs", "status", "count", "ratePerSecond", "retryAfter",
                 "hold", "skip"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        rule = cls(origin=data.get("origin", "*"), method=data.get("method", "*").upper(),
                   path=data.get("path", ""), tenant=data.get("tenant"), latency_ms=float(data.get("latencyMs", 0)),
                   status=data.get("status"), count=data.get("count"),
                   rate_per_second=data.get("ratePerSecond"), retry_after=data.get("retryAfter"),
                   hold=data.get("hold"), skip=data.get("skip", 0))
        if rule.origin not in (*ORIGINS, "*"):
            raise ValueError(f"origin must be one of {[*ORIGINS, '*']}")
        if rule.tenant is not None and not (isinstance(rule.tenant, str) and re.fullmatch(r"[0-9a-fA-F-]{36}",
                                                                                          rule.tenant)):
            raise ValueError("tenant: a tenant id (GUID)")
        if rule.status is not None and not 400 <= int(rule.status) <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if rule.count is not None and (not isinstance(rule.count, int) or rule.count < 1):
            raise ValueError("count must be a positive integer")
        try:
            re.compile(rule.path)
        except re.error as exc:
            raise ValueError(f"path: not a regular expression: {exc}") from None
        if rule.hold is not None:
            if not isinstance(rule.hold, str) or not re.fullmatch(r"[\w.-]{1,64}", rule.hold):
                raise ValueError("hold: a name of 1-64 letters, digits, '_', '.' or '-'")
            if rule.status is not None or rule.rate_per_second is not None or rule.retry_after is not None:
                raise ValueError("hold: a hold rule takes no status, ratePerSecond or retryAfter "
                                 "(the release says how held requests end)")
            if rule.count is None:
                rule.count = 1
        if not isinstance(rule.skip, int) or rule.skip < 0 or (rule.skip and rule.hold is None):
            raise ValueError("skip: a whole number >= 0, for hold rules only")
        return rule


@dataclass
class HeldRequest:
    """A request parked at a hold point."""

    origin: str
    method: str
    path: str
    since: float                       # wall-clock epoch seconds (a diagnostic, not the sandbox clock)
    outcome: asyncio.Future            # set to None (proceed) or an error status by the release

    def to_json(self) -> dict:
        """As the admin API shows it."""
        return {"origin": self.origin, "method": self.method, "path": self.path, "since": self.since}


class HoldPoints:
    """Requests parked by hold rules, by hold name; all on the simulator's one event loop."""

    def __init__(self) -> None:
        self.parked: dict[str, list[HeldRequest]] = {}
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        async with self._condition():
            self._condition().notify_all()

    async def park(self, name: str, origin: str, method: str, path: str) -> int | None:
        """Park a request until its hold point is released; the status to fail with, or None to proceed."""
        held = HeldRequest(origin, method, path, time.time(), asyncio.get_running_loop().create_future())
        self.parked.setdefault(name, []).append(held)
        await self._notify()
        try:
            # shield: a client that goes away (a killed host) must not make the release skip this request
            return await asyncio.shield(held.outcome)
        finally:
            waiting = self.parked.get(name, [])
            if held in waiting:
                waiting.remove(held)

    async def wait(self, name: str, count: int, seconds: float) -> list[HeldRequest]:
        """Wait until at least `count` requests are parked at `name` (at most `seconds`); those parked then."""
        condition = self._condition()
        async with condition:
            try:
                async with asyncio.timeout(seconds):
                    await condition.wait_for(lambda: len(self.parked.get(name, [])) >= count)
            except TimeoutError:
                pass
            return list(self.parked.get(name, []))

    def release(self, name: str, status: int | None = None) -> int:
        """Let every request parked at `name` proceed (or fail with `status`); how many were released."""
        waiting = self.parked.pop(name, [])
        for held in waiting:
            if not held.outcome.done():
                held.outcome.set_result(status)
        return len(waiting)

    def forget(self, keep: set[str]) -> None:
        """Release and forget every hold point whose name is not in `keep` (its rule was removed)."""
        for name in [n for n in self.parked if n not in keep]:
            self.release(name)


@dataclass
class RequestRecord:
    """One request the simulator served (for counting calls in benchmarks and tests)."""

    origin: str
    method: str
    path: str
    status: int
    tenant_id: str | None = None  # named in the path (Entra, Exchange), else the bearer token's `tid` (Graph, vault)
    started: float = 0.0    # wall-clock epoch seconds (a measurement aid, not the sandbox clock)
    finished: float = 0.0
    # Who asked: the grant_type of a token request, and whether a bearer token was app-only ("app": no `scp`
    # claim, Entra's app-only tokens carry `roles` only) or for a user ("delegated": `scp`).
    grant_type: str | None = None
    token_type: str | None = None
    # The calling app: the bearer token's `appid` (v1 tokens) or `azp` (v2) claim, read unverified like
    # token_type. Graph throttles per app per tenant, so the fleet benchmark counts concurrency by (app, tenant).
    app_id: str | None = None
    retry_after: str | None = None  # the answer's Retry-After header (a 429's or 503's), as sent


class World:
    """Everything the simulator knows; one instance per simulator process."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.tenants: dict[str, Tenant] = {}
        self.home_tenant_id: str | None = None
        self.faults: list[FaultRule] = []
        self.holds = HoldPoints()
        # Replication delay in sandbox seconds, per object kind: "application", "servicePrincipal" (a new object
        # cannot be referenced by other writes, nor sign in at the token endpoint, until the delay has passed),
        # "keyCredential" (the token endpoint does not know a new certificate yet) and "appRoleAssignment" (a new
        # grant is not in tokens' `roles` yet). Facts: microsoft.REPLICATION_DELAY_FACTS.
        self.replication_delay: dict[str, float] = {}
        self.requests: list[RequestRecord] = []
        self.vault: dict = {}          # owned by sandbox.azure.keyvault
        self.identity_header = secrets.token_urlsafe(24)
        self.managed_identity_default: tuple[str, str] | None = None  # (tenant id, appId)

    # -- time -------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Sandbox time (aware UTC)."""
        return self.clock.now()

    def now_iso(self) -> str:
        """Sandbox time as Graph formats it (ISO-8601 with Z)."""
        return isoformat_z(self.clock.now().replace(microsecond=0))

    # -- tenants ----------------------------------------------------------------------------------
    def tenant(self, tenant_ref: str) -> Tenant | None:
        """Find a tenant by id or verified domain (both appear in authority URLs)."""
        key = tenant_ref.lower()
        if key in self.tenants:
            return self.tenants[key]
        return next((t for t in self.tenants.values() if t.domain.lower() == key), None)

    def home_application(self, app_id: str) -> tuple[Tenant, dict] | None:
        """The application object behind `app_id`, wherever it is registered (its home tenant)."""
        for tenant in self.tenants.values():
            app = tenant.application_by_app_id(app_id)
            if app is not None:
                return tenant, app
        return None

    # -- replication ------------------------------------------------------------------------------
    def record_created(self, tenant: Tenant, object_id: str) -> None:
        """Remember when an object was created (sandbox clock), for replication delay."""
        tenant.created_at[object_id] = self.clock.epoch()

    def is_replicated(self, tenant: Tenant, object_id: str, kind: str) -> bool:
        """Whether a new object of `kind` is visible to reference updates yet."""
        delay = self.replication_delay.get(kind, 0.0)
        created = tenant.created_at.get(object_id)
        return delay <= 0 or created is None or self.clock.epoch() >= created + delay

    @staticmethod
    def key_credential_ref(app: dict, credential: dict) -> str:
        """The created_at key of one keyCredential of an application (keyIds are unique per application only)."""
        return f"{app['id']}/keyCredentials/{str(credential.get('keyId', '')).lower()}"

    def note_key_credentials(self) -> None:
        """Remember when each keyCredential first appeared (sandbox clock), for the "keyCredential" delay.
        Called after every Graph write, so the time noted is the time of the write that added the key."""
        now = self.clock.epoch()
        for tenant in self.tenants.values():
            for app in tenant.applications.values():
                for credential in app.get("keyCredentials", []):
                    tenant.created_at.setdefault(self.key_credential_ref(app, credential), now)

    def note_role_assignments(self) -> None:
        """Remember when each directory role assignment first appeared (sandbox clock), for the "roleAssignment"
        delay; a removed assignment is forgotten, so one created again (Graph gives it the same id) lags again."""
        now = self.clock.epoch()
        for tenant in self.tenants.values():
            present = {f"roleAssignments/{assignment_id}" for assignment_id in tenant.role_assignments}
            for key in [k for k in tenant.created_at if k.startswith("roleAssignments/") and k not in present]:
                del tenant.created_at[key]
            for key in present:
                tenant.created_at.setdefault(key, now)

    def role_template_ids(self, tenant: Tenant, principal_id: str, at: float | None = None) -> set[str]:
        """Template ids of the directory roles `principal_id` holds tenant-wide, counting only assignments that had
        replicated by sandbox time `at` (default now): the role information of a token issued then."""
        at = self.clock.epoch() if at is None else at
        delay = self.replication_delay.get("roleAssignment", 0.0)
        held = set()
        for assignment_id, assignment in tenant.role_assignments.items():
            if assignment["principalId"] != principal_id or assignment.get("directoryScopeId") != "/":
                continue
            created = tenant.created_at.get(f"roleAssignments/{assignment_id}")
            if delay <= 0 or created is None or at >= created + delay:
                definition = tenant.role_definitions.get(assignment["roleDefinitionId"], {})
                held.add(definition.get("templateId", assignment["roleDefinitionId"]))
        return held

    def key_credential_replicated(self, tenant: Tenant, app: dict, credential: dict) -> bool:
        """Whether the token endpoint knows this keyCredential of `app` (registered in `tenant`) yet."""
        return self.is_replicated(tenant, self.key_credential_ref(app, credential), "keyCredential")

    def token_roles(self, tenant: Tenant, principal_id: str, resource_sp_id: str) -> list[str]:
        """The `roles` a token issued now carries: app roles whose assignment has replicated."""
        resource = tenant.service_principals.get(resource_sp_id)
        if resource is None:
            return []
        by_id = {r["id"]: r["value"] for r in resource.get("appRoles", [])}
        return sorted({by_id[a["appRoleId"]] for a in tenant.assignments_of(principal_id)
                       if a["resourceId"] == resource_sp_id and a["appRoleId"] in by_id
                       and self.is_replicated(tenant, a["id"], "appRoleAssignment")})

    # -- seeding ----------------------------------------------------------------------------------
    def add_tenant(self, index: int, default_roles: list[str]) -> Tenant:
        """Create a tenant with Microsoft's first-party service principals, role definitions, a
        provisioner app (client secret, `default_roles` on Microsoft Graph) and a managed identity."""
        tenant_id = new_id()
        tenant = Tenant(id=tenant_id, domain=f"tenant{index}.onmicrosoft.com", display_name=f"Sandbox Tenant {index}")
        tenant.organization = {
            "id": tenant_id, "displayName": tenant.display_name, "tenantType": "AAD",
            "verifiedDomains": [{"name": tenant.domain, "isDefault": True, "isInitial": True, "type": "Managed",
                                 "capabilities": "Email, OfficeCommunicationsOnline"}],
            "createdDateTime": self.now_iso(),
        }
        self.tenants[tenant_id] = tenant
        for seed in ms.FIRST_PARTY_SERVICE_PRINCIPALS.values():
            sp = self._service_principal(tenant, seed["appId"], seed["displayName"], "Application",
                                         app_owner_tenant=ms.MICROSOFT_TENANT_ID)
            sp["appRoles"] = [dict(role) for role in seed.get("appRoles", [])]
            sp["servicePrincipalNames"] = list(seed.get("servicePrincipalNames", []))
        for definition in ms.DIRECTORY_ROLE_DEFINITIONS.values():
            tenant.role_definitions[definition["id"]] = dict(definition)

        # The provisioner: an app registration with a client secret, whose Graph roles tests configure.
        app = self.new_application(tenant, {"displayName": "certauth provisioner (sandbox seed)",
                                            "signInAudience": "AzureADMyOrg"})
        secret = f"sbx~{secrets.token_urlsafe(30)}"
        tenant.client_secrets[app["id"]] = [{"keyId": new_id(), "secretText": secret, "endDateTime": None}]
        app["passwordCredentials"] = [{"keyId": tenant.client_secrets[app["id"]][0]["keyId"],
                                       "displayName": "sandbox seed", "hint": secret[:3],
                                       "startDateTime": self.now_iso(), "endDateTime": "2299-12-31T00:00:00Z",
                                       "customKeyIdentifier": None, "secretText": None}]
        provisioner_sp = self._service_principal(tenant, app["appId"], app["displayName"], "Application",
                                                 app_owner_tenant=tenant_id)
        mi_app_id = new_id()
        mi_sp = self._service_principal(tenant, mi_app_id, f"certauth-func-{index}", "ManagedIdentity",
                                        app_owner_tenant=ms.MICROSOFT_TENANT_ID)
        graph_sp = tenant.service_principal_by_app_id(ms.MICROSOFT_GRAPH_APP_ID)
        for principal in (provisioner_sp, mi_sp):
            self.set_roles(tenant, principal["id"], graph_sp["id"], default_roles)
        tenant.seeded = {
            "provisioner": {"clientId": app["appId"], "clientSecret": secret, "applicationObjectId": app["id"],
                            "servicePrincipalId": provisioner_sp["id"]},
            "managedIdentity": {"clientId": mi_app_id, "principalId": mi_sp["id"]},
        }
        # Seeds are old: they are never subject to replication delay.
        tenant.created_at.clear()
        return tenant

    def add_consent_app(self, tenant: Tenant, roles: list[str], redirect_uri: str, login_url: str) -> dict:
        """Seed the product's multi-tenant provisioner app in the home tenant: customers grant it
        `roles` on Microsoft Graph through the admin-consent endpoint (the onboarding link)."""
        graph = ms.FIRST_PARTY_SERVICE_PRINCIPALS[ms.MICROSOFT_GRAPH_APP_ID]
        graph_roles = {r["value"]: r["id"] for r in graph["appRoles"]}
        app = self.new_application(tenant, {
            "displayName": "certauth onboarding (sandbox seed)", "signInAudience": "AzureADMultipleOrgs",
            "web": {"redirectUris": [redirect_uri], "homePageUrl": None, "logoutUrl": None},
            "requiredResourceAccess": [{"resourceAppId": ms.MICROSOFT_GRAPH_APP_ID,
                                        "resourceAccess": [{"id": graph_roles[r], "type": "Role"} for r in roles]}],
        })
        secret = f"sbx~{secrets.token_urlsafe(30)}"
        tenant.client_secrets[app["id"]] = [{"keyId": new_id(), "secretText": secret, "endDateTime": None}]
        sp = self._federate_with_managed_identity(tenant, app, login_url)
        tenant.seeded["consentApp"] = {"clientId": app["appId"], "clientSecret": secret,
                                       "applicationObjectId": app["id"], "servicePrincipalId": sp["id"],
                                       "redirectUri": redirect_uri}
        return app

    def add_verifier_app(self, tenant: Tenant, redirect_uri: str, login_url: str) -> dict:
        """Seed the product's second multi-tenant app in the home tenant, the verifier of the manual method: it
        requests only Application.Read.All and Organization.Read.All on Microsoft Graph (what a customer's admin
        consent grants it) and, like the onboarding app, trusts the home managed identity (no secret)."""
        graph = ms.FIRST_PARTY_SERVICE_PRINCIPALS[ms.MICROSOFT_GRAPH_APP_ID]
        graph_roles = {r["value"]: r["id"] for r in graph["appRoles"]}
        app = self.new_application(tenant, {
            "displayName": "certauth verifier (sandbox seed)", "signInAudience": "AzureADMultipleOrgs",
            "web": {"redirectUris": [redirect_uri], "homePageUrl": None, "logoutUrl": None},
            "requiredResourceAccess": [{"resourceAppId": ms.MICROSOFT_GRAPH_APP_ID, "resourceAccess": [
                {"id": graph_roles[r], "type": "Role"} for r in ("Application.Read.All", "Organization.Read.All")]}],
        })
        sp = self._federate_with_managed_identity(tenant, app, login_url)
        tenant.seeded["verifierApp"] = {"clientId": app["appId"], "applicationObjectId": app["id"],
                                        "servicePrincipalId": sp["id"], "redirectUri": redirect_uri}
        return app

    def _federate_with_managed_identity(self, tenant: Tenant, app: dict, login_url: str) -> dict:
        """Make a seeded app trust the home managed identity and give it its service principal (both seeds)."""
        # Workload identity federation: the product needs no secret, the managed identity's token for
        # api://AzureADTokenExchange is the client assertion.
        app["_federatedIdentityCredentials"] = [{
            "name": "certauth-managed-identity", "issuer": f"{login_url}/{tenant.id}/v2.0",
            "subject": tenant.seeded["managedIdentity"]["principalId"],
            "audiences": ["api://AzureADTokenExchange"]}]
        sp = self.new_service_principal(tenant, app, tenant)
        tenant.created_at.pop(app["id"], None)
        tenant.created_at.pop(sp["id"], None)
        return sp

    def new_application(self, tenant: Tenant, body: dict, owner_id: str | None = None) -> dict:
        """Create an application object with Graph's defaults merged with `body`."""
        object_id = new_id()
        app = {
            "id": object_id, "appId": new_id(), "displayName": None, "uniqueName": None,
            "signInAudience": "AzureADMyOrg", "createdDateTime": self.now_iso(), "deletedDateTime": None,
            "description": None, "notes": None, "tags": [], "identifierUris": [],
            "keyCredentials": [], "passwordCredentials": [], "requiredResourceAccess": [],
            "appRoles": [], "web": {"redirectUris": [], "homePageUrl": None, "logoutUrl": None},
            "publisherDomain": tenant.domain, "isFallbackPublicClient": None,
        }
        app.update(body)
        tenant.applications[object_id] = app
        tenant.owners[object_id] = {owner_id} if owner_id else set()
        self.record_created(tenant, object_id)
        return app

    def _service_principal(self, tenant: Tenant, app_id: str, display_name: str, sp_type: str,
                           app_owner_tenant: str) -> dict:
        object_id = new_id()
        sp = {
            "id": object_id, "appId": app_id, "displayName": display_name, "servicePrincipalType": sp_type,
            "accountEnabled": True, "appOwnerOrganizationId": app_owner_tenant, "appRoles": [],
            "keyCredentials": [], "passwordCredentials": [], "servicePrincipalNames": [app_id],
            "tags": [], "createdDateTime": self.now_iso(), "deletedDateTime": None,
            "appRoleAssignmentRequired": False, "signInAudience": "AzureADMyOrg",
        }
        tenant.service_principals[object_id] = sp
        self.record_created(tenant, object_id)
        return sp

    def new_service_principal(self, tenant: Tenant, app: dict, app_home_tenant: Tenant) -> dict:
        """Create the service principal of an application in `tenant`."""
        sp = self._service_principal(tenant, app["appId"], app.get("displayName") or "", "Application",
                                     app_owner_tenant=app_home_tenant.id)
        sp["appRoles"] = [dict(r) for r in app.get("appRoles", [])]
        sp["signInAudience"] = app.get("signInAudience", "AzureADMyOrg")
        return sp

    def new_app_role_assignment(self, tenant: Tenant, principal: dict, resource: dict, app_role_id: str) -> dict:
        """Create an appRoleAssignment (admin consent of one application permission)."""
        assignment = {
            "id": secrets.token_urlsafe(32)[:43],  # Graph's assignment ids are opaque base64url strings
            "appRoleId": app_role_id, "createdDateTime": self.now_iso(), "deletedDateTime": None,
            "principalDisplayName": principal.get("displayName"), "principalId": principal["id"],
            "principalType": "ServicePrincipal", "resourceDisplayName": resource.get("displayName"),
            "resourceId": resource["id"],
        }
        tenant.app_role_assignments[assignment["id"]] = assignment
        self.record_created(tenant, assignment["id"])
        return assignment

    def set_roles(self, tenant: Tenant, principal_id: str, resource_sp_id: str, values: list[str]) -> list[str]:
        """Make `principal_id` hold exactly these app roles (by value) on the resource (admin API)."""
        principal = tenant.service_principals[principal_id]
        resource = tenant.service_principals[resource_sp_id]
        by_value = {r["value"]: r["id"] for r in resource.get("appRoles", [])}
        unknown = [v for v in values if v not in by_value]
        if unknown:
            raise ValueError(f"unknown app role(s) on {resource['displayName']}: {unknown}")
        for assignment_id, a in list(tenant.app_role_assignments.items()):
            if a["principalId"] == principal_id and a["resourceId"] == resource_sp_id:
                del tenant.app_role_assignments[assignment_id]
        for value in values:
            assignment = self.new_app_role_assignment(tenant, principal, resource, by_value[value])
            tenant.created_at.pop(assignment["id"], None)  # the admin API's grants are old, like seeds
        return sorted(values)
