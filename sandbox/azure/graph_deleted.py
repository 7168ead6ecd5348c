"""Graph /directory/deletedItems: soft-deleted applications and service principals (list, get, restore,
permanent delete), and the soft deletion that DELETE /applications/{id} and DELETE /servicePrincipals/{id} do.

Sources (learn.microsoft.com/graph/api/…; facts and marks in microsoft.SOFT_DELETE_FACTS):
  application-delete                 the app moves to a temporary container, restorable for 30 days.
  directory-deleteditems-list        GET /directory/deletedItems/microsoft.graph.{application|servicePrincipal};
                                     the cast is required; 100 objects per page by default, $top up to 999.
  directory-deleteditems-get         GET /directory/deletedItems/{id} → directoryObject.
  directory-deleteditems-restore     POST …/{id}/restore → 200 + directoryObject; restoring an application does not
                                     restore its service principal.
  directory-deleteditems-delete      DELETE …/{id} → 204; permanent.
  entra/identity/enterprise-apps/restore-application  deleting an app registration deletes its home-tenant
                                     service principal too.
A stored item is {"kind", "object", "deletedAt" (sandbox epoch), "owners", "clientSecrets", "links"}: `links`
are the app role assignments and role assignments that referenced a deleted service principal, put back on
restore when the other side still exists.
"""

from __future__ import annotations

from aiohttp import web

from . import microsoft as ms
from .graph_base import Ctx, check_guid, graph_error, list_response, not_found, respond, route
from .world import Tenant, World

KINDS = {"application": "#microsoft.graph.application", "servicePrincipal": "#microsoft.graph.servicePrincipal"}
_ROOT = r"/(?i:directory/deletedItems)"


# -- soft deletion (called by graph_apps / graph_sps) --------------------------------------------------

def live_items(world: World, tenant: Tenant) -> dict[str, dict]:
    """The tenant's deleted items, after dropping those older than the retention period (sandbox clock)."""
    horizon = world.clock.epoch() - ms.DELETED_ITEMS_RETENTION_SECONDS
    for object_id in [i for i, item in tenant.deleted_items.items() if item["deletedAt"] <= horizon]:
        del tenant.deleted_items[object_id]
    return tenant.deleted_items


def unique_name_held(world: World, tenant: Tenant, unique_name: str) -> bool:
    """Whether a soft-deleted application still holds this uniqueName (SOFT_DELETE_FACTS["unique_name"])."""
    wanted = unique_name.lower()
    return any(item["kind"] == "application" and (item["object"].get("uniqueName") or "").lower() == wanted
               for item in live_items(world, tenant).values())


def _store(world: World, tenant: Tenant, kind: str, obj: dict, links: list[tuple[str, dict]]) -> None:
    obj["deletedDateTime"] = world.now_iso()
    tenant.deleted_items[obj["id"]] = {
        "kind": kind, "object": obj, "deletedAt": world.clock.epoch(),
        "owners": tenant.owners.pop(obj["id"], set()), "clientSecrets": tenant.client_secrets.pop(obj["id"], None),
        "links": links,
    }
    tenant.created_at.pop(obj["id"], None)


def soft_delete_service_principal(world: World, tenant: Tenant, sp: dict) -> None:
    """Move a service principal to deleted items with the assignments that reference it."""
    links: list[tuple[str, dict]] = []
    for assignment_id, a in list(tenant.app_role_assignments.items()):
        if sp["id"] in (a["principalId"], a["resourceId"]):
            links.append(("appRoleAssignment", tenant.app_role_assignments.pop(assignment_id)))
    for assignment_id, a in list(tenant.role_assignments.items()):
        if a["principalId"] == sp["id"]:
            links.append(("roleAssignment", tenant.role_assignments.pop(assignment_id)))
    tenant.service_principals.pop(sp["id"], None)
    _store(world, tenant, "servicePrincipal", sp, links)


def soft_delete_application(world: World, tenant: Tenant, app: dict) -> None:
    """Move an application to deleted items; its service principal in this (its home) tenant goes too."""
    tenant.applications.pop(app["id"], None)
    _store(world, tenant, "application", app, [])
    sp = tenant.service_principal_by_app_id(app["appId"])
    if sp is not None:
        soft_delete_service_principal(world, tenant, sp)


# -- serialisation ---------------------------------------------------------------------------------

def _serialize(item: dict) -> dict:
    from .graph_apps import serialize_app
    from .graph_sps import serialize_sp

    obj = item["object"]
    body = serialize_app(obj) if item["kind"] == "application" else serialize_sp(obj)
    return {"@odata.type": KINDS[item["kind"]], **body}


def _item(ctx: Ctx) -> dict:
    object_id = check_guid(ctx.match["id"])
    item = live_items(ctx.world, ctx.tenant).get(object_id)
    if item is None:
        raise not_found(object_id)
    return item


# -- restore -----------------------------------------------------------------------------------------

def _restore_application(ctx: Ctx, item: dict) -> None:
    tenant, app = ctx.tenant, item["object"]
    unique_name = app.get("uniqueName")
    if unique_name and tenant.application_by_unique_name(unique_name) is not None:
        raise graph_error("unique_name_held_by_deleted_app")
    tenant.applications[app["id"]] = app
    tenant.owners[app["id"]] = set(item["owners"])
    if item["clientSecrets"] is not None:
        tenant.client_secrets[app["id"]] = item["clientSecrets"]


def _restore_service_principal(ctx: Ctx, item: dict) -> None:
    from .graph_sps import no_backing_application, sp_error

    tenant, world, sp = ctx.tenant, ctx.world, item["object"]
    if tenant.service_principal_by_app_id(sp["appId"]) is not None:
        raise sp_error("sp_exists")
    if world.home_application(sp["appId"]) is None:  # SOFT_DELETE_FACTS["restore_sp_without_app"]
        raise no_backing_application(sp["appId"])
    tenant.service_principals[sp["id"]] = sp
    tenant.owners[sp["id"]] = set(item["owners"])
    for kind, link in item["links"]:
        if kind == "appRoleAssignment":
            others = {link["principalId"], link["resourceId"]} - {sp["id"]}
            if all(o in tenant.service_principals for o in others):
                tenant.app_role_assignments.setdefault(link["id"], link)
        elif link["roleDefinitionId"] in tenant.role_definitions:
            tenant.role_assignments.setdefault(link["id"], link)


# -- routes ------------------------------------------------------------------------------------------

@route("GET", _ROOT)
async def list_without_cast(ctx: Ctx) -> web.StreamResponse:
    """The cast is required (directory-deleteditems-list)."""
    ctx.require("deletedItems.list")
    raise graph_error("deleted_items_cast_required")


# msgraph-sdk writes the cast with the CSDL namespace alias (graph.application), the docs in full.
@route("GET", _ROOT + r"/(?i:(?:microsoft\.)?graph\.)(?P<cast>application|servicePrincipal)")
async def list_deleted_items(ctx: Ctx) -> web.StreamResponse:
    """Deleted applications or service principals, with the cast type's own $filter / $select / paging."""
    from .graph_apps import APPLICATION
    from .graph_sps import SERVICE_PRINCIPAL

    ctx.require("deletedItems.list")
    kind = ctx.match["cast"]
    items = [i for i in live_items(ctx.world, ctx.tenant).values() if i["kind"] == kind]
    entity = APPLICATION if kind == "application" else SERVICE_PRINCIPAL
    fragment = "applications" if kind == "application" else "servicePrincipals"
    # The filter runs on the objects as stored; the response shows them as Graph returns them.
    by_object = {id(i["object"]): i for i in items}
    return list_response(ctx, [i["object"] for i in items], entity, fragment,
                         serialize=lambda obj: _serialize(by_object[id(obj)]))


@route("GET", _ROOT + r"/(?P<id>[^/.]+)")
async def get_deleted_item(ctx: Ctx) -> web.StreamResponse:
    ctx.require("deletedItems.get")
    body = {"@odata.context": ctx.context_url("directoryObjects/$entity"), **_serialize(_item(ctx))}
    return respond(ctx, body)


@route("POST", _ROOT + r"/(?P<id>[^/.]+)/restore")
async def restore_deleted_item(ctx: Ctx) -> web.StreamResponse:
    """Restore one object (its service principal is not restored with an application)."""
    item = _item(ctx)
    ctx.require("deletedItems.restore", owned=ctx.caller.object_id in item["owners"])
    if item["kind"] == "application":
        _restore_application(ctx, item)
    else:
        _restore_service_principal(ctx, item)
    item["object"]["deletedDateTime"] = None
    del ctx.tenant.deleted_items[item["object"]["id"]]
    body = {"@odata.context": ctx.context_url("directoryObjects/$entity"), **_serialize(item)}
    return respond(ctx, body)


@route("DELETE", _ROOT + r"/(?P<id>[^/.]+)")
async def delete_deleted_item(ctx: Ctx) -> web.StreamResponse:
    """Permanently delete one object: it and the links it kept are gone."""
    item = _item(ctx)
    ctx.require("deletedItems.delete", owned=ctx.caller.object_id in item["owners"])
    del ctx.tenant.deleted_items[item["object"]["id"]]
    return respond(ctx, None, status=204)


__all__ = ["live_items", "soft_delete_application", "soft_delete_service_principal", "unique_name_held"]
