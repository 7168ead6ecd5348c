"""A stand-in for `az rest` against a small in-memory Microsoft Graph, for running infra/scripts/onboarding-apps.sh
offline (tests/infra/test_scripts.py). Not part of the sandbox: the simulator has no federated-credential
endpoints and the real CLI needs a login; what the tests prove is the script's own logic (validation, read-first
idempotence, the exact JSON it sends), not Graph's.

It keeps the directory in the JSON file $FAKE_AZ_STATE and appends each call to $FAKE_AZ_LOG (JSON lines:
method, path, body). Requests follow Graph's documented shapes: the application and service-principal upserts
(PATCH by alternate key with Prefer: create-if-missing), federatedIdentityCredentials, appRoleAssignments. Output
follows the CLI: --query is JMESPath, -o tsv prints a scalar as is and a list's items tab-separated.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid

import jmespath

GRAPH = re.compile(r"^https://[^/]+/v1\.0/(?P<path>.+)$")


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status


def options(argv: list[str]) -> dict:
    """`az rest`'s options (repeated --headers collected)."""
    assert argv[:1] == ["rest"], f"fake az knows only `az rest`, got {argv[:2]}"
    found: dict = {"headers": []}
    i = 1
    while i < len(argv):
        name = argv[i]
        if name == "--only-show-errors":
            i += 1
            continue
        if name == "--headers":  # space-separated KEY=VALUE pairs, as the CLI documents; one option, not several
            assert not found["headers"], "give every header in one --headers option"
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                found["headers"].append(argv[i])
                i += 1
            continue
        value = argv[i + 1]
        if name in ("--method", "--url", "--body", "--query", "-o", "--output"):
            found[name.lstrip("-")] = value
        else:
            raise AssertionError(f"fake az: unknown option {name}")
        i += 2
    return found


def find(items: list[dict], **match) -> dict | None:
    return next((item for item in items if all(item.get(k) == v for k, v in match.items())), None)


def handle(state: dict, method: str, path: str, body: dict | None, prefer_create: bool):
    """One Graph request against the state; the response body (None for 204)."""
    apps, sps, assignments = state["applications"], state["servicePrincipals"], state["appRoleAssignments"]
    if m := re.fullmatch(r"applications\(uniqueName='([^']+)'\)", path):
        app = find(apps, uniqueName=m[1])
        if method == "GET":
            if app is None:
                raise GraphError(404, "Request_ResourceNotFound", "no such application")
            return app
        if method == "PATCH":
            if app is None:
                if not prefer_create:
                    raise GraphError(404, "Request_ResourceNotFound", "no such application")
                app = {"id": str(uuid.uuid4()), "appId": str(uuid.uuid4()), "uniqueName": m[1],
                       "federatedIdentityCredentials": []}
                apps.append(app)
            app.update(body or {})
            return None
    if m := re.fullmatch(r"servicePrincipals\(appId='([^']+)'\)", path):
        sp = find(sps, appId=m[1])
        if method == "GET":
            if sp is None:
                raise GraphError(404, "Request_ResourceNotFound", "no such service principal")
            return sp
        if method == "PATCH":
            if sp is None:
                if not prefer_create or find(apps, appId=m[1]) is None:
                    raise GraphError(400, "Request_BadRequest", "no backing application")
                sp = {"id": str(uuid.uuid4()), "appId": m[1], "appRoles": []}
                sps.append(sp)
            sp.update(body or {})
            return None
    if m := re.fullmatch(r"applications/([0-9a-f-]{36})/federatedIdentityCredentials(?:/([0-9a-f-]{36}))?", path):
        app = find(apps, id=m[1])
        if app is None:
            raise GraphError(404, "Request_ResourceNotFound", "no such application")
        credentials = app["federatedIdentityCredentials"]
        if method == "GET" and not m[2]:
            return {"value": credentials}
        if method == "POST" and not m[2]:
            if find(credentials, name=body["name"]):
                raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "the name exists")
            credentials.append({"id": str(uuid.uuid4()), **body})
            return credentials[-1]
        if method == "PATCH" and m[2]:
            credential = find(credentials, id=m[2])
            if credential is None:
                raise GraphError(404, "Request_ResourceNotFound", "no such credential")
            credential.update(body)
            return None
    if m := re.fullmatch(r"servicePrincipals/([0-9a-f-]{36})(/appRoleAssignments)?", path):
        sp = find(sps, id=m[1])
        if sp is None:
            raise GraphError(404, "Request_ResourceNotFound", "no such service principal")
        if not m[2] and method == "GET":
            return sp
        if m[2] and method == "GET":
            return {"value": [a for a in assignments if a["principalId"] == m[1]]}
        if m[2] and method == "POST":
            if find(assignments, principalId=body["principalId"], resourceId=body["resourceId"],
                    appRoleId=body["appRoleId"]):
                raise GraphError(400, "Request_BadRequest", "Permission being assigned already exists on the object")
            assignments.append({"id": str(uuid.uuid4()), **body})
            return assignments[-1]
    raise GraphError(400, "BadRequest", f"fake Graph does not serve {method} {path}")


def tsv(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\t".join(tsv(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def main(argv: list[str]) -> int:
    opts = options(argv)
    path = GRAPH.match(opts["url"])["path"]
    body = json.loads(opts["body"]) if "body" in opts else None
    prefer_create = "Prefer=create-if-missing" in opts["headers"]
    with open(os.environ["FAKE_AZ_LOG"], "a") as log:
        log.write(json.dumps({"method": opts["method"], "path": path, "body": body}) + "\n")
    with open(os.environ["FAKE_AZ_STATE"]) as f:
        state = json.load(f)
    try:
        result = handle(state, opts["method"], path, body, prefer_create)
    except GraphError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    with open(os.environ["FAKE_AZ_STATE"], "w") as f:
        json.dump(state, f)
    if "query" in opts:
        result = jmespath.search(opts["query"], result)
    if opts.get("o", opts.get("output")) == "tsv":
        print(tsv(result))
    elif result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
