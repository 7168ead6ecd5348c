"""One clock for every process: the product reads the wall clock, which follows the sandbox clock (libfaketime),
so tokens cached before a jump are refreshed and assertions signed after it are valid."""

from __future__ import annotations

import time

from sandbox import faketime
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

FORTY_DAYS = 40 * 86400


def _pending_timer(product, instance: str) -> bool:
    events = (product.status(instance, history=True) or {}).get("historyEvents") or []
    fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
    return any(e["EventType"] == "TimerCreated" and e["EventId"] not in fired for e in events)


def test_the_session_and_the_product_follow_the_sandbox_clock(simulator):
    assert faketime.active(), "the test session does not run under libfaketime"
    before = time.time()
    document = simulator.advance_clock(3600)
    assert time.time() - before >= 3600
    assert abs(time.time() - document["epochSeconds"]) < 60


def test_forty_days_between_two_steps_tokens_and_assertions_stay_valid(
        simulator, product, vault, admin_consent, clean_faults):
    tenant = customers(simulator)[2]["tenantId"]
    admin_consent(tenant)
    # The new app replicates slowly: the service principal step retries after a durable timer. That wait
    # is where the clock jumps, after the certificate and application steps (which run at once) got their tokens.
    simulator.set_faults([], {"application": 60})
    mailbox = "forty-days@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    deadline = time.monotonic() + 60
    while not _pending_timer(product, started["id"]) or "certificate" in product.onboarding(started["id"])["steps"]:
        assert time.monotonic() < deadline, product.onboarding(started["id"])
        time.sleep(0.05)  # polling the history
    assert "servicePrincipal" in product.onboarding(started["id"])["steps"]
    mark = simulator.requests_since(0)["next"]
    simulator.advance_clock(FORTY_DAYS)

    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
    served = simulator.requests_since(mark)["requests"]
    # Every token cached before the jump had expired on the sandbox clock: the product's SDKs saw that on
    # their own wall clock and asked again (managed identity, the onboarding app, the onboarded app's
    # Key Vault-signed assertion), and nothing was refused.
    tokens = [r for r in served if r["origin"] in ("login", "identity") and r["method"] in ("GET", "POST")
              and ("/token" in r["path"] or "/msi/" in r["path"])]
    assert tokens, "no token was asked for after the jump"
    assert all(r["status"] == 200 for r in tokens), tokens
    # (Key Vault's 401s are its challenge to a new client's first, token-less request.)
    refused = [r for r in served if r["status"] == 401 and r["origin"] != "vault"]
    assert not refused, f"a stale token or assertion was used: {refused}"
