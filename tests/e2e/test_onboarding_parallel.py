"""The onboarding runs what is independent at the same time (functions/onboarding.py onboarding_plan, run_plan):
the certificate chain in Key Vault beside the directory chain in Graph, consent beside the directory role, the key
onto the app as soon as the certificate and the app exist. Through the product's HTTP API, with hold points at the
simulator: no latency, no sleeping on durable timers."""

from __future__ import annotations

import re
import time

import pytest

from shared.keyvault import certificate_name
from shared.onboarding import application_unique_name
from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

TENANT_INDEX = 6


@pytest.fixture
def tenant(simulator, admin_consent) -> str:
    tenant_id = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant_id)
    return tenant_id


def wait_status(product, instance: str, until, timeout: float = 60) -> dict:
    """The onboarding's status body once `until(body)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        body = product.onboarding(instance)
        if until(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)  # polling the status


def create_certificate(onboarding: str) -> dict:
    """The hold rule for Key Vault's create of the onboarding's certificate."""
    return {"origin": "vault", "method": "POST", "path": rf"^/certificates/{re.escape(certificate_name(onboarding))}"
                                                         r"/create"}


def test_the_directory_chain_runs_while_key_vault_creates_the_certificate(simulator, product, vault, tenant,
                                                                          clean_faults):
    mailbox = "parallel-chains@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    # Key Vault's create waits at the simulator, and so does the app's upsert: both steps are in progress at once.
    simulator.hold("parallel-certificate", **create_certificate(oid))
    simulator.hold("parallel-application", origin="graph", method="PATCH",
                   path=rf"^/v1\.0/applications\(uniqueName='{re.escape(application_unique_name(oid))}'\)")
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    simulator.wait_held("parallel-certificate", timeout=60)
    simulator.wait_held("parallel-application", timeout=60)
    both = product.onboarding(oid)
    assert (both["runtimeStatus"], both["steps"], both["step"]) == ("Running", ["certificate", "application"],
                                                                    "certificate"), both
    custom = product.status(oid)["customStatus"]
    assert custom["steps"] == ["certificate", "application"]
    assert "retryAt" not in custom

    # The app's side goes on to the service principal, consent and the role while the certificate is held; the
    # key waits for the certificate.
    assert simulator.release("parallel-application") == 1
    waiting = wait_status(product, oid, lambda body: body["steps"] == ["certificate"])
    made = waiting["created"]
    assert {"application", "servicePrincipalId", "permissions", "directoryRole"} <= set(made), made
    assert "certificate" not in made
    assert "keyCredential" not in made
    state = simulator.tenant_state(tenant)
    [app] = [a for a in state["applications"] if a.get("uniqueName") == application_unique_name(oid)]
    assert app["keyCredentials"] == []
    [sp] = [s for s in state["servicePrincipals"] if s["appId"] == app["appId"]]
    assert len([r for r in state["roleAssignments"] if r["principalId"] == sp["id"]]) == 1

    assert simulator.release("parallel-certificate") == 1
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["created"]["keyCredential"] == {"thumbprint": status["certificate"]["thumbprint"], "added": True}
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH

    # The history (Durable's: each activity's completion with its scheduled time): the certificate and the
    # application scheduled together, consent and the role together, the key after both the certificate and the
    # app, the proof after the key, consent and role; no activity of its own for the record.
    events = product.history(oid)["historyEvents"]
    runs = {e["FunctionName"]: e for e in events if e["EventType"] == "TaskCompleted"}
    assert "record_onboarding_completed" not in runs  # the proof's activity records the completion

    def scheduled(name: str) -> str:
        return runs[name]["ScheduledTime"]

    def done(name: str) -> str:
        return runs[name]["Timestamp"]

    assert scheduled("ensure_certificate") == scheduled("ensure_application")
    assert scheduled("grant_permissions") == scheduled("ensure_directory_role")
    assert scheduled("ensure_key_credential") >= max(done("ensure_certificate"), done("ensure_application"))
    assert done("ensure_directory_role") < done("ensure_certificate")
    assert scheduled("prove_onboarding") >= max(
        done(name) for name in ("ensure_key_credential", "grant_permissions", "ensure_directory_role"))


@pytest.fixture
def without_role_management(simulator, admin_consent):
    """Another tenant (the product has no token of it yet, with the roles it had), whose onboarding app holds every
    Graph role but RoleManagement.ReadWrite.Directory: the directory role step fails for good (403). Its roles are
    given back afterwards."""
    tenant = customers(simulator)[TENANT_INDEX + 1]["tenantId"]
    admin_consent(tenant)
    consent_app = simulator.home["consentApp"]["clientId"]
    roles = simulator.info["defaultProvisionerRoles"]
    simulator.grant(tenant, [r for r in roles if r != "RoleManagement.ReadWrite.Directory"], principal=consent_app)
    try:
        yield tenant
    finally:
        simulator.grant(tenant, roles, principal=consent_app)


def test_a_permanent_failure_lets_the_steps_in_flight_finish_and_starts_nothing_after_them(
        simulator, product, vault, without_role_management, clean_faults):
    tenant = without_role_management
    mailbox = "parallel-failure@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    simulator.hold("failure-certificate", **create_certificate(oid))
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    simulator.wait_held("failure-certificate", timeout=60)
    # The role step has failed (403) while the certificate's activity is still in flight: the run waits for it.
    seen = wait_status(product, oid, lambda body: body["steps"] == ["certificate"] and "permissions" in body["created"])
    assert seen["runtimeStatus"] == "Running", seen
    assert simulator.release("failure-certificate") == 1

    status = product.finish(started["id"])
    assert (status["runtimeStatus"], status["status"]) == ("Failed", "failed"), status
    assert (status["error"]["step"], status["error"]["status"]) == ("directoryRole", 403), status["error"]
    # What the certificate's activity made is kept and named; the key, which needs it, never started.
    assert status["created"]["certificate"]["thumbprint"]
    assert "keyCredential" not in status["created"]
    names = [e["FunctionName"] for e in product.history(oid)["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert {"ensure_certificate", "ensure_application", "ensure_service_principal", "grant_permissions",
            "ensure_directory_role"} <= set(names)
    assert "ensure_key_credential" not in names
    assert "prove_onboarding" not in names
    assert objects_of(simulator, vault, tenant, mailbox) == {
        "applications": 1, "keys": 0, "servicePrincipals": 1, "appRoleAssignments": len(status["permissions"]),
        "roleAssignments": 0, "certificateVersions": 1}
