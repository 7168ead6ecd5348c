"""Offboarding end to end: DELETE /api/onboardings/{id} on the product's function_app (sandbox host), against the
simulator's Graph and Key Vault, followed through the offboarding's own status URL.

Tenant: customers(simulator)[8] (nobody else uses it); every mailbox is unique to its test."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import ClientSecretCredential

from shared.keyvault import certificate_name
from shared.onboarding import application_unique_name
from shared.state import expiry_day, onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, Product, objects_of

pytestmark = pytest.mark.timeout(300)

TENANT_INDEX = 8
NOTHING = {"applications": 0, "keys": 0, "servicePrincipals": 0, "appRoleAssignments": 0, "roleAssignments": 0,
           "certificateVersions": 0}


def _zulu(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def follow(product: Product, url: str, instance: str, timeout: float = 120) -> dict:
    """Poll a status URL as a poller would (no header) until it answers 200; while it answers 202 (with its own
    Location and a Retry-After), move the sandbox clock to each pending durable timer of `instance`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(url, timeout=30)
        product.responses.append(response.text)
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 202, response.text
        assert response.headers["Location"] == url
        assert int(response.headers["Retry-After"]) >= 1
        events = (product.status(instance, history=True) or {}).get("historyEvents") or []
        fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
        pending = [e for e in events if e["EventType"] == "TimerCreated" and e.get("EventId") not in fired]
        if pending:
            now = _zulu(product.simulator.admin("GET", "/clock")["now"])
            due = min(_zulu(e["FireAt"]) for e in pending)
            if due > now:
                product.simulator.advance_clock((due - now).total_seconds() + 0.5)
        time.sleep(0.05)  # polling the status, not waiting for time to pass
    raise AssertionError(f"{instance} did not end\n" + "\n".join(product.stderr_lines[-40:]))


def refused(response: requests.Response, status: int, code: str) -> None:
    """An error answer in Azure's shape with this status and code."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["x-ms-error-code"] == code


def offboard(product: Product, oid: str, *, permanent: bool = False) -> requests.Response:
    return product.api("DELETE", f"/onboardings/{oid}" + ("?permanent=true" if permanent else ""))


def started(response: requests.Response, oid: str) -> str:
    """The DELETE's 202: the offboarding's own status URL in Location and the body."""
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert urlsplit(location).path == f"/api/onboardings/{oid}/offboarding"
    assert "token=" in location
    assert response.json()["statusQueryGetUri"] == location
    assert int(response.headers["Retry-After"]) >= 1
    return location


class Admin:
    """The tenant's administrator reading Graph directly (the seeded provisioner, Application.Read.All)."""

    def __init__(self, simulator, tenant: dict) -> None:
        self.graph = simulator.info["graphUrl"]
        self.credential = ClientSecretCredential(
            tenant["tenantId"], tenant["provisioner"]["clientId"], tenant["provisioner"]["clientSecret"],
            authority=simulator.info["authorityHost"], disable_instance_discovery=True)

    def deleted(self, cast: str, filter: str) -> list[dict]:
        token = self.credential.get_token("https://graph.microsoft.com/.default").token
        response = requests.get(f"{self.graph}/directory/deletedItems/microsoft.graph.{cast}",
                                params={"$filter": filter}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["value"]


@pytest.fixture
def tenant(simulator, admin_consent) -> dict:
    chosen = customers(simulator)[TENANT_INDEX]
    admin_consent(chosen["tenantId"])
    return chosen


def onboarded(product: Product, tenant_id: str, mailbox: str) -> dict:
    final = product.finish(product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox})["id"])
    assert final["status"] == "completed", final
    return final


def graph_writes(simulator, mark: int) -> list[dict]:
    return [r for r in simulator.requests_since(mark)["requests"] if r["origin"] == "graph" and r["method"] != "GET"]


def test_offboarding_removes_everything_retires_the_records_is_a_no_op_twice_and_the_pair_onboards_again(
        simulator, product, vault, state, tenant):
    tenant_id = tenant["tenantId"]
    mailbox = f"offboard-{uuid.uuid4().hex[:8]}@contoso.com"
    first = onboarded(product, tenant_id, mailbox)
    oid = first["id"]
    assert objects_of(simulator, vault, tenant_id, mailbox) == ONE_OF_EACH
    not_after = _zulu(first["certificate"]["notAfter"])

    # The status URL answers 202 while the offboarding runs: the app's DELETE is held until the test looks.
    simulator.hold("offboard-app", origin="graph", method="DELETE", path=r"^/v1\.0/applications/")
    try:
        url = started(offboard(product, oid), oid)
        simulator.wait_held("offboard-app")
        running = requests.get(url, timeout=30)
        assert running.status_code == 202, running.text
        body = running.json()
        assert (body["status"], body["step"], body["permanent"]) == ("running", "application", False)
        assert body["removed"]["servicePrincipal"] == first["servicePrincipalId"]
        # Meanwhile a new onboarding of the pair, or a second DELETE with other options, is refused.
        again = product.api("POST", "/onboardings", json={"tenantId": tenant_id, "serviceMailbox": mailbox})
        refused(again, 409, "OffboardingInProgress")
        other = offboard(product, oid, permanent=True)
        refused(other, 409, "OffboardingInProgress")
        refused(product.api("POST", f"/onboardings/{oid}/rotate", json={}), 409, "OffboardingInProgress")
        assert started(offboard(product, oid), oid)  # the same options join it
    finally:
        simulator.release("offboard-app")
    final = follow(product, url, f"offboarding-{oid}")
    assert final["status"] == "retired", final
    assert final["removed"]["directoryRoleAssignments"] == ["29232cdf-9323-42fd-ade2-1d097af3e4de"]
    assert len(final["removed"]["appRoleAssignments"]) == 4
    assert final["removed"]["application"] == first["application"]["objectId"]
    assert final["certificate"]["state"] == "softDeleted"
    assert final["certificate"]["scheduledPurgeDate"]

    # Nothing active in Graph; the app and its service principal are in deleted items; the certificate is
    # soft-deleted in Key Vault; the records say retired; the expiry index no longer holds the certificate.
    assert objects_of(simulator, vault, tenant_id, mailbox) == NOTHING
    admin = Admin(simulator, tenant)
    [deleted_app] = admin.deleted("application", f"uniqueName eq '{application_unique_name(oid)}'")
    assert deleted_app["appId"] == first["application"]["appId"]
    assert [s["id"] for s in admin.deleted("servicePrincipal", f"appId eq '{deleted_app['appId']}'")] == [
        first["servicePrincipalId"]]
    with pytest.raises(ResourceNotFoundError):
        vault.get_certificate(certificate_name(oid))
    assert vault.get_deleted_certificate(certificate_name(oid)).properties.x509_thumbprint.hex().upper() == \
        first["certificate"]["thumbprint"]
    status = product.onboarding(oid)
    assert status["status"] == "retired"
    assert status["offboarding"]["state"] == "retired"
    assert not [e for e in state.certificates_expiring_by_day(None, expiry_day(not_after)) if e["RowKey"] == oid]
    events = [e["Event"] for e in state.audit_trail(oid)]
    assert events[-7:] == ["offboarding.started", "offboarding.directoryRolesRemoved",
                           "offboarding.appRoleAssignmentsRemoved", "offboarding.servicePrincipalDeleted",
                           "offboarding.applicationDeleted", "offboarding.certificateSoftDeleted",
                           "onboarding.retired"], events

    # A second DELETE changes nothing and reports the earlier result.
    mark = simulator.requests_since()["next"]
    second = offboard(product, oid)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "retired"
    assert second.json()["retiredAt"] == final["retiredAt"]
    assert graph_writes(simulator, mark) == []

    # An administrator onboards the pair again: the app comes back from deleted items, the certificate is recovered.
    back = onboarded(product, tenant_id, mailbox)
    assert back["application"]["appId"] == first["application"]["appId"]
    assert back["certificate"]["thumbprint"] == first["certificate"]["thumbprint"]
    assert objects_of(simulator, vault, tenant_id, mailbox) == ONE_OF_EACH
    assert back["offboarding"]["applicationRestoredAt"]

    # Offboarded again, permanently: nothing in deleted items, the certificate purged (this vault allows it).
    final = follow(product, started(offboard(product, oid, permanent=True), oid), f"offboarding-{oid}")
    assert final["status"] == "retired", final
    assert final["permanent"] is True
    # The first service principal stayed in deleted items when the app was restored (Graph restores the app alone;
    # the re-onboarding made a new one): both go now, with the app.
    assert sorted(final["removed"]["deletedPermanently"]) == sorted([first["servicePrincipalId"],
                                                                     back["servicePrincipalId"],
                                                                     first["application"]["objectId"]])
    assert final["certificate"]["state"] == "purged"
    assert objects_of(simulator, vault, tenant_id, mailbox) == NOTHING
    assert admin.deleted("application", f"uniqueName eq '{application_unique_name(oid)}'") == []
    assert admin.deleted("servicePrincipal", f"appId eq '{first['application']['appId']}'") == []
    with pytest.raises(ResourceNotFoundError):
        vault.get_deleted_certificate(certificate_name(oid))


def test_a_soft_offboarding_then_a_permanent_one_empties_deleted_items_and_purge_protection_is_reported(
        simulator, product, vault, tenant):
    tenant_id = tenant["tenantId"]
    mailbox = f"offboard-protected-{uuid.uuid4().hex[:8]}@contoso.com"
    first = onboarded(product, tenant_id, mailbox)
    oid = first["id"]
    assert follow(product, started(offboard(product, oid), oid), f"offboarding-{oid}")["status"] == "retired"
    simulator.admin("PUT", "/vault", {"enablePurgeProtection": True})
    try:
        # Retired already: a permanent DELETE is not a no-op, it runs again for what the first left.
        final = follow(product, started(offboard(product, oid, permanent=True), oid), f"offboarding-{oid}")
    finally:
        simulator.admin("PUT", "/vault", {"enablePurgeProtection": False})
    assert final["status"] == "retired", final
    assert sorted(final["removed"]["deletedPermanently"]) == sorted([first["servicePrincipalId"],
                                                                     first["application"]["objectId"]])
    assert final["removed"]["application"] is None   # gone already: found in deleted items only
    # Purge protection keeps the certificate soft-deleted until its retention ends: the documented behaviour.
    assert final["certificate"]["state"] == "softDeleted"
    assert final["certificate"]["recoveryLevel"] == "Recoverable"
    assert "purge protection" in final["certificate"]["note"]
    assert vault.get_deleted_certificate(certificate_name(oid)) is not None
    assert Admin(simulator, tenant).deleted("application", f"uniqueName eq '{application_unique_name(oid)}'") == []


def test_delete_answers_409_while_an_onboarding_or_a_rotation_runs_and_404_for_an_unknown_one(
        simulator, product, tenant):
    from tests.e2e.test_rotation import _follow

    tenant_id = tenant["tenantId"]
    unknown = onboarding_id(tenant_id, f"nobody-{uuid.uuid4().hex[:8]}@contoso.com")
    missing = offboard(product, unknown)
    refused(missing, 404, "OnboardingNotFound")
    assert product.api("DELETE", "/onboardings/not-an-id").status_code == 400
    assert product.api("DELETE", f"/onboardings/{unknown}?permanent=maybe").status_code == 400

    mailbox = f"offboard-busy-{uuid.uuid4().hex[:8]}@contoso.com"
    oid = onboarding_id(tenant_id, mailbox)
    simulator.hold("onboard-app", origin="graph", method="PATCH", path=r"^/v1\.0/applications")
    try:
        product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox})
        simulator.wait_held("onboard-app")
        busy = offboard(product, oid)
        refused(busy, 409, "OnboardingInProgress")
    finally:
        simulator.release("onboard-app")
    assert product.finish(oid)["status"] == "completed"

    rotate = product.api("POST", f"/onboardings/{oid}/rotate")
    assert rotate.status_code == 202, rotate.text
    rotating = offboard(product, oid)
    refused(rotating, 409, "RotationInProgress")
    _follow(product, f"rotation-{oid}", lambda d: d.get("runtimeStatus") == "Completed", timeout=180)
    assert follow(product, started(offboard(product, oid), oid), f"offboarding-{oid}")["status"] == "retired"
    # The removal script is the manual method's: an automatic onboarding has none.
    script = product.api("GET", f"/onboardings/{oid}/removal-script")
    assert script.status_code == 409
    assert script.json()["error"]["code"] == "NotManualOnboarding"


def test_the_status_url_needs_its_own_token(simulator, product, tenant):
    mailbox = f"offboard-token-{uuid.uuid4().hex[:8]}@contoso.com"
    posted = product.onboard({"tenantId": tenant["tenantId"], "serviceMailbox": mailbox})
    oid = posted["id"]
    assert product.finish(oid)["status"] == "completed"
    url = started(offboard(product, oid), oid)
    assert follow(product, url, f"offboarding-{oid}")["status"] == "retired"
    # The onboarding's status token is for another purpose; a forged token, or another onboarding's id, fail too.
    onboarding_token = posted["statusQueryGetUri"].split("token=", 1)[1].split("&", 1)[0]
    wrong_purpose = f"{url.split('token=', 1)[0]}token={onboarding_token}"
    for refused in (wrong_purpose, url.replace("token=", "token=x"),
                    url.replace(oid, onboarding_id(tenant["tenantId"], "someone-else@contoso.com"))):
        response = requests.get(refused, timeout=30)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "AuthorizationFailed"


@pytest.mark.parametrize(("point", "call"), [
    ("servicePrincipal", {"origin": "graph", "method": "DELETE", "path": r"^/v1\.0/servicePrincipals/[0-9a-f-]+$"}),
    ("application", {"origin": "graph", "method": "DELETE", "path": r"^/v1\.0/applications/[0-9a-f-]+$"}),
    ("certificate", {"origin": "vault", "method": "DELETE", "path": r"^/certificates/certauth-"}),
])
def test_a_host_killed_while_a_delete_is_under_way_resumes_and_the_rerun_converges(
        simulator, product, vault, tenant, clean_faults, point, call):
    """The host dies with a step's DELETE parked; the DELETE then lands (nobody hears its answer) and the restarted
    host runs the step again: Graph answers 404, Key Vault finds the certificate deleted already, and the
    offboarding ends retired all the same."""
    tenant_id = tenant["tenantId"]
    mailbox = f"offboard-crash-{point.lower()}-{uuid.uuid4().hex[:6]}@contoso.com"
    oid = onboarded(product, tenant_id, mailbox)["id"]
    mark = simulator.requests_since()["next"]
    simulator.hold("offboard-kill", **call)
    url = started(offboard(product, oid), oid)
    simulator.wait_held("offboard-kill", timeout=60)
    seen = requests.get(url, timeout=30).json()
    assert seen["step"] == point, seen
    product.kill()
    simulator.release("offboard-kill")   # the write lands; its answer reaches no one
    product.launch()
    final = follow(product, url, f"offboarding-{oid}")
    assert final["status"] == "retired", final
    assert final["certificate"]["state"] == "softDeleted"
    assert objects_of(simulator, vault, tenant_id, mailbox) == NOTHING
    assert vault.get_deleted_certificate(certificate_name(oid)) is not None
    # The parked DELETE did the work (2xx, heard by no one); the re-run's DELETE of the same object was told it is
    # gone (Graph's 404; Key Vault's delete-certificate 404, then the deleted certificate found), and converged.
    deletes = [r for r in simulator.requests_since(mark)["requests"] if r["origin"] == call["origin"]
               and r["method"] == "DELETE" and re.search(call["path"], r["path"])]
    # (A new process's first Key Vault request carries no token: its 401 challenge comes first.)
    statuses = [r["status"] for r in deletes]
    assert statuses[0] // 100 == 2, deletes
    assert statuses[1:] in ([404], [401, 404]), deletes
    assert {r["path"] for r in deletes} == {deletes[0]["path"]}
