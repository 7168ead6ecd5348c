"""The first Graph calls of a fresh process, through shared.graph against the simulator: msgraph-sdk sends them,
and reading the answers loads a few of msgraph's model modules, not the 1,200 of Entity's subtypes (msgraph's own
models load them all on the first object they read: msgraph-sdk-python#909)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import GRAPH_APP_ID, unique

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, json, sys

from azure.identity import ClientSecretCredential

from shared.graph import Directory, OffLoopCredential, graph_client
from shared.settings import Settings

args = json.loads(sys.argv[1])
settings = Settings(graph_base_url=args["graphUrl"])
credential = ClientSecretCredential(args["tenantId"], args["clientId"], args["clientSecret"],
                                    authority=args["authorityHost"], disable_instance_discovery=True)


async def main():
    directory = Directory(graph_client(settings, OffLoopCredential(credential)))
    app = await directory.upsert_application(args["uniqueName"], "certauth cold start", {})
    again = await directory.upsert_application(args["uniqueName"], "certauth cold start", {})
    sp = await directory.upsert_service_principal(app["appId"])
    resource, roles = await directory.resource_roles(args["graphAppId"])
    held = await directory.app_role_assignments(sp["id"])
    found = await directory.application_by_unique_name(args["uniqueName"])
    return {"app": app, "again": again, "sp": sp, "resource": resource, "roles": len(roles), "held": held,
            "found": found}


result = asyncio.run(main())
result["models"] = sorted(m for m in sys.modules if m.startswith("msgraph.generated.models."))
print(json.dumps(result))
"""


def test_the_first_graph_calls_read_answers_without_msgraphs_model_tree(simulator, home):
    # The child inherits SSL_CERT_FILE (tests/conftest.py): httpx trusts the simulator's CA, as the host does.
    args = {"graphUrl": simulator.info["graphUrl"], "authorityHost": simulator.info["authorityHost"],
            "tenantId": home["tenantId"], "clientId": home["provisioner"]["clientId"],
            "clientSecret": home["provisioner"]["clientSecret"], "uniqueName": unique("certauth-cold"),
            "graphAppId": GRAPH_APP_ID}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    app, again, sp = result["app"], result["again"], result["sp"]
    assert app["created"] is True
    assert again["created"] is False
    assert (again["id"], again["appId"]) == (app["id"], app["appId"])
    assert app["createdDateTime"]
    assert sp["created"] is True
    assert sp["id"]
    assert result["resource"]
    assert result["roles"] > 10
    assert result["held"] == []
    assert result["found"] == {"id": app["id"], "appId": app["appId"]}
    # msgraph's own model for any of these answers would have imported over a thousand modules
    assert len(result["models"]) < 100, len(result["models"])
    assert "msgraph.generated.models.workbook_chart_area_format" not in result["models"]
