"""The Exchange proof's pure parts (shared/exchange.py, shared/failures.py): what a profile and a requested role let
it say without a call, the role-propagation window, the needs-attention result, and how Exchange's answers are
classified and budgeted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import catalog, exchange, failures
from shared.settings import Settings

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TENANT = "0f7c4c0e-2b61-4a55-9d3a-6f1e2d3c4b5a"
ROLE_403 = ("[AuthZRequestId=1][FailureCategory=AuthZ-CmdletAccessDeniedException] The role assigned to application "
            "11111111-1111-1111-1111-111111111111 isn't supported in this scenario.")


@pytest.mark.parametrize(("profile", "role", "expected"), [
    # The profile holds Exchange.ManageAsApp and the role is one Exchange supports: only Exchange's answer decides.
    ("exchange-contact-sync", "exchange-administrator", None),
    ("exchange-contact-sync", "exchange-recipient-administrator", None),
    ("ews-contact-sync", "global-reader", None),
    # No Exchange.ManageAsApp: the role cannot be proven, and is never said to be.
    ("graph-contact-sync", "exchange-administrator", exchange.NOT_VERIFIABLE),
    ("directory-reader", "global-reader", exchange.NOT_VERIFIABLE),
    # No role asked for: nothing to prove, whatever the profile.
    ("exchange-contact-sync", None, exchange.NOT_APPLICABLE),
    ("graph-contact-sync", None, exchange.NOT_APPLICABLE),
])
def test_the_outcome_that_needs_no_call(profile, role, expected):
    assert exchange.proof_plan(catalog.profile(profile), role) == expected


def test_the_outcomes_say_what_was_and_was_not_proven():
    assert exchange.PROVEN == {"outcome": "proven", "detail": "directory role: proven by Exchange Online"}
    assert exchange.NOT_VERIFIABLE == {"outcome": "notVerifiable",
                                       "detail": "directory role: not verifiable with this profile"}
    assert exchange.NOT_APPLICABLE["outcome"] == "notApplicable"
    outcomes = {o["outcome"] for o in (exchange.PROVEN, exchange.NOT_VERIFIABLE, exchange.NOT_APPLICABLE,
                                       exchange.REFUSED)}
    assert outcomes == {"proven", "notVerifiable", "notApplicable", "refused"}  # never "verified"


def test_every_catalog_role_is_one_exchange_supports():
    # A catalog role Exchange does not support would make the proof notVerifiable, never a 403 after the window.
    assert {r.template_id for r in catalog.DIRECTORY_ROLES.values()} <= exchange.EXCHANGE_SUPPORTED_ROLES


def test_the_role_propagation_window_runs_from_the_first_refusal():
    window = exchange.ROLE_PROPAGATION_WINDOW
    assert timedelta(minutes=15) <= window <= timedelta(minutes=30)
    assert exchange.within_role_window(T0, T0)
    assert exchange.within_role_window(T0, T0 + window - timedelta(seconds=1))
    assert not exchange.within_role_window(T0, T0 + window)
    assert not exchange.within_role_window(T0, T0 + window + timedelta(hours=3))


def test_after_the_window_the_proof_needs_attention():
    error = exchange.ExchangeAdminError(403, "Forbidden", ROLE_403)
    result = exchange.role_needs_attention(error, T0, T0 + timedelta(minutes=16))
    assert result["ok"] is False
    assert result["retry"] is False
    assert result["needsAttention"] == ["the app has no supported Exchange role"]
    assert {k: result["error"][k] for k in ("step", "status", "code")} == {
        "step": "proof", "status": 403, "code": "ExchangeRoleNotSupported"}
    assert "after 16 min" in result["error"]["message"]
    assert ROLE_403 in result["error"]["message"]
    assert result["error"]["fix"].startswith("assign a supported Exchange role (Exchange Administrator")
    assert "waitingFor" not in result["error"]


def test_the_role_message_is_recognised_only_on_a_403():
    assert exchange.ExchangeAdminError(403, "Forbidden", ROLE_403).role_not_supported
    other = exchange.ExchangeAdminError(403, "Forbidden", "User is not allowed to call Get-Mailbox")
    assert not other.role_not_supported
    assert not exchange.ExchangeAdminError(400, "BadRequest", ROLE_403).role_not_supported


def test_a_refused_role_inside_the_window_waits_for_replication_until_the_window_ends():
    error = exchange.ExchangeAdminError(403, "Forbidden", ROLE_403)
    error.retry_until = T0 + exchange.ROLE_PROPAGATION_WINDOW
    verdict = failures.classify("proof", error)
    assert verdict.transient
    assert verdict.error["waitingFor"] == failures.REPLICATION
    assert (verdict.error["status"], verdict.error["code"]) == (403, "ExchangeRoleNotSupported")
    assert verdict.error["fix"] == exchange.ROLE_FIX
    assert verdict.error["retryUntil"] == error.retry_until.isoformat()
    # The orchestrator's budget then covers the window and one attempt after it (the one that reports it) ...
    deadline = failures.retry_deadline(verdict.error["waitingFor"], T0, None, verdict.error["retryUntil"])
    assert deadline > T0 + exchange.ROLE_PROPAGATION_WINDOW
    assert deadline > T0 + failures.RETRY_BUDGET
    # ... and never less than the usual budget, nor anything longer without a retryUntil.
    assert failures.retry_deadline(failures.REPLICATION, T0, None, T0) == T0 + failures.RETRY_BUDGET
    assert failures.retry_deadline(failures.REPLICATION, T0) == T0 + failures.RETRY_BUDGET


def test_exchange_manage_as_app_not_in_the_token_yet_is_transient_within_the_usual_budget():
    verdict = failures.classify("proof", exchange.ExchangeAdminError(401, "Unauthorized", "no Exchange.ManageAsApp"))
    assert verdict.transient
    assert verdict.error["waitingFor"] == failures.REPLICATION
    assert (verdict.error["status"], verdict.error["code"]) == (401, "ExchangeManageAsAppNotInToken")
    assert "Exchange.ManageAsApp" in verdict.error["fix"]
    assert "retryUntil" not in verdict.error
    assert failures.retry_deadline(verdict.error["waitingFor"], T0) == T0 + failures.RETRY_BUDGET


@pytest.mark.parametrize(("status", "code", "transient", "waiting_for"), [
    (403, "Forbidden", False, None),          # another refusal: permanent, named
    (400, "BadRequest", False, None),
    (429, "TooManyRequests", True, failures.THROTTLING),
    (503, "ServiceUnavailable", True, failures.TRANSIENT),
])
def test_other_answers_of_the_admin_api_go_by_status(status, code, transient, waiting_for):
    verdict = failures.classify("proof", exchange.ExchangeAdminError(status, code, "User is not allowed"))
    assert verdict.transient is transient
    assert verdict.error["code"] == code
    assert verdict.error["status"] == status
    assert verdict.error.get("waitingFor") == waiting_for


def test_the_address_comes_from_the_setting_and_the_scope_from_exchange_resource():
    settings = Settings(exchange_admin_url="https://127.0.0.1:9443/", exchange_resource="https://outlook.office365.com")
    assert exchange.invoke_url(settings, TENANT) == f"https://127.0.0.1:9443/adminapi/beta/{TENANT}/InvokeCommand"
    assert exchange.token_scope(settings) == "https://outlook.office365.com/.default"
    sovereign = Settings(exchange_admin_url="https://outlook.office365.us", exchange_resource="https://outlook.office365.us")
    assert exchange.token_scope(sovereign) == "https://outlook.office365.us/.default"
    assert exchange.ORGANIZATION_CONFIG == {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}


def test_a_spent_budget_keeps_the_role_error_and_its_fix_but_not_the_window():
    error = exchange.ExchangeAdminError(403, "Forbidden", ROLE_403)
    error.retry_until = T0 + exchange.ROLE_PROPAGATION_WINDOW
    final = failures.exhausted(failures.classify("proof", error).error, 9, T0, T0 + timedelta(minutes=16))
    assert (final["step"], final["status"], final["code"]) == ("proof", 403, "ExchangeRoleNotSupported")
    assert final["message"].startswith(exchange.ROLE_FIX)
    assert "retryUntil" not in final
    assert "waitingFor" not in final
