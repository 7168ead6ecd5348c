"""Graph tenant app management policies: the default policy, the policies assigned to one application, and
the check of new keyCredentials against the policy's asymmetricKeyLifetime restriction.

A tenant has no restriction until one is configured through the admin API
(`PUT /_sandbox/tenants/{id}/appManagementPolicy` with Graph's tenantAppManagementPolicy JSON); Graph then
answers the default policy as it stands: `isEnabled` false and empty restrictions.

Sources (learn.microsoft.com/graph/api/…):
  tenantappmanagementpolicy-get        GET /policies/defaultAppManagementPolicy → 200 + the policy (Policy.Read.All)
  resources/tenantappmanagementpolicy  applicationRestrictions apply "as default to all application objects";
                                       isEnabled defaults to false
  resources/appmanagementpolicy        an appManagementPolicy assigned to an object overrides the default
  resources/keycredentialconfiguration asymmetricKeyLifetime + maxLifetime (ISO 8601 duration), state,
                                       restrictForAppsCreatedAfterDateTime ("applies to newly created applications")
  application-list-appmanagementpolicies GET /applications/{id}/appManagementPolicies (assignment is not
                                       modelled: the list is empty)
The 400 for a key over the limit: microsoft.GRAPH_ERRORS_CATALOG["credential_lifetime_policy"] (OBSERVED).
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

from aiohttp import web

from sandbox.clock import isoformat_z

from . import microsoft as ms
from .errors import ServiceError, graph_error_body
from .graph_base import APP_REF, Ctx, graph_error, list_response, respond, route
from .graph_odata import EntityType
from .world import Tenant, World

FACTS = ms.APP_MANAGEMENT_POLICY
DEFAULT_POLICY_ID = FACTS["default"]["id"]
_DURATION = re.compile(FACTS["max_lifetime_grammar"])

POLICY_PROPERTIES = frozenset({"id", "displayName", "description", "isEnabled", "applicationRestrictions",
                               "servicePrincipalRestrictions"})
# appManagementConfiguration (v1.0) plus identifierUris of appManagementApplicationConfiguration.
RESTRICTION_COLLECTIONS = ("passwordCredentials", "keyCredentials")
CONFIGURATION_PROPERTIES = frozenset({*RESTRICTION_COLLECTIONS, "identifierUris"})
KEY_RESTRICTION_PROPERTIES = frozenset({"restrictionType", "maxLifetime", "restrictForAppsCreatedAfterDateTime",
                                        "state", "certificateBasedApplicationConfigurationIds"})
APP_MANAGEMENT_POLICY = EntityType(
    name="appManagementPolicy", resource="AppManagementPolicy",
    properties=frozenset({"id", "displayName", "description", "isEnabled", "restrictions"}),
    eq=frozenset({"id", "displayName", "isEnabled"}), startswith=frozenset({"displayName"}),
)


# -- the policy ------------------------------------------------------------------------------------------

def default_policy() -> dict:
    """The default policy of a tenant that never configured one (the tenantappmanagementpolicy-get example)."""
    empty = {"passwordCredentials": [], "keyCredentials": []}
    return {**copy.deepcopy(FACTS["default"]), "applicationRestrictions": copy.deepcopy(empty),
            "servicePrincipalRestrictions": copy.deepcopy(empty)}


def policy_of(tenant: Tenant) -> dict:
    """The tenant's default app management policy as Graph returns it."""
    return copy.deepcopy(tenant.app_management_policy) if tenant.app_management_policy else default_policy()


def parse_duration(value: str) -> timedelta:
    """An Edm.Duration (ISO 8601, days and time only) such as P90D or P4DT12H30M5S."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or not any(match.groupdict().values()) or value.endswith("T"):
        raise ValueError(f"maxLifetime: {value!r} is not an ISO 8601 duration of days and time (e.g. P90D)")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


def _parse_moment(value, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key_restriction(item, where: str) -> dict:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a keyCredentialConfiguration object is required")
    unknown = {k for k in item if not k.startswith("@")} - KEY_RESTRICTION_PROPERTIES
    if unknown:
        raise ValueError(f"{where}: unknown propert(ies) {sorted(unknown)}")
    kind = item.get("restrictionType")
    if kind not in FACTS["key_restriction_types"]:
        raise ValueError(f"{where}.restrictionType: one of {list(FACTS['key_restriction_types'])}")
    state = item.get("state", "enabled")  # UNCONFIRMED default (the v1.0 page gives none)
    if state not in FACTS["restriction_states"]:
        raise ValueError(f"{where}.state: one of {list(FACTS['restriction_states'])}")
    max_lifetime = item.get("maxLifetime")
    if kind == "asymmetricKeyLifetime" and max_lifetime is None:
        raise ValueError(f"{where}.maxLifetime: required when restrictionType is asymmetricKeyLifetime")
    if max_lifetime is not None:
        parse_duration(max_lifetime)
    since = item.get("restrictForAppsCreatedAfterDateTime")
    out = {"restrictionType": kind, "state": state,
           "restrictForAppsCreatedAfterDateTime": isoformat_z(_parse_moment(since, f"{where}.restrictFor"
                                                                                   "AppsCreatedAfterDateTime"))
           if since is not None else None,
           "maxLifetime": max_lifetime}
    if "certificateBasedApplicationConfigurationIds" in item:
        out["certificateBasedApplicationConfigurationIds"] = list(item["certificateBasedApplicationConfigurationIds"]
                                                                  or [])
    return out


def _configuration(value, where: str) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: an appManagementConfiguration object is required")
    unknown = {k for k in value if not k.startswith("@")} - CONFIGURATION_PROPERTIES
    if unknown:
        raise ValueError(f"{where}: unknown propert(ies) {sorted(unknown)}")
    out: dict = {}
    for name in RESTRICTION_COLLECTIONS:
        items = value.get(name) or []
        if not isinstance(items, list):
            raise ValueError(f"{where}.{name}: a list is required")
        out[name] = items
    keys = [_key_restriction(item, f"{where}.keyCredentials[{i}]") for i, item in enumerate(out["keyCredentials"])]
    kinds = [k["restrictionType"] for k in keys]
    if len(kinds) != len(set(kinds)):  # "Each value of restrictionType can be used only once per policy."
        raise ValueError(f"{where}.keyCredentials: each restrictionType may appear only once")
    out["keyCredentials"] = keys
    if not all(isinstance(p, dict) for p in out["passwordCredentials"]):
        raise ValueError(f"{where}.passwordCredentials: passwordCredentialConfiguration objects are required")
    out["passwordCredentials"] = copy.deepcopy(out["passwordCredentials"])  # stored, not enforced
    if "identifierUris" in value:
        out["identifierUris"] = copy.deepcopy(value["identifierUris"])
    return out


def parse_policy(body) -> dict:
    """A tenantAppManagementPolicy from the admin API, completed with the default policy's fields."""
    if not isinstance(body, dict):
        raise ValueError("a tenantAppManagementPolicy JSON object is required")
    unknown = {k for k in body if not k.startswith("@")} - POLICY_PROPERTIES
    if unknown:
        raise ValueError(f"unknown propert(ies) {sorted(unknown)}")
    if body.get("id", DEFAULT_POLICY_ID) != DEFAULT_POLICY_ID:
        raise ValueError(f"id: the default policy's id is {DEFAULT_POLICY_ID}")
    enabled = body.get("isEnabled", False)
    if not isinstance(enabled, bool):
        raise ValueError("isEnabled: true or false")
    policy = default_policy()
    for name in ("displayName", "description"):
        if body.get(name) is not None:
            policy[name] = str(body[name])
    policy["isEnabled"] = enabled
    policy["applicationRestrictions"] = _configuration(body.get("applicationRestrictions"),
                                                       "applicationRestrictions")
    policy["servicePrincipalRestrictions"] = _configuration(body.get("servicePrincipalRestrictions"),
                                                            "servicePrincipalRestrictions")
    return policy


# -- enforcement -------------------------------------------------------------------------------------------

def lifetime_error(ctx: Ctx, policy_id: str) -> ServiceError:
    """400 CredentialInvalidLifetimeAsPerAppPolicy with the details Graph sends (OBSERVED); the error body is
    whole here (details sit inside `error`), with this request's ids as the error middleware would set them."""
    error = graph_error("credential_lifetime_policy", policyId=policy_id)
    inner = graph_error_body(error.code, error.message)["error"]["innerError"]
    request_id = ctx.request.get("graph_request_id") or inner["request-id"]
    inner.update({"request-id": request_id,
                  "client-request-id": ctx.request.headers.get("client-request-id") or request_id})
    error.extra = {"error": {"code": error.code, "message": error.message,
                             "details": [{"code": "InvalidKeyEndDate", "message": error.message, "target": "EndDate"}],
                             "innerError": inner}}
    return error


def added_keys(before: list[dict], after: list[dict]) -> list[dict]:
    """The keyCredentials in `after` that `before` did not hold (PATCH re-sends the kept ones)."""
    kept = {k["keyId"].lower() for k in before}
    return [k for k in after if k["keyId"].lower() not in kept]


def enforce_key_lifetime(ctx: Ctx, app_created: str | None, keys: list[dict]) -> None:
    """Refuse new keyCredentials longer than the default policy's asymmetricKeyLifetime allows, for an app created
    after the restriction's date (`app_created` None: the app is being created now)."""
    policy = ctx.tenant.app_management_policy
    if not keys or not policy or not policy.get("isEnabled"):
        return
    created = _parse_moment(app_created, "createdDateTime") if app_created else ctx.world.now()
    for restriction in policy["applicationRestrictions"]["keyCredentials"]:
        if restriction["restrictionType"] != "asymmetricKeyLifetime" or restriction["state"] != "enabled":
            continue
        since = restriction.get("restrictForAppsCreatedAfterDateTime")
        if since is not None and created <= _parse_moment(since, "restrictForAppsCreatedAfterDateTime"):
            continue
        limit = parse_duration(restriction["maxLifetime"])
        for key in keys:
            lifetime = (_parse_moment(key["endDateTime"], "endDateTime")
                        - _parse_moment(key["startDateTime"], "startDateTime"))
            if lifetime > limit:
                raise lifetime_error(ctx, policy["id"])


# -- Graph routes ------------------------------------------------------------------------------------------

@route("GET", r"/policies/defaultAppManagementPolicy")
async def get_default_policy(ctx: Ctx) -> web.StreamResponse:
    """The tenant's default app management policy (tenantappmanagementpolicy-get)."""
    ctx.require("policy.defaultAppManagementPolicy.get")
    body = {"@odata.context": ctx.context_url("policies/defaultAppManagementPolicy/$entity"),
            **policy_of(ctx.tenant)}
    return respond(ctx, body)


@route("GET", r"/applications" + APP_REF + r"/appManagementPolicies")
async def list_app_policies(ctx: Ctx) -> web.StreamResponse:
    """The appManagementPolicies assigned to one application: none (assignment is not modelled)."""
    from .graph_apps import resolve_app  # graph_apps imports this module for the key check

    ctx.require("application.appManagementPolicies.list")
    resolve_app(ctx)
    return list_response(ctx, [], APP_MANAGEMENT_POLICY, "appManagementPolicies")


# -- admin API (login origin, under /_sandbox) ------------------------------------------------------------

admin_routes = web.RouteTableDef()


def _tenant(request: web.Request) -> Tenant:
    world: World = request.app["world"]
    tenant = world.tenant(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound(text=f"no tenant {request.match_info['tenant']}")
    return tenant


@admin_routes.get("/_sandbox/tenants/{tenant}/appManagementPolicy")
async def admin_get_policy(request: web.Request) -> web.Response:
    """The tenant's default app management policy."""
    return web.json_response(policy_of(_tenant(request)))


@admin_routes.put("/_sandbox/tenants/{tenant}/appManagementPolicy")
async def admin_put_policy(request: web.Request) -> web.Response:
    """Configure the tenant's default app management policy (Graph's tenantAppManagementPolicy JSON)."""
    tenant = _tenant(request)
    try:
        policy = parse_policy(await request.json())
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    tenant.app_management_policy = policy
    return web.json_response(policy_of(tenant))


@admin_routes.delete("/_sandbox/tenants/{tenant}/appManagementPolicy")
async def admin_delete_policy(request: web.Request) -> web.Response:
    """Back to Graph's default policy (disabled, no restrictions)."""
    tenant = _tenant(request)
    tenant.app_management_policy = None
    return web.json_response(policy_of(tenant))
