"""infra/logic-apps/onboard-tenant.workflow.json run by the harness (tests/contract/logic_apps.py) against the product
on the sandbox host, the way Logic Apps runs it: the HTTP action POSTs /api/onboardings, follows the 202's Location
(sending nothing but the URL) after each Retry-After on the sandbox clock, and hands the final body to the condition.

Customer tenant 3, mailboxes no other test uses. The failing onboarding takes the onboarding app's
RoleManagement.ReadWrite.Directory away in that tenant, and gives it back in a finally."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import jsonschema
import pytest

from shared.state import onboarding_id
from tests.conftest import customers
from tests.contract import logic_apps as la

INFRA = Path(__file__).resolve().parents[2] / "infra" / "logic-apps"
TOKEN_LIFETIME = 3700  # past the hour of the tokens the product holds (they keep the roles they were issued with)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return la.load(INFRA / "onboard-tenant.workflow.json")


@pytest.fixture(scope="module")
def tenant(simulator, admin_consent) -> str:
    tenant_id = customers(simulator)[3]["tenantId"]
    admin_consent(tenant_id)
    return tenant_id


def run(workflow: dict, product, simulator, webhook, body: dict) -> la.Run:
    """One run of the workflow: the trigger's body, certauth's URL and key, the alert webhook."""
    parameters = {"certauthBaseUrl": product.base_url, "certauthFunctionKey": product.function_key,
                  "alertWebhookUrl": webhook.url}
    return la.Run(workflow, parameters, body, la.Clock(simulator.advance_clock), name="onboard-tenant").start()


def test_a_completed_onboarding_takes_the_success_branch(workflow, product, simulator, webhook, tenant) -> None:
    mailbox = f"logic-app-ok-{uuid.uuid4().hex[:8]}@contoso.com"
    before = len(webhook.bodies())
    result = run(workflow, product, simulator, webhook, {"tenantId": tenant, "serviceMailbox": mailbox})
    action = result.results["Start_onboarding"]
    assert action["status"] == "Succeeded", action
    assert action["outputs"]["statusCode"] == 200
    final = action["outputs"]["body"]
    assert final["id"] == onboarding_id(tenant, mailbox)
    assert final["status"] == "completed"
    # It followed the tokenised status URL, polling after each Retry-After on the sandbox clock, until the 200.
    assert result.polls, "the 202 was not polled"
    assert all("/status?token=" in poll["url"] for poll in result.polls)
    assert [poll["status"] for poll in result.polls][-1] == 200
    assert {p["status"] for p in result.polls[:-1]} <= {202}
    assert result.clock.waited == [poll["after"] for poll in result.polls]
    assert result.results["Onboarding_completed"]["branch"] == "actions"
    onboarded = result.results["Onboarded"]["outputs"]
    assert onboarded["appId"] == final["application"]["appId"]
    assert onboarded["thumbprint"] == final["certificate"]["thumbprint"]
    assert result.results["Report_failure"]["status"] == "Skipped"
    assert result.status == "Succeeded"
    assert len(webhook.bodies()) == before


def _alert_schema() -> dict:
    return la.load(INFRA / "expiry-alerts.workflow.json")["definition"]["triggers"]["manual"]["inputs"]["schema"]


def test_a_failed_onboarding_takes_the_failure_branch_and_alerts(workflow, product, simulator, webhook,
                                                                  tenant) -> None:
    consent_app = simulator.home["consentApp"]["clientId"]
    roles = simulator.info["defaultProvisionerRoles"]
    mailbox = f"logic-app-fail-{uuid.uuid4().hex[:8]}@contoso.com"
    before = len(webhook.bodies())
    try:
        simulator.grant(tenant, [r for r in roles if r != "RoleManagement.ReadWrite.Directory"], principal=consent_app)
        simulator.advance_clock(TOKEN_LIFETIME)
        result = run(workflow, product, simulator, webhook, {"tenantId": tenant, "serviceMailbox": mailbox})
    finally:
        simulator.grant(tenant, roles, principal=consent_app)
        simulator.advance_clock(TOKEN_LIFETIME)  # and the tokens without the role expire in turn
    action = result.results["Start_onboarding"]
    assert action["status"] == "Succeeded"  # the HTTP action succeeds: the final 200 says failed
    final = action["outputs"]["body"]
    assert final["status"] == "failed"
    assert final["error"]["step"] == "directoryRole"
    assert result.polls
    assert result.polls[-1]["status"] == 200
    assert result.results["Onboarding_completed"]["branch"] == "else"
    assert result.results["Onboarded"]["status"] == "Skipped"
    assert result.results["Report_failure"]["status"] == "Succeeded"
    assert result.status == "Failed"
    assert result.error["code"] == final["error"]["code"]
    sent = webhook.bodies()[before:]
    assert len(sent) == 1
    alert = sent[0]
    assert alert["schema"] == "certauth.alert/v1"
    assert alert["type"] == "manualActionNeeded"
    assert alert["onboardingId"] == final["id"]
    assert alert["detail"] == final["error"]["message"]
    jsonschema.validate(alert, _alert_schema())  # expiry-alerts.workflow.json takes it


def test_a_refused_request_fails_the_http_action_and_the_failure_branch_runs(workflow, product, simulator, webhook,
                                                                             tenant) -> None:
    before = len(webhook.bodies())
    result = run(workflow, product, simulator, webhook, {"tenantId": tenant, "serviceMailbox": "not an address"})
    action = result.results["Start_onboarding"]
    assert action["status"] == "Failed"
    assert action["outputs"]["statusCode"] == 400
    assert result.polls == []
    assert result.results["Onboarding_completed"]["branch"] == "else"
    assert result.status == "Failed"
    [alert] = webhook.bodies()[before:]
    assert alert["detail"] == action["outputs"]["body"]["error"]["message"]
    assert alert["onboardingId"] is None


def test_an_onboarding_that_outlasts_the_timeout_times_out_into_the_failure_branch(workflow, product, simulator,
                                                                                   webhook, tenant) -> None:
    """The sample waits past the manual method's deadline; with a timeout of a minute, a manual onboarding waiting
    for its administrator (Retry-After 60) times the action out."""
    short = copy.deepcopy(workflow)
    short["definition"]["actions"]["Start_onboarding"]["limit"]["timeout"] = "PT90S"
    before = len(webhook.bodies())
    mailbox = f"logic-app-wait-{uuid.uuid4().hex[:8]}@contoso.com"
    result = run(short, product, simulator, webhook, {"tenantId": tenant, "serviceMailbox": mailbox,
                                                      "method": "manual"})
    action = result.results["Start_onboarding"]
    assert action["status"] == "TimedOut", action
    assert sum(result.clock.waited) == pytest.approx(90)
    assert action["outputs"]["body"]["status"] in ("waitingForAdmin", "needsAttention", "running", "pending")
    assert result.results["Onboarding_completed"]["branch"] == "else"
    assert result.status == "Failed"
    [alert] = webhook.bodies()[before:]
    assert alert["onboardingId"] == onboarding_id(tenant, mailbox)
    assert alert["detail"].startswith("Start_onboarding ended TimedOut")
