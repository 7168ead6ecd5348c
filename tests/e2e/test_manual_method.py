"""The manual method end to end: the product's function_app on the sandbox host, the admin played by running the
served script's own Graph calls (tests/powershell_admin.py), the verifier consented by the tenant's admin, and
read-only verification, driven over the product's HTTP API.

Tenants: customers(simulator)[0] and [2] (the other engineers' e2e tests use [1] and [3])."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.identity import ClientSecretCredential

from shared import catalog
from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import Product
from tests.powershell_admin import ScriptAdmin

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def restore_provisioner(simulator):
    """The script's sign-in gives the tenant's provisioner the script's scopes: give it its own roles back after."""
    yield
    for index in (0, 2):
        simulator.grant(customers(simulator)[index]["tenantId"], simulator.info["defaultProvisionerRoles"])


def _admin_token(simulator, tenant: dict) -> str:
    credential = ClientSecretCredential(tenant["tenantId"], tenant["provisioner"]["clientId"],
                                        tenant["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    try:
        return credential.get_token(GRAPH_SCOPE).token
    finally:
        credential.close()


def run_script(simulator, tenant: dict, script: bytes) -> ScriptAdmin:
    """The tenant's admin runs the script: Connect-MgGraph's scopes become the provisioner's app roles."""

    def connect(tenant_id: str, scopes: list[str]) -> str:
        simulator.grant(tenant_id, scopes)
        return _admin_token(simulator, tenant)

    admin = ScriptAdmin(simulator.info["graphUrl"], connect, ca_bundle=simulator.info["caBundle"])
    try:
        admin.run(script)
    finally:
        admin.close()
    assert admin.exit_code == 0, admin.host_output
    return admin


def wait_status(product: Product, instance: str, wanted: str, timeout: float = 60) -> dict:
    """Poll the status (short sleeps, no time passing on the sandbox clock) until it is `wanted`."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = product.onboarding(instance)
        if status["status"] == wanted:
            return status
        assert status["status"] not in ("failed", "expired", "completed") or wanted in ("failed", "expired"), status
        time.sleep(0.1)
    raise AssertionError(f"{instance} never reached {wanted}; last: {status}\n" + "\n".join(product.stderr_lines[-30:]))


def script_of(product: Product, instance: str, tenant_id: str) -> bytes:
    response = product.api("GET", f"/onboardings/{instance}/script")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert f'filename="certauth-{tenant_id}.ps1"' in response.headers["Content-Disposition"]
    assert response.content.startswith(BOM)
    assert response.content[len(BOM):].isascii()
    return response.content


def verify(product: Product, instance: str) -> None:
    response = product.api("POST", f"/onboardings/{instance}/verify")
    assert response.status_code == 202, response.text
    assert "/status?token=" in response.headers["Location"]


def test_manual_onboarding_completes_read_only_and_the_other_method_gets_409(simulator, product,
                                                                            restore_provisioner):
    tenant = customers(simulator)[0]
    tenant_id = tenant["tenantId"]
    mailbox = f"manual-{uuid.uuid4().hex[:8]}@contoso.com"
    started = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})
    instance = started["id"]
    assert instance == onboarding_id(tenant_id, mailbox)
    waiting = wait_status(product, instance, "waitingForAdmin")
    assert waiting["method"] == "manual"
    assert waiting["scriptUrl"].endswith(f"/api/onboardings/{instance}/script")
    consent = urlsplit(waiting["adminConsentUrl"])
    assert consent.path == f"/{tenant_id}/adminconsent"
    query = parse_qs(consent.query)
    assert query["client_id"] == [simulator.home["verifierApp"]["clientId"]]
    assert query["redirect_uri"][0].endswith("/api/onboard/callback")

    script = script_of(product, instance, tenant_id)
    assert waiting["adminConsentUrl"].encode() in script  # the script prints it too
    run_script(simulator, tenant, script)
    simulator.consent_verifier(tenant_id)

    mark = simulator.requests_since()["next"]
    verify(product, instance)
    final = product.finish(instance)
    assert final["status"] == "completed", final
    assert "adminConsentUrl" not in final
    verification = final["verification"]
    assert verification["missing"] == []
    for name in ("Contacts.ReadWrite", "User.Read.All", "Organization.Read.All", "Exchange.ManageAsApp"):
        assert f"permission {name} granted" in verification["verified"]
        assert f"permission {name} requested" in verification["verified"]
    assert "service principal exists" in verification["verified"]
    assert any(item.startswith("certificate ") for item in verification["verified"])
    assert set(final["proofRoles"]["Microsoft Graph"]) >= {"Contacts.ReadWrite", "User.Read.All"}
    # The directory role is never claimed from a read: either Exchange Online proved it, or it is not verified.
    role_lines = [item for item in verification["verified"] if item.startswith("directory role")]
    assert final["exchangeProof"]["outcome"] == "proven"
    assert role_lines == ["directory role Exchange Administrator: proven by Exchange Online"]

    # From verify on, the product only read the directory: every Graph request was a GET (the script's writes all
    # came before the mark; nothing else runs in this session meanwhile). Graph's paths don't name the tenant: the
    # token requests in the window are the verifier's and the proof's, in this tenant only.
    served = simulator.requests_since(mark)["requests"]
    graph = [r for r in served if r["origin"] == "graph"]
    tokens = {r["tenant_id"] for r in served if r["origin"] == "login" and r["path"].endswith("/oauth2/v2.0/token")}
    assert tokens <= {tenant_id, simulator.home["tenantId"]}, tokens
    assert graph, "the verification read nothing"
    assert {r["method"] for r in graph} == {"GET"}, [r for r in graph if r["method"] != "GET"]

    # The other method on the same pair: 409 naming the completed manual onboarding.
    response = product.api("POST", "/onboardings", json={"tenantId": tenant_id, "serviceMailbox": mailbox})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "OnboardingMethodConflict"
    assert instance in error["message"]
    assert "manual method" in error["message"]


def test_a_missing_grant_needs_attention_and_completes_once_fixed(simulator, product, restore_provisioner):
    tenant = customers(simulator)[0]
    tenant_id = tenant["tenantId"]
    mailbox = f"partial-{uuid.uuid4().hex[:8]}@contoso.com"
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})["id"]
    wait_status(product, instance, "waitingForAdmin")
    script = script_of(product, instance, tenant_id)
    run_script(simulator, tenant, script)
    simulator.consent_verifier(tenant_id)

    # The admin skips one grant: its app role assignment is deleted through Graph, as the admin.
    contacts = next(p for p in catalog.profile("exchange-contact-sync").permissions if p.value == "Contacts.ReadWrite")
    state = simulator.tenant_state(tenant_id)
    [app] = [a for a in state["applications"] if a["displayName"].endswith(f"({mailbox})")]
    [sp] = [s for s in state["servicePrincipals"] if s["appId"] == app["appId"]]
    [grant] = [a for a in state["appRoleAssignments"]
               if a["principalId"] == sp["id"] and a["appRoleId"] == contacts.app_role_id]
    deleted = requests.delete(f"{simulator.info['graphUrl']}/servicePrincipals/{sp['id']}/appRoleAssignments/"
                              f"{grant['id']}", headers={"Authorization": f"Bearer {_admin_token(simulator, tenant)}"},
                              verify=simulator.info["caBundle"], timeout=30)
    assert deleted.status_code == 204, deleted.text

    verify(product, instance)
    attention = wait_status(product, instance, "needsAttention")
    assert attention["verification"]["missing"] == ["permission Contacts.ReadWrite not granted"]
    assert "permission User.Read.All granted" in attention["verification"]["verified"]

    run_script(simulator, tenant, script)  # the fix: the script again (idempotent: it adds only the grant)
    verify(product, instance)
    final = product.finish(instance)
    assert final["status"] == "completed", final
    assert final["verification"]["missing"] == []
    assert "permission Contacts.ReadWrite granted" in final["verification"]["verified"]


def test_a_role_that_the_profile_cannot_prove_is_reported_not_verifiable(simulator, product, restore_provisioner):
    tenant = customers(simulator)[2]
    tenant_id = tenant["tenantId"]
    mailbox = f"graph-only-{uuid.uuid4().hex[:8]}@contoso.com"
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual",
                                "permissionProfile": "graph-contact-sync",
                                "directoryRole": "exchange-administrator"})["id"]
    wait_status(product, instance, "waitingForAdmin")
    run_script(simulator, tenant, script_of(product, instance, tenant_id))
    simulator.consent_verifier(tenant_id)
    verify(product, instance)
    final = product.finish(instance)
    assert final["status"] == "completed", final
    verification = final["verification"]
    assert not any(item.startswith("directory role") for item in verification["verified"])
    assert [item for item in verification["notVerified"] if item.startswith("directory role")] == [
        "directory role Exchange Administrator: not verifiable with this profile (it has no Exchange.ManageAsApp "
        "for Exchange's proof)"]
    assert final["exchangeProof"]["outcome"] == "notVerifiable"   # no Exchange.ManageAsApp: no call, no claim


def _advance_until(product: Product, instance: str, wanted: str, timeout: float = 120) -> dict:
    """Move the sandbox clock over each pending durable timer of `instance` until its status is `wanted`."""
    from datetime import datetime

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = product.onboarding(instance)
        if status["status"] == wanted:
            return status
        assert status["status"] not in ("failed", "expired", "completed"), status
        events = (product.status(instance, history=True) or {}).get("historyEvents") or []
        fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
        pending = [e for e in events if e["EventType"] == "TimerCreated" and e.get("EventId") not in fired]
        if pending:
            now = datetime.fromisoformat(product.simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
            due = min(datetime.fromisoformat(e["FireAt"].replace("Z", "+00:00")) for e in pending)
            if due > now:
                product.simulator.advance_clock((due - now).total_seconds() + 0.5)
        time.sleep(0.05)  # polling the status, not waiting for time to pass
    raise AssertionError(f"{instance} never reached {wanted}\n" + "\n".join(product.stderr_lines[-30:]))


def test_a_missing_role_needs_attention_from_the_exchange_proof(simulator, product, restore_provisioner):
    tenant = customers(simulator)[2]
    tenant_id = tenant["tenantId"]
    mailbox = f"no-role-{uuid.uuid4().hex[:8]}@contoso.com"
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})["id"]
    wait_status(product, instance, "waitingForAdmin")
    script = script_of(product, instance, tenant_id)
    run_script(simulator, tenant, script)
    simulator.consent_verifier(tenant_id)
    # The admin's script run lost the role: its assignment is deleted through Graph, as the admin.
    state = simulator.tenant_state(tenant_id)
    [app] = [a for a in state["applications"] if a["displayName"].endswith(f"({mailbox})")]
    [sp] = [s for s in state["servicePrincipals"] if s["appId"] == app["appId"]]
    [role] = [r for r in state["roleAssignments"] if r["principalId"] == sp["id"]]
    simulator.grant(tenant_id, ["RoleManagement.ReadWrite.Directory"])
    deleted = requests.delete(f"{simulator.info['graphUrl']}/roleManagement/directory/roleAssignments/{role['id']}",
                              headers={"Authorization": f"Bearer {_admin_token(simulator, tenant)}"},
                              verify=simulator.info["caBundle"], timeout=30)
    assert deleted.status_code == 204, deleted.text

    verify(product, instance)
    # Every read-only check passes; Exchange answers 403 (no supported role) through the propagation window, on
    # durable timers, and then the onboarding needs the admin's attention.
    attention = _advance_until(product, instance, "needsAttention")
    assert attention["verification"]["missing"] == ["the app has no supported Exchange role"], attention
    assert attention["exchangeProof"]["outcome"] == "refused", attention
    assert not any(item.startswith("directory role") for item in attention["verification"]["verified"])

    run_script(simulator, tenant, script)   # the fix: the script again assigns the role
    verify(product, instance)
    final = product.finish(instance)
    assert final["status"] == "completed", final
    assert final["exchangeProof"]["outcome"] == "proven"


def test_no_verify_before_the_deadline_expires_and_the_history_stays_small(simulator, azurite):
    """Polls every 12 hours for 3 days (six rounds, each one generation): the sandbox clock moves over them."""
    tenant_id = customers(simulator)[2]["tenantId"]
    product = Product(simulator, azurite.connection_string,
                      env={"CERTAUTH_MANUAL_POLL_MINUTES": "720", "CERTAUTH_MANUAL_DEADLINE_DAYS": "3"}).launch()
    try:
        mailbox = f"expiry-{uuid.uuid4().hex[:8]}@contoso.com"
        instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})["id"]
        wait_status(product, instance, "waitingForAdmin")
        final = product.finish(instance, timeout=180)
        assert final["status"] == "expired", final
        assert final["runtimeStatus"] == "Completed"
        assert final["error"]["code"] == "DeadlineExceeded"
        document = product.history(instance)
        carried = document["input"] if isinstance(document["input"], dict) else json.loads(document["input"])
        assert carried["wait"]["rounds"] >= 5  # it polled across the days, one generation per round
        assert len(document["historyEvents"]) < 40, len(document["historyEvents"])
        not_waiting = product.api("POST", f"/onboardings/{instance}/verify")
        assert not_waiting.status_code == 409, not_waiting.text

        # A later POST of the same pair starts over and reuses the certificate.
        again = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})
        assert again["id"] == instance
        restarted = wait_status(product, instance, "waitingForAdmin")
        assert restarted["certificate"]["thumbprint"] == final["certificate"]["thumbprint"]
    finally:
        product.stop()
