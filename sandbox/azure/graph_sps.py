"""Graph /servicePrincipals: upsert by appId, create, get, list, delete, and app role assignments
(appRoleAssignedTo on the resource side, appRoleAssignments on the principal side).

Sources (learn.microsoft.com/graph/api/…):
  serviceprincipal-upsert                  PATCH /servicePrincipals(appId='…') + Prefer: create-if-missing →
                                           201 + body when created, 204 when updated.
  serviceprincipal-post-serviceprincipals  POST /servicePrincipals {appId} → 201.
  serviceprincipal-get / -list / -delete.
  serviceprincipal-post-approleassignedto  201 + appRoleAssignment; principalId / resourceId / appRoleId;
                                           AppRoleAssignment.ReadWrite.All *and* Application.Read.All.
  serviceprincipal-post-approleassignments, -list-approleassignedto, -list-approleassignments,
  serviceprincipal-delete-approleassignedto, -delete-approleassignments (204).
Observed behaviour (public issues):
  * SP for an app that is not (yet) visible: 400 "The appId '…' of the service principal does not reference
    a valid application object." (REFERENCE.md; Request_BadRequest with PropertyErrorCode
    NoBackingApplicationObject in the AAD Graph era, kubernetes-retired/kubernetes-anywhere#248).
  * With Application.ReadWrite.OwnedBy only, the same situation (and any app the caller does not own or that
    lives in another tenant) gives 403 Authorization_RequestDenied "When using this permission, the backing
    application of the service principal being created must in the local tenant"
    (Azure/azure-cli#28009, hashicorp/terraform-provider-azuread#504 and #992; microsoft-graph-docs#16138:
    with OwnedBy the calling app must own the application object).
  * A second SP for the same appId: 409 Request_MultipleObjectsWithSameKeyValue "Another object with the same
    value for property servicePrincipalNames already exists.".
  * Duplicate app role assignment: 400 "Permission being assigned already exists on the object."
    (microsoft.py "app_role_assignment_exists"); unknown app role: 400 Request_BadRequest "Permission being
    assigned was not found on application '…'." (widely observed).
  * Reference to a principal that has not replicated yet: 400 "Not a valid reference update." or 404
    "Resource '…' does not exist or one of its queried reference-property objects are not present."
    (REFERENCE.md). The sandbox alternates deterministically per principal: the 1st, 3rd… attempt gets the
    400, the 2nd, 4th… the 404, so retry logic meets both.
"""

from __future__ import annotations

from aiohttp import web

from . import microsoft as ms
from .errors import ServiceError
from .graph_base import (
    SP_REF,
    Ctx,
    check_guid,
    check_properties,
    entity_response,
    graph_error,
    guid_property,
    list_response,
    not_found,
    public,
    respond,
    route,
    unquote_literal,
)
from .graph_odata import EntityType
from .world import Tenant

MULTI_TENANT_AUDIENCES = {"AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount"}

# Properties of microsoft.graph.servicePrincipal (learn.microsoft.com/graph/api/resources/serviceprincipal).
SERVICE_PRINCIPAL_PROPERTIES = frozenset({
    "accountEnabled", "addIns", "alternativeNames", "appDescription", "appDisplayName", "appId",
    "applicationTemplateId", "appOwnerOrganizationId", "appRoleAssignmentRequired", "appRoles",
    "createdDateTime", "deletedDateTime", "description", "disabledByMicrosoftStatus", "displayName", "homepage",
    "id", "info", "keyCredentials", "loginUrl", "logoutUrl", "notes", "notificationEmailAddresses",
    "oauth2PermissionScopes", "passwordCredentials", "preferredSingleSignOnMode",
    "preferredTokenSigningKeyThumbprint", "replyUrls", "resourceSpecificApplicationPermissions",
    "samlSingleSignOnSettings", "servicePrincipalNames", "servicePrincipalType", "signInAudience", "tags",
    "tokenEncryptionKeyId", "verifiedPublisher",
})
SERVICE_PRINCIPAL_WRITABLE = frozenset({
    "accountEnabled", "alternativeNames", "appRoleAssignmentRequired", "description", "displayName", "homepage",
    "loginUrl", "logoutUrl", "notes", "notificationEmailAddresses", "preferredSingleSignOnMode", "replyUrls",
    "tags",
})
SERVICE_PRINCIPAL = EntityType(
    name="servicePrincipal", resource="ServicePrincipal", properties=SERVICE_PRINCIPAL_PROPERTIES,
    eq=frozenset({"id", "appId", "displayName", "servicePrincipalType", "accountEnabled",
                  "appOwnerOrganizationId"}),
    startswith=frozenset({"displayName"}),
    # servicePrincipalNames, tags, alternativeNames: "Supports $filter (eq, not, ge, le, startsWith)"
    # (resources/serviceprincipal), through any(); the Azure CLI resolves SPs with servicePrincipalNames/any(…).
    collections=frozenset({"servicePrincipalNames", "tags", "alternativeNames"}),
    guids=frozenset({"appOwnerOrganizationId"}),  # Edm.Guid in the v1.0 metadata
)
# microsoft.graph.appRoleAssignment (learn.microsoft.com/graph/api/resources/approleassignment).
APP_ROLE_ASSIGNMENT_PROPERTIES = frozenset({
    "id", "appRoleId", "createdDateTime", "deletedDateTime", "principalDisplayName", "principalId",
    "principalType", "resourceDisplayName", "resourceId",
})
APP_ROLE_ASSIGNMENT = EntityType(
    name="appRoleAssignment", resource="AppRoleAssignment", properties=APP_ROLE_ASSIGNMENT_PROPERTIES,
    eq=frozenset({"id", "appRoleId", "principalId", "resourceId", "principalType"}),
    startswith=frozenset(),
    # Edm.Guid: filtered with unquoted GUID literals (a quoted one is refused: msgraph-sdk-dotnet#2306).
    guids=frozenset({"appRoleId", "principalId", "resourceId"}),
)

SP_ERRORS = {
    "backing_app_not_local": (403, "Authorization_RequestDenied",
                              "When using this permission, the backing application of the service principal "
                              "being created must in the local tenant"),
    "sp_exists": (409, "Request_MultipleObjectsWithSameKeyValue",
                  "Another object with the same value for property servicePrincipalNames already exists."),
    "app_role_not_found": (400, "Request_BadRequest",
                           "Permission being assigned was not found on application '{appId}'."),
}


def sp_error(key: str, **fields) -> ServiceError:
    status, code, message = SP_ERRORS[key]
    return ServiceError(status, code, message.format(**fields))


def no_backing_application(app_id: str) -> ServiceError:
    """400 for an appId without a visible application (code per REFERENCE.md: Request_BadRequest)."""
    fact = ms.GRAPH_ERRORS_CATALOG["sp_app_not_replicated"]
    return ServiceError(400, "Request_BadRequest", fact["message"].format(appId=app_id))


def serialize_sp(sp: dict) -> dict:
    """A servicePrincipal as Graph returns it."""
    out = public(sp)
    out["keyCredentials"] = [{**public(k), "key": None} for k in sp.get("keyCredentials", [])]
    out["passwordCredentials"] = [{**public(p), "secretText": None} for p in sp.get("passwordCredentials", [])]
    return out


def resolve_sp(ctx: Ctx) -> dict:
    """The service principal named by /{id} or (appId='…'); 404 otherwise."""
    if "id" in ctx.match:
        object_id = check_guid(ctx.match["id"])
        sp = ctx.tenant.service_principals.get(object_id)
        if sp is None:
            raise not_found(object_id)
        return sp
    app_id = unquote_literal(ctx.match["appId"])
    sp = ctx.tenant.service_principal_by_app_id(check_guid(app_id))
    if sp is None:
        raise not_found(app_id)
    return sp


def remove_service_principal(tenant: Tenant, sp: dict) -> None:
    """Delete a service principal with the assignments that reference it (the directory removes them)."""
    tenant.service_principals.pop(sp["id"], None)
    tenant.owners.pop(sp["id"], None)
    for assignment_id, a in list(tenant.app_role_assignments.items()):
        if sp["id"] in (a["principalId"], a["resourceId"]):
            del tenant.app_role_assignments[assignment_id]
    for assignment_id, a in list(tenant.role_assignments.items()):
        if a["principalId"] == sp["id"]:
            del tenant.role_assignments[assignment_id]


def _apply_sp_changes(sp: dict, body: dict) -> dict:
    check_properties(body, SERVICE_PRINCIPAL_PROPERTIES, "servicePrincipal")
    updated = dict(sp)
    for name, value in body.items():
        if name.startswith("@") or "@odata." in name or name == "appId":
            continue
        if name not in SERVICE_PRINCIPAL_WRITABLE:
            if value != sp.get(name):
                raise graph_error("read_only", name=name)
            continue
        if name == "displayName" and (not isinstance(value, str) or not value.strip() or len(value) > 256):
            raise graph_error("invalid_value", name="displayName", resource="ServicePrincipal")
        if name in ("accountEnabled", "appRoleAssignmentRequired") and not isinstance(value, bool):
            raise graph_error("literal_invalid", literal=value, edm="Edm.Boolean")
        updated[name] = value
    return updated


def create_sp(ctx: Ctx, app_id: str, body: dict, operation: str) -> dict:
    """Create the service principal of `app_id` in the caller's tenant (rules in the module docstring)."""
    world, tenant = ctx.world, ctx.tenant
    app_id = guid_property(app_id)
    if tenant.service_principal_by_app_id(app_id) is not None:
        raise sp_error("sp_exists")
    only_owned = ctx.only_owned_by(operation)
    local = tenant.application_by_app_id(app_id)
    if local is not None:
        home, app = tenant, local
        replicated = world.is_replicated(tenant, app["id"], "application")
        if only_owned and (not replicated or not ctx.owns(app["id"])):
            raise sp_error("backing_app_not_local")
        if not replicated:
            raise no_backing_application(app_id)
    else:
        found = world.home_application(app_id)
        if only_owned:
            raise sp_error("backing_app_not_local")
        if found is None:
            raise no_backing_application(app_id)
        home, app = found
        if app.get("signInAudience") not in MULTI_TENANT_AUDIENCES \
                or not world.is_replicated(home, app["id"], "application"):
            raise no_backing_application(app_id)
    updated = _apply_sp_changes({}, {k: v for k, v in body.items() if k != "appId"})
    sp = world.new_service_principal(tenant, app, home)
    sp["appDisplayName"] = app.get("displayName")
    sp["appDescription"] = app.get("description")
    sp.update(updated)
    tenant.owners[sp["id"]] = {ctx.caller.object_id}
    return sp


# -- service principals --------------------------------------------------------------------------------

@route("GET", r"/servicePrincipals")
async def list_service_principals(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.list")
    return list_response(ctx, list(ctx.tenant.service_principals.values()), SERVICE_PRINCIPAL,
                         "servicePrincipals", serialize=serialize_sp)


@route("POST", r"/servicePrincipals")
async def post_service_principal(ctx: Ctx) -> web.StreamResponse:
    """POST /servicePrincipals {appId, …} → 201."""
    ctx.require("servicePrincipal.create")
    body = await ctx.body()
    check_properties(body, SERVICE_PRINCIPAL_PROPERTIES, "servicePrincipal")
    if body.get("appId") is None:
        raise graph_error("invalid_value", name="appId", resource="ServicePrincipal")
    sp = create_sp(ctx, body["appId"], body, "servicePrincipal.create")
    return entity_response(ctx, sp, SERVICE_PRINCIPAL, "servicePrincipals", status=201, serialize=serialize_sp,
                           headers={"Location": f"{ctx.base}/directoryObjects/{sp['id']}"
                                                f"/Microsoft.DirectoryServices.ServicePrincipal"})


@route("GET", r"/servicePrincipals" + SP_REF)
async def get_service_principal(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.get")
    return entity_response(ctx, resolve_sp(ctx), SERVICE_PRINCIPAL, "servicePrincipals", serialize=serialize_sp)


@route("PATCH", r"/servicePrincipals" + SP_REF)
async def patch_service_principal(ctx: Ctx) -> web.StreamResponse:
    """Update (204), or upsert by appId with Prefer: create-if-missing (201 / 204)."""
    body = await ctx.body()
    app_id = unquote_literal(ctx.match.get("appId"))
    prefer = [p.strip().lower() for p in ctx.request.headers.get("Prefer", "").split(",")]
    if app_id is not None:
        check_guid(app_id)
        if body.get("appId") not in (None, app_id) and str(body.get("appId")).lower() != app_id.lower():
            raise graph_error("read_only", name="appId")
        if ctx.tenant.service_principal_by_app_id(app_id) is None:
            ctx.require("servicePrincipal.upsert")
            if "create-if-missing" not in prefer:
                raise not_found(app_id)
            sp = create_sp(ctx, app_id, body, "servicePrincipal.upsert")
            return entity_response(ctx, sp, SERVICE_PRINCIPAL, "servicePrincipals", status=201,
                                   serialize=serialize_sp)
    sp = resolve_sp(ctx)
    ctx.require("servicePrincipal.upsert", owned=ctx.owns(sp["id"]))
    updated = _apply_sp_changes(sp, body)
    sp.clear()
    sp.update(updated)
    return respond(ctx, None, status=204)


@route("DELETE", r"/servicePrincipals" + SP_REF)
async def delete_service_principal(ctx: Ctx) -> web.StreamResponse:
    sp = resolve_sp(ctx)
    ctx.require("servicePrincipal.delete", owned=ctx.owns(sp["id"]))
    from .graph_deleted import soft_delete_service_principal
    soft_delete_service_principal(ctx.world, ctx.tenant, sp)  # to deleted items for 30 days (MC344406)
    return respond(ctx, None, status=204)


# -- app role assignments ------------------------------------------------------------------------------

def _replication_error(ctx: Ctx, principal_id: str) -> ServiceError:
    """Alternate the two documented replication errors per principal (see module docstring)."""
    attempts = ctx.request.app["graph_state"]["replication_attempts"]
    key = (ctx.tenant.id, principal_id)
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] % 2 == 1:
        return graph_error("reference_update_invalid")
    return graph_error("resource_not_found", id=principal_id)


def check_replicated(ctx: Ctx, *sps: dict) -> None:
    """Raise a replication error when a referenced service principal is too new."""
    for sp in sps:
        if not ctx.world.is_replicated(ctx.tenant, sp["id"], "servicePrincipal"):
            raise _replication_error(ctx, sp["id"])


def _create_assignment(ctx: Ctx, body: dict, *, resource: dict | None = None,
                       principal: dict | None = None) -> dict:
    """Validate an appRoleAssignment body for a fixed resource (appRoleAssignedTo) or principal
    (appRoleAssignments) and create it."""
    check_properties(body, APP_ROLE_ASSIGNMENT_PROPERTIES, "appRoleAssignment")
    for name in ("principalId", "resourceId", "appRoleId"):
        if body.get(name) is None:
            raise graph_error("invalid_value", name=name, resource="AppRoleAssignment")
    principal_id = guid_property(body["principalId"])
    resource_id = guid_property(body["resourceId"])
    app_role_id = guid_property(body["appRoleId"])
    tenant = ctx.tenant
    if resource is not None and resource_id != resource["id"]:
        raise graph_error("invalid_value", name="resourceId", resource="AppRoleAssignment")
    if principal is not None and principal_id != principal["id"]:
        raise graph_error("invalid_value", name="principalId", resource="AppRoleAssignment")
    if principal is None:
        principal = tenant.service_principals.get(principal_id)
        if principal is None:
            raise not_found(principal_id)
    if resource is None:
        resource = tenant.service_principals.get(resource_id)
        if resource is None:
            raise not_found(resource_id)
    check_replicated(ctx, principal, resource)
    role = next((r for r in resource.get("appRoles", []) if r["id"].lower() == app_role_id), None)
    if role is None or not role.get("isEnabled", True) or "Application" not in role.get("allowedMemberTypes", []):
        raise sp_error("app_role_not_found", appId=resource["appId"])
    for existing in tenant.app_role_assignments.values():
        if (existing["principalId"], existing["resourceId"], existing["appRoleId"].lower()) == \
                (principal["id"], resource["id"], app_role_id):
            raise graph_error("app_role_assignment_exists")
    return ctx.world.new_app_role_assignment(tenant, principal, resource, role["id"])


@route("GET", r"/servicePrincipals" + SP_REF + r"/appRoleAssignedTo")
async def list_app_role_assigned_to(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.appRoleAssignedTo.list")
    sp = resolve_sp(ctx)
    items = [a for a in ctx.tenant.app_role_assignments.values() if a["resourceId"] == sp["id"]]
    return list_response(ctx, items, APP_ROLE_ASSIGNMENT, f"servicePrincipals('{sp['id']}')/appRoleAssignedTo")


@route("POST", r"/servicePrincipals" + SP_REF + r"/appRoleAssignedTo")
async def post_app_role_assigned_to(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.appRoleAssignedTo.create")
    resource = resolve_sp(ctx)
    assignment = _create_assignment(ctx, await ctx.body(), resource=resource)
    return entity_response(ctx, assignment, APP_ROLE_ASSIGNMENT,
                           f"servicePrincipals('{resource['id']}')/appRoleAssignedTo", status=201)


@route("DELETE", r"/servicePrincipals" + SP_REF + r"/appRoleAssignedTo/(?P<assignment>[^/]+)")
async def delete_app_role_assigned_to(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.appRoleAssignedTo.delete")
    return _delete_assignment(ctx, "resourceId")


@route("GET", r"/servicePrincipals" + SP_REF + r"/appRoleAssignments")
async def list_app_role_assignments(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.appRoleAssignments.list")
    sp = resolve_sp(ctx)
    items = [a for a in ctx.tenant.app_role_assignments.values() if a["principalId"] == sp["id"]]
    return list_response(ctx, items, APP_ROLE_ASSIGNMENT, f"servicePrincipals('{sp['id']}')/appRoleAssignments")


@route("POST", r"/servicePrincipals" + SP_REF + r"/appRoleAssignments")
async def post_app_role_assignment(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.appRoleAssignments.create")
    principal = resolve_sp(ctx)
    assignment = _create_assignment(ctx, await ctx.body(), principal=principal)
    return entity_response(ctx, assignment, APP_ROLE_ASSIGNMENT,
                           f"servicePrincipals('{principal['id']}')/appRoleAssignments", status=201)


@route("DELETE", r"/servicePrincipals" + SP_REF + r"/appRoleAssignments/(?P<assignment>[^/]+)")
async def delete_app_role_assignment(ctx: Ctx) -> web.StreamResponse:
    ctx.require("servicePrincipal.appRoleAssignments.delete")
    return _delete_assignment(ctx, "principalId")


def _delete_assignment(ctx: Ctx, side: str) -> web.StreamResponse:
    """Delete an assignment seen from one side (the resource's appRoleAssignedTo or the principal's
    appRoleAssignments); one belonging to another service principal is not found from here."""
    sp = resolve_sp(ctx)
    assignment = ctx.tenant.app_role_assignments.get(ctx.match["assignment"])
    if assignment is None or assignment[side] != sp["id"]:
        raise not_found(ctx.match["assignment"])
    del ctx.tenant.app_role_assignments[assignment["id"]]
    return respond(ctx, None, status=204)
