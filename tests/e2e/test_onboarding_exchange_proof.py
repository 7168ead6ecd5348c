"""The Exchange proof of the automatic method, end to end: the product on the sandbox host proves the directory role
with one read-only Exchange Online admin call (Get-OrganizationConfig) made with the new certificate's token, retries
it on durable timers while the role replicates, and says what it could not prove."""

from __future__ import annotations

import json

import requests
from azure.identity import ClientSecretCredential

from tests.conftest import customers
from tests.e2e.conftest import objects_of

PROVEN = {"outcome": "proven", "detail": "directory role: proven by Exchange Online"}


def _tenant(simulator, admin_consent) -> str:
    tenant = customers(simulator)[3]["tenantId"]
    admin_consent(tenant)
    return tenant


def _results(history: list[dict]) -> list[dict]:
    """The activities' results, in order (TaskCompleted events)."""
    results = [e["Result"] if isinstance(e["Result"], dict) else json.loads(e["Result"])
               for e in history if e["EventType"] == "TaskCompleted"]
    return [r for r in results if isinstance(r, dict)]


def _exchange_calls(simulator, since: int, tenant: str) -> list[int]:
    """The statuses of InvokeCommand for `tenant` that the simulator's Exchange origin served since `since`."""
    return [r["status"] for r in simulator.requests_since(since)["requests"]
            if r["origin"] == "exchange" and r["path"] == f"/adminapi/beta/{tenant}/InvokeCommand"]


def _remove_directory_roles(simulator, tenant: str, principal_id: str) -> int:
    """The tenant's administrator removes every directory role of a service principal (through Graph)."""
    provisioner = next(t for t in customers(simulator) if t["tenantId"] == tenant)["provisioner"]
    token = ClientSecretCredential(tenant, provisioner["clientId"], provisioner["clientSecret"],
                                   authority=simulator.info["authorityHost"],
                                   disable_instance_discovery=True).get_token(
        "https://graph.microsoft.com/.default").token
    graph, headers = simulator.info["graphUrl"], {"Authorization": f"Bearer {token}"}
    listed = requests.get(f"{graph}/roleManagement/directory/roleAssignments", headers=headers, timeout=30,
                          params={"$filter": f"principalId eq '{principal_id}'"})
    listed.raise_for_status()
    for assignment in listed.json()["value"]:
        requests.delete(f"{graph}/roleManagement/directory/roleAssignments/{assignment['id']}", headers=headers,
                        timeout=30).raise_for_status()
    return len(listed.json()["value"])


def test_an_automatic_onboarding_reports_the_role_proven_by_exchange_online(simulator, product, admin_consent):
    tenant = _tenant(simulator, admin_consent)
    before = simulator.requests_since(0)["next"]
    started = product.onboard({"tenantId": tenant, "serviceMailbox": "e2e-exo-proof-auto@contoso.com"})
    status = product.finish(started["id"])
    assert status["status"] == "completed", status
    assert status["directoryRole"] == "Exchange Administrator"
    assert status["exchangeProof"] == PROVEN
    assert _exchange_calls(simulator, before, tenant) == [200]
    # The orchestration's output (the proof's result) carries it too.
    proof = next(r for r in _results(product.history(started["id"])["historyEvents"]) if "exchange" in r)
    assert proof["exchange"] == PROVEN


def test_while_the_role_replicates_the_proof_retries_with_fresh_tokens_then_proves(simulator, product, vault,
                                                                                   admin_consent, clean_faults):
    tenant = _tenant(simulator, admin_consent)
    simulator.set_faults([], {"roleAssignment": 120})
    mailbox = "e2e-exo-proof-replication@contoso.com"
    before = simulator.requests_since(0)["next"]
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    status = product.finish(started["id"], timeout=180)
    assert status["status"] == "completed", status
    assert status["exchangeProof"] == PROVEN
    history = product.history(started["id"])["historyEvents"]
    refused = [r for r in _results(history) if (r.get("error") or {}).get("code") == "ExchangeRoleNotSupported"]
    assert refused, "the proof never met the role's replication"
    assert all(r["retry"] is True for r in refused)
    assert all(r["error"]["waitingFor"] == "replication" for r in refused)
    assert all(r["error"]["status"] == 403 for r in refused)
    # One call per attempt, each with its own token: refused until the role had replicated, then proven.
    calls = _exchange_calls(simulator, before, tenant)
    assert calls == [403] * len(refused) + [200]
    # Each retry waited on a durable timer (the sandbox clock moved, nobody slept).
    assert len([e for e in history if e["EventType"] == "TimerFired"]) >= len(refused)
    assert objects_of(simulator, vault, tenant, mailbox)["roleAssignments"] == 1


def test_with_the_role_removed_a_run_that_requests_no_role_has_nothing_to_prove(simulator, product, vault,
                                                                                 admin_consent):
    tenant = _tenant(simulator, admin_consent)
    mailbox = "e2e-exo-proof-removed@contoso.com"
    first = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})["id"])
    assert first["exchangeProof"] == PROVEN
    assert _remove_directory_roles(simulator, tenant, first["servicePrincipalId"]) == 1
    before = simulator.requests_since(0)["next"]
    again = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": mailbox,
                                            "directoryRole": None})["id"])
    assert again["status"] == "completed", again
    assert again["directoryRole"] is None
    assert again["exchangeProof"]["outcome"] == "notApplicable"
    assert again["exchangeProof"]["outcome"] != "proven"
    assert _exchange_calls(simulator, before, tenant) == []  # nothing asked of Exchange: nothing claimed
    assert objects_of(simulator, vault, tenant, mailbox)["roleAssignments"] == 0


def test_a_profile_without_exchange_manage_as_app_says_the_requested_role_is_not_verifiable(simulator, product,
                                                                                            admin_consent):
    tenant = _tenant(simulator, admin_consent)
    before = simulator.requests_since(0)["next"]
    started = product.onboard({"tenantId": tenant, "serviceMailbox": "e2e-exo-proof-graph@contoso.com",
                               "permissionProfile": "graph-contact-sync", "directoryRole": "exchange-administrator"})
    status = product.finish(started["id"])
    assert status["status"] == "completed", status
    assert status["directoryRole"] == "Exchange Administrator"
    assert status["exchangeProof"] == {"outcome": "notVerifiable",
                                       "detail": "directory role: not verifiable with this profile"}
    assert _exchange_calls(simulator, before, tenant) == []
