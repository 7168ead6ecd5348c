"""Offboarding a manual onboarding end to end: certauth holds no write permission in the tenant, so DELETE waits for
the admin's removal script (GET …/removal-script, run by the test's ScriptAdmin as the tenant's admin against the
simulator, as tests/e2e/test_manual_method.py runs the setup script), then checks read-only as the verifier (on
POST …/verify-removal, or on its own poll, a durable timer), deletes its certificate and retires the onboarding.

Tenant: customers(simulator)[8] (nobody else uses it)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from shared.keyvault import certificate_name
from tests.conftest import customers
from tests.e2e.conftest import Product, objects_of
from tests.e2e.test_manual_method import run_script, script_of, verify, wait_status
from tests.e2e.test_offboarding import NOTHING, Admin, follow, offboard, refused, started

pytestmark = pytest.mark.timeout(300)

TENANT_INDEX = 8
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def tenant(simulator):
    """The tenant; the scripts' sign-ins give its provisioner their scopes: its own roles come back after."""
    chosen = customers(simulator)[TENANT_INDEX]
    yield chosen
    simulator.grant(chosen["tenantId"], simulator.info["defaultProvisionerRoles"])


def manual_onboarding(simulator, product: Product, tenant: dict, mailbox: str) -> dict:
    tenant_id = tenant["tenantId"]
    oid = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})["id"]
    wait_status(product, oid, "waitingForAdmin")
    run_script(simulator, tenant, script_of(product, oid, tenant_id))
    simulator.consent_verifier(tenant_id)
    verify(product, oid)
    final = product.finish(oid)
    assert final["status"] == "completed", final
    return final


def removal_script_of(product: Product, oid: str, tenant_id: str, query: str = "") -> bytes:
    response = product.api("GET", f"/onboardings/{oid}/removal-script{query}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert f'filename="certauth-remove-{tenant_id}.ps1"' in response.headers["Content-Disposition"]
    assert response.content.startswith(BOM)
    assert response.content[len(BOM):].isascii()
    return response.content


def status_until(url: str, wanted, timeout: float = 60) -> dict:
    """Poll the offboarding's status URL (202 while it waits; no time passes on the sandbox clock) until `wanted`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(url, timeout=30)
        assert response.status_code == 202, response.text
        if wanted(response.json()):
            return response.json()
        time.sleep(0.05)
    raise AssertionError(f"the offboarding status never got there: {response.text}")


def test_the_removal_script_run_by_the_admin_leads_to_a_verified_retirement(simulator, product, vault, state,
                                                                            tenant):
    tenant_id = tenant["tenantId"]
    mailbox = f"manual-offboard-{uuid.uuid4().hex[:8]}@contoso.com"
    first = manual_onboarding(simulator, product, tenant, mailbox)
    oid = first["id"]
    refused(product.api("POST", f"/onboardings/{oid}/verify-removal"), 409, "NotWaitingForAdmin")

    url = started(offboard(product, oid), oid)
    waiting = status_until(url, lambda body: body["status"] == "waitingForAdmin")  # the first activity records it
    assert waiting["method"] == "manual"
    assert waiting["removalScriptUrl"].endswith(f"/api/onboardings/{oid}/removal-script")
    assert waiting["verifyRemovalUrl"].endswith(f"/api/onboardings/{oid}/verify-removal")
    assert waiting["deadline"]

    # The admin says it ran before running it: the read-only check finds everything still there, and waits on.
    mark = simulator.requests_since()["next"]
    accepted = product.api("POST", f"/onboardings/{oid}/verify-removal")
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"].split("?")[0] == url.split("?")[0]
    waiting = status_until(url, lambda body: body["remaining"])
    assert waiting["status"] == "waitingForAdmin"
    assert any(item.startswith("application ") and "still exists" in item for item in waiting["remaining"])
    assert any(item.startswith("service principal ") for item in waiting["remaining"])
    graph = [r for r in simulator.requests_since(mark)["requests"] if r["origin"] == "graph"]
    assert graph, "the check read nothing"
    assert {r["method"] for r in graph} == {"GET"}  # certauth only reads in the manual method's tenant

    script = removal_script_of(product, oid, tenant_id)
    admin = run_script(simulator, tenant, script)
    deletes = [call.url for call in admin.calls if call.method == "DELETE"]
    assert len(deletes) == 1 + 4 + 1 + 1, deletes   # the role, the four grants, the service principal, the app
    assert objects_of(simulator, vault, tenant_id, mailbox) == NOTHING
    assert run_script(simulator, tenant, script).writes() == []   # again: nothing left to remove

    # No verify this time: certauth's own poll (a durable timer; the test moves the sandbox clock) confirms it.
    final = follow(product, url, f"offboarding-{oid}")
    assert final["status"] == "retired", final
    assert final["remaining"] == []
    assert "application" in " ".join(final["removed"]["verified"])
    assert final["certificate"]["state"] == "softDeleted"
    assert vault.get_deleted_certificate(certificate_name(oid)) is not None
    assert product.onboarding(oid)["status"] == "retired"
    events = [e["Event"] for e in state.audit_trail(oid)]
    assert events[-2:] == ["offboarding.certificateSoftDeleted", "onboarding.retired"], events
    assert "offboarding.removalIncomplete" in events
    refused(product.api("POST", f"/onboardings/{oid}/verify-removal"), 409, "NotWaitingForAdmin")


def test_a_permanent_manual_offboarding_empties_deleted_items_too(simulator, product, vault, tenant):
    tenant_id = tenant["tenantId"]
    mailbox = f"manual-offboard-permanent-{uuid.uuid4().hex[:8]}@contoso.com"
    first = manual_onboarding(simulator, product, tenant, mailbox)
    oid = first["id"]
    app_id = first["application"]["appId"]

    url = started(offboard(product, oid, permanent=True), oid)
    # The soft script first (as an admin may have run it): what it leaves in deleted items keeps the offboarding open.
    run_script(simulator, tenant, removal_script_of(product, oid, tenant_id, "?permanent=false"))
    admin = Admin(simulator, tenant)
    assert len(admin.deleted("application", f"appId eq '{app_id}'")) == 1
    assert product.api("POST", f"/onboardings/{oid}/verify-removal").status_code == 202
    waiting = status_until(url, lambda body: any("deleted items" in item for item in body["remaining"]))
    assert waiting["permanent"] is True

    # The permanent script (the offboarding's own: permanent) removes what the first run left in deleted items.
    script = removal_script_of(product, oid, tenant_id)
    ran = run_script(simulator, tenant, script)
    assert [call.cmdlet for call in ran.writes()] == ["remove-mgdirectorydeleteditem"] * 2
    assert admin.deleted("application", f"appId eq '{app_id}'") == []
    assert admin.deleted("servicePrincipal", f"appId eq '{app_id}'") == []
    assert product.api("POST", f"/onboardings/{oid}/verify-removal").status_code == 202
    final = follow(product, url, f"offboarding-{oid}")
    assert final["status"] == "retired", final
    assert final["certificate"]["state"] == "purged"
    assert "nothing in deleted items" in final["removed"]["verified"]
