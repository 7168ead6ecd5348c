"""Table Storage failing under the product in the middle of a step (the `tables` origin of the simulator:
a proxy in front of Azurite that takes fault rules).

What the product does today, shown by the test below: the application step has created the app registration
and its key in Graph, then records its progress in Table Storage (a blind merge, PATCH on the onboarding
record). That write meets 503 ServerBusy as many times as azure-data-tables tries it (once and 3 retries,
its TablesRetryPolicy default); the SDK then raises HttpResponseError (error_code "ServerBusy"). The product
does not count that as transient (shared/onboarding._is_transient knows connection errors and timeouts only),
so the step fails for good on its first attempt — no durable-timer retry — and the onboarding ends Failed at
step "application" with the Table error recorded (code HttpResponseError, Storage's message), while the
app registration it created stays in the tenant. A new run of the same onboarding converges (reuses the
certificate and the app) and completes with one of each object. The next issue makes the step retry.
"""

from __future__ import annotations

import re

from shared.onboarding import application_unique_name
from shared.state import ONBOARDINGS, StateStore, onboarding_id, tenant_of
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

SDK_ATTEMPTS = 4   # azure-data-tables: the request and retry_status=3 retries on 503


def test_a_table_503_in_the_middle_of_the_application_step_fails_the_onboarding_at_that_step(
        simulator, product, vault, admin_consent, clean_faults):
    tenant = customers(simulator)[4]["tenantId"]
    admin_consent(tenant)
    mailbox = "table-busy@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    record = rf"/{ONBOARDINGS}\(PartitionKey='{re.escape(tenant_of(oid))}',RowKey='{re.escape(oid)}'\)"
    upsert_app = rf"^/v1\.0/applications\(uniqueName='{re.escape(application_unique_name(oid))}'\)"

    # Stop the application step at its first Graph call: the certificate step is done and recorded.
    simulator.hold("application-step", origin="graph", method="PATCH", path=upsert_app)
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert started["id"] == oid
    simulator.wait_held("application-step", timeout=60)
    assert product.onboarding(oid)["step"] == "application"
    # Table Storage is busy for exactly as long as the SDK keeps trying the step's progress write.
    before = simulator.requests_since(0)["next"]
    simulator.add_faults([{"origin": "tables", "method": "PATCH", "path": record, "status": 503,
                           "count": SDK_ATTEMPTS}])
    simulator.release("application-step")

    status = product.finish(oid)
    assert status["runtimeStatus"] == "Failed", status
    assert status["status"] == "failed"
    error = status["error"]
    assert error["step"] == "application", error
    assert error["code"] == "HttpResponseError"
    assert "The server is currently unable to receive requests. Please retry your request." in error["message"]
    assert "ServerBusy" in error["message"]
    assert status["certificate"]["thumbprint"], "the certificate step's record is kept"

    served = simulator.requests_since(before)["requests"]
    writes = [r["status"] for r in served if r["origin"] == "tables" and r["method"] == "PATCH"
              and re.search(record, r["path"])]
    # the step's write: 503 on every attempt; then the failure record (an ETag-guarded merge) goes through
    assert writes[:SDK_ATTEMPTS] == [503] * SDK_ATTEMPTS
    assert writes[SDK_ATTEMPTS:], writes
    assert all(s < 300 for s in writes[SDK_ATTEMPTS:]), writes
    # The step ran once: no retry on a durable timer.
    assert len([r for r in served if r["origin"] == "graph" and re.search(upsert_app, r["path"])]) == 1
    assert not [e for e in product.history(oid)["historyEvents"] if e["EventType"] == "TimerCreated"]
    # What exists: the certificate, and the app registration with its key (created before the Table write).
    created = objects_of(simulator, vault, tenant, mailbox)
    assert created == {**ONE_OF_EACH, "servicePrincipals": 0, "appRoleAssignments": 0, "roleAssignments": 0}
    store = StateStore(product.connection_string)
    events = [e["Event"] for e in store.audit_trail(oid)]
    store.close()
    assert events == ["certificate.created", "onboarding.failed"]

    # With Table Storage back, a new run of the same onboarding converges on what exists and completes.
    again = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert again["id"] == oid
    assert product.finish(oid)["runtimeStatus"] == "Completed"
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
