"""Table Storage failing under the product in the middle of a step (the `tables` origin of the simulator: a proxy
in front of Azurite that takes fault rules).

The application step creates the app registration in Graph, then records its progress in Table
Storage (a blind merge, PATCH on the onboarding record). Here that write meets 503 ServerBusy as many times as
azure-data-tables tries it (once and 3 retries, its TablesRetryPolicy default); the SDK then raises
HttpResponseError (error_code "ServerBusy"). The step's Table writes are part of its idempotent retry: the one
classifier (shared/failures.py) counts Storage's 503 as transient (throttling), so the orchestration waits on a
durable timer and runs the whole step again. The second attempt finds the app in place (the upsert answers 204,
nothing is added), its write goes through, and the onboarding completes with one of each object.
"""

from __future__ import annotations

import json
import re
import time

from shared.onboarding import application_unique_name
from shared.state import ONBOARDINGS, StateStore, onboarding_id, tenant_of
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

SDK_ATTEMPTS = 4   # azure-data-tables: the request and retry_status=3 retries on 503


def _results(history: list[dict]) -> list[dict]:
    """The activities' results, in order (TaskCompleted events)."""
    results = [e["Result"] if isinstance(e["Result"], dict) else json.loads(e["Result"])
               for e in history if e["EventType"] == "TaskCompleted"]
    return [r for r in results if isinstance(r, dict)]


def test_a_table_503_in_the_middle_of_the_application_step_makes_the_step_retry_and_the_onboarding_completes(
        simulator, product, vault, admin_consent, clean_faults):
    tenant = customers(simulator)[4]["tenantId"]
    admin_consent(tenant)
    mailbox = "table-busy@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    record = rf"/{ONBOARDINGS}\(PartitionKey='{re.escape(tenant_of(oid))}',RowKey='{re.escape(oid)}'\)"
    upsert_app = rf"^/v1\.0/applications\(uniqueName='{re.escape(application_unique_name(oid))}'\)"

    # Stop the application step at its first Graph call, and let the certificate step beside it finish and record
    # itself: then the only write of the record to come is the application step's.
    simulator.hold("application-step", origin="graph", method="PATCH", path=upsert_app)
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert started["id"] == oid
    simulator.wait_held("application-step", timeout=60)
    deadline = time.monotonic() + 60
    while (seen := product.onboarding(oid))["steps"] != ["application"]:
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)  # polling the status
    assert seen["step"] == "application"
    # Table Storage is busy for exactly as long as the SDK keeps trying the step's progress write.
    before = simulator.requests_since(0)["next"]
    simulator.add_faults([{"origin": "tables", "method": "PATCH", "path": record, "status": 503,
                           "count": SDK_ATTEMPTS}])
    simulator.release("application-step")

    status = product.finish(oid)
    assert status["runtimeStatus"] == "Completed", status
    assert status["status"] == "completed"
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH

    served = simulator.requests_since(before)["requests"]
    writes = [r["status"] for r in served if r["origin"] == "tables" and r["method"] == "PATCH"
              and re.search(record, r["path"])]
    # the first attempt's write: 503 on every try of the SDK; every later write of the record goes through
    assert writes[:SDK_ATTEMPTS] == [503] * SDK_ATTEMPTS
    assert writes[SDK_ATTEMPTS:], writes
    assert all(s < 300 for s in writes[SDK_ATTEMPTS:]), writes
    # The step ran twice (two upserts of the app), the second time after one durable timer.
    assert len([r for r in served if r["origin"] == "graph" and r["method"] == "PATCH"
                and re.search(upsert_app, r["path"])]) == 2
    history = product.history(oid)["historyEvents"]
    retried = [r for r in _results(history) if r.get("retry")]
    assert len(retried) == 1, retried
    error = retried[0]["error"]
    assert (error["step"], error["status"], error["code"], error["waitingFor"]) == (
        "application", 503, "ServerBusy", "throttling"), error
    assert "The server is currently unable to receive requests. Please retry your request." in error["message"]
    assert len([e for e in history if e["EventType"] == "TimerFired"]) == 1

    store = StateStore(product.connection_string)
    events = [e["Event"] for e in store.audit_trail(oid)]
    store.close()
    # The retried step found the app its first attempt had created: its (one, overwritten) entry says "updated".
    # The certificate had finished before; the key, the service principal, consent and role follow the app (the
    # key beside the others, in any order); the proof and the record come last.
    assert events[:2] == ["certificate.created", "application.updated"]
    assert sorted(events[2:-2]) == sorted(["keyCredential.added", "servicePrincipal.created", "consent.granted",
                                           "directoryRole.assigned"])
    assert events[-2:] == ["proof.succeeded", "onboarding.completed"]
