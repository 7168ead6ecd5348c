"""Microsoft Graph v1.0, as the product calls it: applications, service principals, app role
assignments, directory role assignments, organization and sendMail.

Every call is authenticated (`auth.caller_for`, Graph audiences only), runs in the directory of the
token's `tid`, and is authorised by the token's `roles` against ``microsoft.GRAPH_PERMISSIONS`` (the
Application row of each operation's documented Permissions table). Responses carry the
``@odata.context`` Graph sends; errors have Graph's shape (errors.graph_error_body) and the codes and
messages Microsoft documents or that were observed from the real service (each with its source).

Layout:
  graph.py           mounts the routes and dispatches a request to its handler (this file)
  graph_base.py      request context, authorisation, errors, the route table, JSON/OData responses
  graph_odata.py     $filter / $select / $top / paging
  graph_apps.py      /applications (+ keyCredentials validation, addKey / removeKey proofs)
  graph_sps.py       /servicePrincipals (+ appRoleAssignedTo / appRoleAssignments)
  graph_directory.py /roleManagement/directory, /organization, /users/{id}/sendMail

General sources:
  https://learn.microsoft.com/graph/errors (error shape, status codes)
  https://learn.microsoft.com/graph/query-parameters (OData options; `$` prefix optional in v1.0)
  https://learn.microsoft.com/graph/paging (@odata.nextLink)
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

# The route modules register their @route handlers in graph_base.ROUTES when imported.
from . import graph_apps, graph_deleted, graph_directory, graph_policies, graph_sps  # noqa: F401
from .auth import caller_for
from .errors import ServiceError, graph_error_body
from .graph_base import GRAPH_AUDIENCES, ROUTES, Ctx, graph_error
from .world import World


def unknown_segment(path: str) -> str:
    """The first segment of `path` that no route resolves ("Resource not found for the segment '…'." names it:
    /applications/{id}/bogus → 'bogus'). A prefix resolves when a route matches it whole, or when it is a
    literal step of a route (/roleManagement, /roleManagement/directory)."""
    segments = [s for s in path.split("/") if s]
    literal_prefixes = set()
    for route_ in ROUTES:
        literal = re.match(r"\^((?:/[A-Za-z][A-Za-z0-9.]*)+)", route_.pattern.pattern)
        if literal:
            steps = literal.group(1).split("/")[1:]
            literal_prefixes.update("/" + "/".join(steps[:i]) for i in range(1, len(steps) + 1))

    def resolves(prefix: str) -> bool:
        return prefix in literal_prefixes or any(r.pattern.match(prefix) for r in ROUTES)

    for index in range(len(segments), 0, -1):
        if resolves("/" + "/".join(segments[:index])):
            return segments[index].split("(")[0] if index < len(segments) else segments[-1]
    return (segments[0].split("(")[0] or segments[0]) if segments else path


def error_response(request: web.Request, exc: ServiceError) -> web.Response:
    """Graph's error shape with this request's ids: `request-id` and `client-request-id` (the caller's, or a new
    one) as headers and in innerError (learn.microsoft.com/graph/errors: "innerError … client-request-id")."""
    request_id = request.get("graph_request_id") or str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or request_id
    body = graph_error_body(exc.code, exc.message)
    body["error"]["innerError"].update({"request-id": request_id, "client-request-id": client_request_id})
    body.update(exc.extra)
    headers = {"Cache-Control": "no-store", **exc.headers, "request-id": request_id,
               "client-request-id": client_request_id}
    return web.json_response(body, status=exc.status, headers=headers)


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Authenticate, find the route, and run its handler; errors carry the request's ids."""
    request["graph_request_id"] = str(uuid.uuid4())
    try:
        return await _dispatch(request)
    except ServiceError as exc:
        return error_response(request, exc)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    world: World = request.app["world"]
    caller = caller_for(request, GRAPH_AUDIENCES)
    tenant = world.tenants[caller.tenant_id]
    path = request.match_info.get("tail", "")
    path = "/" + path.strip("/") if path.strip("/") else "/"
    candidates = [(r, m) for r in ROUTES if (m := r.pattern.match(path))]
    if not candidates:
        raise graph_error("unknown_segment", segment=unknown_segment(path))
    chosen = next(((r, m) for r, m in candidates if r.method == request.method), None)
    if chosen is None:
        raise graph_error("method_not_allowed")
    route_, match = chosen
    query = {}
    for key, value in request.query.items():
        name = key[1:] if key.startswith("$") else key
        query[name.lower()] = value
    base = request.app["urls"]["graph"] + "/v1.0"
    ctx = Ctx(request=request, world=world, tenant=tenant, caller=caller,
              match={k: v for k, v in match.groupdict().items() if v is not None}, base=base, query=query)
    return await route_.handler(ctx)


def setup(app: web.Application) -> None:
    """Mount Graph v1.0 on the graph origin."""
    app["graph_state"] = {"replication_attempts": {}}
    app.router.add_route("*", "/v1.0/{tail:.*}", dispatch)
    app.router.add_route("*", "/v1.0", dispatch)
