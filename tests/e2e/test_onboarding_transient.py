"""Transient or permanent, end to end (shared/failures.py decides; the orchestrator retries on durable timers within
the budget of what a step waits for): a Key Vault 429 storm that outlasts azure-core's retries is ridden out, and a
tenant whose administrator never consented to the onboarding app fails within minutes, naming the fix."""

from __future__ import annotations

import json
import time
from datetime import datetime

import requests
from azure.identity import ClientSecretCredential

from shared import failures
from shared.keyvault import certificate_name
from shared.state import StateStore, onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

KEY_VAULT_SDK_ATTEMPTS = 4  # azure-core's RetryPolicy: the request and retry_status=3 retries on 429
STORMS = 2                  # the certificate step meets the storm on two attempts, then it is over


def _results(history: list[dict]) -> list[dict]:
    """The activities' results, in order (TaskCompleted events)."""
    results = [e["Result"] if isinstance(e["Result"], dict) else json.loads(e["Result"])
               for e in history if e["EventType"] == "TaskCompleted"]
    return [r for r in results if isinstance(r, dict)]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_key_vault_429_storm_that_outlasts_the_sdk_is_ridden_out(simulator, product, vault, admin_consent,
                                                                     clean_faults):
    tenant = customers(simulator)[2]["tenantId"]
    admin_consent(tenant)
    mailbox = "vault-storm@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    before = simulator.requests_since(0)["next"]
    # The storm hits the onboarding's certificate (the POST itself reads the product's signing key, a secret).
    simulator.set_faults([{"origin": "vault", "path": f"^/certificates/{certificate_name(oid)}/", "status": 429,
                           "retryAfter": 1, "count": KEY_VAULT_SDK_ATTEMPTS * STORMS}])
    product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})

    # While the step waits on its durable timer, the custom status says for what and until when.
    deadline = time.monotonic() + 60
    while True:
        custom = (product.status(oid) or {}).get("customStatus") or {}
        if custom.get("retryAt"):
            break
        assert time.monotonic() < deadline, custom
        time.sleep(0.05)  # polling the status
    assert custom["step"] == "certificate"
    assert custom["steps"] == ["certificate"]
    assert custom["waitingFor"] == "throttling"
    now = _when(simulator.admin("GET", "/clock")["now"])
    assert 0 < (_when(custom["retryAt"]) - now).total_seconds() <= failures.backoff(1).total_seconds()

    status = product.finish(oid)
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
    served = simulator.requests_since(before)["requests"]
    assert len([r for r in served if r["origin"] == "vault" and r["status"] == 429]) == \
        KEY_VAULT_SDK_ATTEMPTS * STORMS
    history = product.history(oid)["historyEvents"]
    retried = [r for r in _results(history) if r.get("retry")]
    assert [(r["error"]["step"], r["error"]["status"], r["error"]["waitingFor"]) for r in retried] == \
        [("certificate", 429, "throttling")] * STORMS
    assert len([e for e in history if e["EventType"] == "TimerFired"]) == STORMS
    assert len(list(vault.list_properties_of_certificate_versions(certificate_name(oid)))) == 1


def _revoke_consent(simulator, tenant: dict) -> None:
    """What the tenant's administrator does to take consent back: delete the onboarding app's enterprise
    application (its service principal in the tenant) through Graph. Done as the tenant's own seeded app, given
    Application.ReadWrite.All for it (serviceprincipal-delete)."""
    consent_app = simulator.home["consentApp"]["clientId"]
    sps = [s for s in simulator.tenant_state(tenant["tenantId"])["servicePrincipals"] if s["appId"] == consent_app]
    if not sps:
        return
    simulator.grant(tenant["tenantId"], [*simulator.info["defaultProvisionerRoles"], "Application.ReadWrite.All"])
    try:
        credential = ClientSecretCredential(tenant["tenantId"], tenant["provisioner"]["clientId"],
                                            tenant["provisioner"]["clientSecret"],
                                            authority=simulator.info["authorityHost"],
                                            disable_instance_discovery=True)
        token = credential.get_token("https://graph.microsoft.com/.default").token
        for sp in sps:
            response = requests.delete(f"{simulator.info['graphUrl']}/servicePrincipals/{sp['id']}",
                                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert response.status_code == 204, response.text
    finally:
        simulator.grant(tenant["tenantId"], simulator.info["defaultProvisionerRoles"])
    assert not [s for s in simulator.tenant_state(tenant["tenantId"])["servicePrincipals"]
                if s["appId"] == consent_app]


def test_a_tenant_that_never_consented_fails_within_minutes_naming_the_fix(simulator, product, vault,
                                                                           admin_consent, clean_faults):
    tenant = customers(simulator)[4]
    # Other tests consent to the onboarding app in every customer tenant: take it back, as an administrator can.
    _revoke_consent(simulator, tenant)
    try:
        mailbox = "never-consented@contoso.com"
        oid = onboarding_id(tenant["tenantId"], mailbox)
        started_at = _when(simulator.admin("GET", "/clock")["now"])
        product.onboard({"tenantId": tenant["tenantId"], "serviceMailbox": mailbox})
        status = product.finish(oid)
        ended_at = _when(simulator.admin("GET", "/clock")["now"])
    finally:
        admin_consent(tenant["tenantId"])  # the tenant as the other tests expect it

    assert status["runtimeStatus"] == "Failed", status
    assert status["status"] == "failed"
    error = status["error"]
    assert error["step"] == "application", error
    assert error["code"] == "AADSTS700016", error
    assert error["fix"] == failures.CONSENT_FIX
    assert error["message"].startswith(failures.CONSENT_FIX), error
    assert "open the onboarding link" in error["message"]
    # Within minutes of the sandbox clock (finish moved it over the durable timers), not the 12 of other waits.
    assert ended_at - started_at <= failures.CONSENT_BUDGET + (failures.RETRY_BUDGET - failures.CONSENT_BUDGET) / 2
    history = product.history(oid)["historyEvents"]
    retried = [r for r in _results(history) if r.get("retry")]
    assert len(retried) >= 3, "the missing consent was not retried for a while first"
    assert {(r["error"]["step"], r["error"]["code"], r["error"]["waitingFor"]) for r in retried} == {
        ("application", "AADSTS700016", "consent")}
    fired = [e for e in history if e["EventType"] == "TimerFired"]
    assert len(fired) == len(retried) - 1  # the last transient answer spent the budget: no timer after it
    spent = _when(fired[-1]["FireAt"]) - _when(next(e for e in history if e["EventType"] == "ExecutionStarted")
                                               ["Timestamp"])
    assert failures.CONSENT_BUDGET / 2 < spent <= failures.CONSENT_BUDGET
    # Nothing was created in the tenant; the certificate (the home vault's) is kept for the next run.
    assert objects_of(simulator, vault, tenant["tenantId"], mailbox)["applications"] == 0
    store = StateStore(product.connection_string)
    record = store.get_onboarding(oid).entity
    store.close()
    assert record["Status"] == "failed"
    assert json.loads(record["Error"])["fix"] == failures.CONSENT_FIX
