"""The sample workflows in infra/logic-apps/: the fields the Workflow Definition Language requires, the timeout of
the onboarding's HTTP action, and the expiry-alerts workflow interpreted on certauth's own json alerts.

The onboarding workflow's HTTP action runs against the product in tests/e2e/test_logic_app.py."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from shared import alerts
from shared.settings import Settings
from tests.contract import logic_apps as la

INFRA = Path(__file__).resolve().parents[2] / "infra" / "logic-apps"
WORKFLOWS = ("onboard-tenant.workflow.json", "expiry-alerts.workflow.json")
# Consumption workflows run at most 90 days (logic-apps-limits-and-config.md, "Run duration"): an action's timeout
# cannot outlast its run.
CONSUMPTION_RUN_DURATION = timedelta(days=90)
TEAMS_CONNECTION = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/connections/teams"


def _workflow(name: str) -> dict:
    return la.load(INFRA / name)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_each_workflow_has_what_the_language_requires(name: str) -> None:
    assert la.check_definition(_workflow(name)) == []


def test_the_check_finds_what_a_definition_lacks() -> None:
    broken = _workflow("onboard-tenant.workflow.json")
    actions = broken["definition"]["actions"]
    del actions["Start_onboarding"]["inputs"]["uri"]
    actions["Onboarding_completed"]["runAfter"]["Start_onboarding"].append("Done")
    actions["Onboarding_completed"]["actions"]["Onboarded"]["inputs"]["x"] = "@parameters('nowhere')"
    actions["Onboarding_completed"]["actions"]["Onboarded"]["inputs"]["y"] = "@frobnicate()"
    broken["definition"]["$schema"] = "https://example.com/schema.json"
    problems = la.check_definition(broken)
    assert any("inputs.method and inputs.uri" in p for p in problems)
    assert any("runAfter statuses" in p for p in problems)
    assert any("'nowhere'" in p for p in problems)
    assert any("$schema" in p for p in problems)
    functions = la.Functions(la.Run(broken, {}, {}, la.Clock(lambda s: None)))
    with pytest.raises(la.ExpressionError, match="frobnicate"):
        la.evaluate_value("@frobnicate()", functions)


def test_the_onboarding_waits_past_the_manual_deadline_within_a_run() -> None:
    action = _workflow("onboard-tenant.workflow.json")["definition"]["actions"]["Start_onboarding"]
    timeout = la.iso_duration(action["limit"]["timeout"])
    deadline = next(f.default for f in dataclasses.fields(Settings) if f.name == "manual_deadline_days")
    assert timedelta(days=deadline) < timeout <= CONSUMPTION_RUN_DURATION
    assert "DisableAsyncPattern" not in action.get("operationOptions", "")  # the asynchronous pattern polls
    assert action["runtimeConfiguration"]["secureData"]["properties"] == ["inputs"]  # the key stays out of history


def test_the_failure_branch_also_runs_after_the_http_action_failed() -> None:
    condition = _workflow("onboard-tenant.workflow.json")["definition"]["actions"]["Onboarding_completed"]
    assert set(condition["runAfter"]["Start_onboarding"]) == {"Succeeded", "Failed", "TimedOut"}
    failure = condition["else"]["actions"]
    assert failure["Report_failure"]["inputs"]["uri"] == "@parameters('alertWebhookUrl')"
    assert failure["Fail_the_run"]["inputs"]["runStatus"] == "Failed"


def _alert(**extra) -> dict:
    alert = {"id": "alert-cert-0b1c-5f2e9a-certificateExpiry-14", "type": "certificateExpiry", "severity": "warning",
             "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "serviceMailbox": "o'brien+sync@contoso.com",
             "appId": "11111111-2222-3333-4444-555555555555", "thumbprint": "3F2A" * 10,
             "notAfter": "2027-01-15T00:00:00+00:00", "daysLeft": 14, "threshold": 14,
             "onboardingId": "72f988bf-86f1-41af-91ab-2d7cd011db47.0123456789abcdef0123", "detail": None, **extra}
    return alerts.json_body(alert, "https://api.contoso.com/api/onboardings/x/status?token=t")


def test_the_alert_trigger_takes_certauths_json_alerts() -> None:
    trigger = _workflow("expiry-alerts.workflow.json")["definition"]["triggers"]["manual"]
    schema = trigger["inputs"]["schema"]
    single = _alert()
    assert set(single) <= set(schema["properties"])
    jsonschema.validate(single, schema)
    digest = alerts.digest_bodies("digest-1", [single, _alert(id="alert-2", daysLeft=7)], [None, None], "json")[0]
    jsonschema.validate(digest, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "x", "schema": "something/else"}, schema)


def _post_alerts(body: dict) -> tuple[la.Run, list[dict]]:
    posted: list[dict] = []

    def teams(method: str, path: str, payload) -> dict:
        posted.append({"method": method, "path": path, "body": payload})
        return {"statusCode": 201, "body": {"id": f"message-{len(posted)}"}}

    workflow = _workflow("expiry-alerts.workflow.json")
    connections = {"teams": {"connectionId": TEAMS_CONNECTION, "connectionName": "teams"}}
    run = la.Run(workflow, {"$connections": connections, "teamsGroupId": "group-1", "teamsChannelId": "19:c@thread"},
                 copy.deepcopy(body), la.Clock(lambda s: None), connectors={TEAMS_CONNECTION: teams}).start()
    return run, posted


def test_an_alert_becomes_one_adaptive_card_in_the_teams_channel() -> None:
    run, posted = _post_alerts(_alert())
    assert run.status == "Succeeded"
    assert len(posted) == 1
    post = posted[0]
    # Microsoft Teams connector, PostCardToConversation: /v1.0/teams/conversation/adaptivecard/poster/{poster}/
    # location/{location}, the Flow bot in a channel (learn.microsoft.com/connectors/teams).
    assert post["method"] == "post"
    assert post["path"] == "/v1.0/teams/conversation/adaptivecard/poster/Flow bot/location/Channel"
    assert post["body"]["recipient"] == {"groupId": "group-1", "channelId": "19:c@thread"}
    card = json.loads(post["body"]["messageBody"])
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Alert id"] == "alert-cert-0b1c-5f2e9a-certificateExpiry-14"
    assert facts["Days left"] == "14"
    assert facts["Detail"] == ""
    assert "o'brien+sync@contoso.com" in card["body"][0]["text"]


def test_a_digest_posts_one_card_per_alert() -> None:
    many = [_alert(id=f"alert-{n}", daysLeft=n) for n in (7, 3, 1)]
    digest = alerts.digest_bodies("digest-2", many, [None] * 3, "json")[0]
    run, posted = _post_alerts(digest)
    assert run.status == "Succeeded"
    assert [json.loads(p["body"]["messageBody"])["body"][1]["facts"][-1]["value"] for p in posted] == \
           ["alert-7", "alert-3", "alert-1"]


def test_expressions_follow_the_language() -> None:
    functions = la.Functions(la.Run({"definition": {}}, {"age": 42, "name": "Sophia"}, {"a": {"b": None}},
                                    la.Clock(lambda s: None)))
    functions.run.parameters = {"age": 42, "name": "Sophia"}
    assert la.evaluate_value("@parameters('age')", functions) == 42
    assert la.evaluate_value("@{parameters('age')}", functions) == "42"
    assert la.evaluate_value("My age is @{parameters('age')}", functions) == "My age is 42"
    assert la.evaluate_value("@@{parameters('age')}", functions) == "@{parameters('age')}"
    assert la.evaluate_value("@triggerBody()?['a']?['b']?['c']", functions) is None
    assert la.evaluate_value("@coalesce(triggerBody()?['x'], 'it''s')", functions) == "it's"
    with pytest.raises(la.ExpressionError):
        la.evaluate_value("@triggerBody()['x']['y']", functions)
