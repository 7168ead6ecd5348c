"""Tokens that lag the directory, end to end: with replication delay on, Entra does not know the onboarding's new
certificate yet (AADSTS700027) and its tokens lack the new grants for a while; the proof step retries on durable
timers (the sandbox clock moves, nobody sleeps) until both have caught up, and the onboarding completes."""

from __future__ import annotations

import json

from tests.conftest import customers
from tests.e2e.conftest import EXCHANGE_PERMISSIONS, GRAPH_PERMISSIONS, ONE_OF_EACH, objects_of

# Staggered so that the proof sees each lag in turn: Graph's reference checks wait out the new service principal
# (30 s) before the grants are written; the certificate, added first, is known to the token endpoint only after
# 90 s (AADSTS700027 meanwhile); the grants reach tokens' `roles` 100 s after they were written.
DELAYS = {"servicePrincipal": 30, "keyCredential": 90, "appRoleAssignment": 100}


def _results(history: list[dict]) -> list[dict]:
    """The activities' results, in order (TaskCompleted events)."""
    results = [e["Result"] if isinstance(e["Result"], dict) else json.loads(e["Result"])
               for e in history if e["EventType"] == "TaskCompleted"]
    return [r for r in results if isinstance(r, dict)]


def test_the_proof_retries_until_the_token_endpoint_has_caught_up(simulator, product, vault, admin_consent,
                                                                  clean_faults):
    tenant = customers(simulator)[3]["tenantId"]
    # Consent (again): it also grants back a permission another test may have taken from the onboarding app, and
    # such a new grant lags too. Then let the consent age past every delay: only the onboarding's objects lag.
    admin_consent(tenant)
    simulator.set_faults([], DELAYS)
    simulator.advance_clock(max(DELAYS.values()) + 1)
    mailbox = "token-lag@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    status = product.finish(started["id"], timeout=240)
    assert status["runtimeStatus"] == "Completed", status
    assert set(status["proofRoles"]["Microsoft Graph"]) >= GRAPH_PERMISSIONS
    assert set(status["proofRoles"]["Office 365 Exchange Online"]) >= EXCHANGE_PERMISSIONS
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH

    history = product.history(started["id"])["historyEvents"]
    proofs = [r for r in _results(history)
              if (r.get("error") or {}).get("step") == "proof" or (r.get("ok") and "roles" in r)]
    retried, final = proofs[:-1], proofs[-1]
    assert final["ok"] is True
    assert retried, "the proof never had to wait for the token endpoint"
    assert all(r["retry"] is True for r in retried)
    messages = [r["error"]["message"] for r in retried]
    # First the certificate is unknown, then it is known but the new grants are not in the token yet.
    unknown_key = [i for i, m in enumerate(messages) if "AADSTS700027" in m]
    missing_roles = [i for i, m in enumerate(messages) if "roles do not include" in m]
    assert unknown_key, messages
    assert missing_roles, messages
    assert max(unknown_key) < min(missing_roles), messages
    assert len(unknown_key) + len(missing_roles) == len(messages), messages
    assert all("not registered on application" in messages[i] for i in unknown_key)
    # Each retry of the proof waited on a durable timer: the sandbox clock moved, nobody slept.
    assert len([e for e in history if e["EventType"] == "TimerFired"]) == len(
        [r for r in _results(history) if r.get("retry")])
