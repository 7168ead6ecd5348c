"""Microsoft Graph v1.0 in the simulator: what every route module shares (request context, authorisation,
errors, the route table, JSON/OData responses). Route modules import this; nothing here imports them, so
there is no import circle. `graph.py` mounts the routes.

Sources: see graph.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import microsoft as ms
from .errors import ServiceError
from .graph_odata import (
    advanced_query,
    apply_select,
    check_options,
    next_link,
    page,
    parse_filter,
    parse_select,
    select_suffix,
)
from .tokens import Caller
from .world import Tenant, World

# Token audiences Graph accepts: the resource URI (with or without trailing slash) and the appId
# (learn.microsoft.com/entra/identity-platform/scopes-oidc#the-default-scope).
GRAPH_AUDIENCES = {"https://graph.microsoft.com", "https://graph.microsoft.com/", ms.MICROSOFT_GRAPH_APP_ID}

# Graph's JSON responses (OData v4 minimal metadata); msgraph-sdk parses by the media type before ';'.
JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;" \
                    "charset=utf-8"

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Messages not (yet) in microsoft.GRAPH_ERRORS_CATALOG, each with where it was seen.
LOCAL_ERRORS: dict[str, tuple[int, str, str]] = {
    # Directory objects addressed by a malformed id. Observed: Graph answers
    # {"code":"Request_BadRequest","message":"Invalid object identifier 'x'."} (e.g. azure-cli, terraform logs).
    "invalid_object_id": (400, "Request_BadRequest", "Invalid object identifier '{id}'."),
    # An unknown URL segment: OData's "Resource not found for the segment 'x'." (code BadRequest).
    "unknown_segment": (400, "BadRequest", "Resource not found for the segment '{segment}'."),
    # Malformed or empty JSON payloads (the wording Graph's OData front end uses).
    "invalid_json": (400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header "
                                        "is set and payload is of valid JSON format."),
    "empty_payload": (400, "BadRequest", "Empty Payload. JSON content expected."),
    # Unknown property in a body: OData ODL reader message (code BadRequest).
    "unknown_property": (400, "BadRequest", "The property '{name}' does not exist on type '{type}'. Make sure to "
                                            "only use property names that are defined by the type or mark the "
                                            "type as open type."),
    # A primitive that cannot be read as the declared EDM type (Edm.Binary, Edm.Guid, Edm.DateTimeOffset…).
    "literal_invalid": (400, "BadRequest", "Cannot convert the literal '{literal}' to the expected type '{edm}'."),
    # Generic invalid property value (Entra's directory validation), e.g. displayName too long.
    "invalid_value": (400, "Request_BadRequest", "Invalid value specified for property '{name}' of resource "
                                                 "'{resource}'."),
    "read_only": (400, "Request_BadRequest", "Property '{name}' is read-only and cannot be set."),
    "method_not_allowed": (405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri."),
}


def graph_error(key: str, **fields: Any) -> ServiceError:
    """A ServiceError from microsoft.GRAPH_ERRORS_CATALOG (Microsoft's facts) or LOCAL_ERRORS."""
    fact = ms.GRAPH_ERRORS_CATALOG.get(key)
    if fact is not None:
        return ServiceError(fact["status"], fact["code"], fact["message"].format(**fields))
    status, code, message = LOCAL_ERRORS[key]
    return ServiceError(status, code, message.format(**fields))


def not_found(object_id: str) -> ServiceError:
    """404 Request_ResourceNotFound for a directory object (learn.microsoft.com/graph/errors)."""
    return graph_error("resource_not_found", id=object_id)


def forbidden() -> ServiceError:
    """403 Authorization_RequestDenied "Insufficient privileges to complete the operation."."""
    return graph_error("insufficient_privileges")


def check_guid(value: str) -> str:
    """A directory object id in a URL must be a GUID (400 "Invalid object identifier '…'.")."""
    if not GUID_RE.match(value or ""):
        raise graph_error("invalid_object_id", id=value)
    return value.lower()


def is_guid(value: Any) -> bool:
    """Whether `value` is a GUID string."""
    return isinstance(value, str) and bool(GUID_RE.match(value))


def guid_property(value: Any) -> str:
    """An Edm.Guid property of a body (OData literal conversion error otherwise)."""
    if not is_guid(value):
        raise graph_error("literal_invalid", literal=value, edm="Edm.Guid")
    return value.lower()


# -- request context ---------------------------------------------------------------------------------

@dataclass
class Ctx:
    """One Graph request: who calls, in which tenant, with which OData options."""

    request: web.Request
    world: World
    tenant: Tenant
    caller: Caller
    match: dict[str, str]
    base: str                               # e.g. https://127.0.0.1:1234/v1.0
    query: dict[str, str] = field(default_factory=dict)   # OData options without '$', lower-case keys
    body_cache: Any = None

    # -- authorisation ---------------------------------------------------------------------------
    def require(self, operation: str, *, owned: bool | None = None, self_service: bool = False) -> tuple[str, ...]:
        """Authorise `operation` by the token's roles against GRAPH_PERMISSIONS.

        `any_of` alternatives are tried in order; a tuple alternative needs all of its permissions.
        `owned` is the ownership of the target object: when it is False, Application.ReadWrite.OwnedBy
        does not count ("It cannot update any apps that it is not an owner of",
        learn.microsoft.com/graph/permissions-reference#applicationreadwriteownedby).
        `self_service` short-cuts for operations an app may call on itself (addKey/removeKey).
        """
        if self_service:
            return ()
        facts = ms.GRAPH_PERMISSIONS[operation]
        roles = set(self.caller.roles)
        for alternative in facts["any_of"]:
            if not all(p in roles for p in alternative):
                continue
            if owned is False and alternative == ("Application.ReadWrite.OwnedBy",):
                continue
            return alternative
        raise forbidden()

    def holds(self, operation: str, *, owned: bool | None = None) -> bool:
        """Like require() but returns a bool."""
        try:
            self.require(operation, owned=owned)
            return True
        except ServiceError:
            return False

    def only_owned_by(self, operation: str) -> bool:
        """True when the caller satisfies `operation` only through Application.ReadWrite.OwnedBy."""
        roles = set(self.caller.roles)
        others = [a for a in ms.GRAPH_PERMISSIONS[operation]["any_of"]
                  if a != ("Application.ReadWrite.OwnedBy",) and all(p in roles for p in a)]
        return not others and "Application.ReadWrite.OwnedBy" in roles

    def owns(self, object_id: str) -> bool:
        """Whether the calling service principal is an owner of the object."""
        return self.caller.object_id in self.tenant.owners.get(object_id, set())

    # -- body --------------------------------------------------------------------------------------
    async def body(self, required: bool = True) -> dict:
        """The JSON object in the request body."""
        if self.body_cache is not None:
            return self.body_cache
        raw = await self.request.read()
        if not raw.strip():
            if required:
                raise graph_error("empty_payload")
            self.body_cache = {}
            return self.body_cache
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise graph_error("invalid_json") from exc
        if not isinstance(data, dict):
            raise graph_error("invalid_json")
        self.body_cache = data
        return data

    # -- responses -------------------------------------------------------------------------------
    def context_url(self, fragment: str) -> str:
        """The @odata.context value: {base}/$metadata#{fragment}."""
        return f"{self.base}/$metadata#{fragment}"


def respond(ctx: Ctx, body: dict | None, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A Graph JSON response (or an empty one for 204/202)."""
    out = {"request-id": ctx.request.get("graph_request_id", str(uuid.uuid4())),
           "client-request-id": ctx.request.headers.get("client-request-id", ""), "OData-Version": "4.0",
           "Cache-Control": "no-cache", **(headers or {})}
    if not out["client-request-id"]:
        out["client-request-id"] = out["request-id"]
    if body is None:
        return web.Response(status=status, headers=out)
    out["Content-Type"] = JSON_CONTENT_TYPE
    return web.Response(status=status, text=json.dumps(body), headers=out)


def public(obj: dict) -> dict:
    """An object without private (`_`-prefixed) keys (they are never serialised)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


# -- routing -------------------------------------------------------------------------------------------

Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler


ROUTES: list[Route] = []

# Path pieces shared by the feature modules.
Q = r"((?:[^']|'')*)"           # a quoted OData string literal's inside ('' escapes ')
APP_REF = rf"(?:/(?P<id>[^/()]+)|\(appId='(?P<appId>{Q[1:-1]})'\)|\(uniqueName='(?P<uniqueName>{Q[1:-1]})'\))"
SP_REF = rf"(?:/(?P<id>[^/()]+)|\(appId='(?P<appId>{Q[1:-1]})'\))"


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for METHOD and a regular expression over the path after /v1.0."""
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile("^" + pattern + "/?$"), handler))
        return handler
    return register


def unquote_literal(value: str | None) -> str | None:
    """An OData string literal's value ('' → ')."""
    return None if value is None else value.replace("''", "'")


# -- collection / entity responses -------------------------------------------------------------------

def list_response(ctx: Ctx, items: list[dict], entity, fragment: str,
                  serialize: Callable[[dict], dict] = public) -> web.Response:
    """A collection: $filter, $select, $top/$skiptoken and @odata.context / @odata.nextLink."""
    check_options(ctx.query)
    select = parse_select(ctx.query.get("select"), entity)
    eventual, advanced = advanced_query(ctx.query, ctx.request.headers)
    if "filter" in ctx.query:
        predicate = parse_filter(ctx.query["filter"], entity, advanced=advanced)
        items = [i for i in items if predicate(i)]
    objects = [apply_select(serialize(i), select) for i in items]
    url = ctx.base + ctx.request.path[len("/v1.0"):]
    chunk, nxt = page(objects, ctx.query, lambda token: next_link(url, ctx.query, token))
    body: dict[str, Any] = {"@odata.context": ctx.context_url(fragment + select_suffix(select))}
    # On directory objects "$count=true" without ConsistencyLevel: eventual is silently ignored
    # (graph/aad-advanced-queries, "Error handling for advanced queries"; microsoft.GRAPH_FILTER_FACTS).
    if ctx.query.get("count", "").lower() == "true" and (eventual or not entity.directory_object):
        body["@odata.count"] = len(objects)
    if nxt:
        body["@odata.nextLink"] = nxt
    body["value"] = chunk
    return respond(ctx, body)


def entity_response(ctx: Ctx, obj: dict, entity, fragment: str, status: int = 200,
                    serialize: Callable[[dict], dict] = public, headers: dict[str, str] | None = None) -> web.Response:
    """One entity with its @odata.context ({fragment}/$entity, or {fragment}(a,b)/$entity with $select)."""
    check_options(ctx.query)
    select = parse_select(ctx.query.get("select"), entity) if status == 200 else None
    body = {"@odata.context": ctx.context_url(f"{fragment}{select_suffix(select)}/$entity"),
            **apply_select(serialize(obj), select)}
    return respond(ctx, body, status=status, headers=headers)


def check_properties(body: dict, allowed: frozenset[str], type_name: str) -> None:
    """Reject properties the type does not define (instance annotations like @odata.type are fine)."""
    for name in body:
        if name.startswith("@") or "@odata." in name:
            continue
        if name not in allowed:
            raise graph_error("unknown_property", name=name, type=f"microsoft.graph.{type_name}")
