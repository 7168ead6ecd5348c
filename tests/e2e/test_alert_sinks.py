"""Alert sinks end to end (issue 11, item 3): `alert_orchestrator` started through the host's durable HTTP API with an
alert dict; the loopback webhook gets it once (json and teams), the mail is recorded by Graph's sendMail in the home
tenant, a webhook that answers 500 gets the alert after it recovers (durable timers, the sandbox clock) while mail is
not held up, and the webhook's secret-bearing URL appears in no history, table or log."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient

from shared.alerts import SCHEMA, alert_instance_id
from shared.state import onboarding_id, store_for
from tests.conftest import customers
from tests.e2e.conftest import TERMINAL, Product

PUBLIC_BASE = "https://certauth.contoso.example"


def _env(simulator, webhook, webhook_format: str) -> dict[str, str]:
    return {"CERTAUTH_ALERT_WEBHOOK_URL": webhook.url, "CERTAUTH_ALERT_WEBHOOK_FORMAT": webhook_format,
            "CERTAUTH_ALERT_MAIL_FROM": f"certauth-alerts@{simulator.home['domain']}",
            "CERTAUTH_ALERT_MAIL_TO": "ops@contoso.example, security@contoso.example",
            "CERTAUTH_PUBLIC_BASE_URL": PUBLIC_BASE}


@pytest.fixture(scope="module")
def alerting(simulator, azurite, webhook):
    """The product with both sinks on, the webhook in the json format."""
    process = Product(simulator, azurite.connection_string, env=_env(simulator, webhook, "json")).launch()
    yield process
    process.stop()


def _alert(simulator, kind: str = "certificateExpiry", threshold: int = 14) -> dict:
    tenant = customers(simulator)[1]["tenantId"]
    mailbox = f"alerts-{uuid.uuid4().hex[:8]}@{customers(simulator)[1]['domain']}"
    version = uuid.uuid4().hex
    return {"id": alert_instance_id(f"cert-{uuid.uuid4().hex[:12]}", version, kind, threshold), "schema": SCHEMA,
            "type": kind, "severity": "warning", "tenantId": tenant, "serviceMailbox": mailbox,
            "appId": str(uuid.uuid4()), "thumbprint": uuid.uuid4().hex.upper()[:40].ljust(40, "0"),
            "notAfter": "2027-01-15T00:00:00+00:00", "daysLeft": threshold, "threshold": threshold,
            "onboardingId": onboarding_id(tenant, mailbox), "detail": None}


def _start(product: Product, alert: dict) -> None:
    response = product.call("POST", f"/runtime/webhooks/durabletask/orchestrators/alert_orchestrator/{alert['id']}",
                            key="admin", json=alert)
    assert response.status_code == 202, response.text


def _mail_about(simulator, alert: dict) -> list[dict]:
    sent = simulator.admin("GET", f"/tenants/{simulator.home['tenantId']}/mail")["value"]
    return [m for m in sent if alert["serviceMailbox"] in (m["message"].get("subject") or "")]


def _finish(product: Product, instance: str, timeout: float = 60) -> dict:
    """Follow the alert's orchestration until it ends, moving the sandbox clock to its sinks' pending retry timers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = product.status(instance)
        if status is not None and status["runtimeStatus"] in TERMINAL:
            return status
        for sink in ("webhook", "mail"):
            events = (product.status(f"{instance}-{sink}", history=True) or {}).get("historyEvents") or []
            fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
            pending = [e for e in events if e["EventType"] == "TimerCreated" and e.get("EventId") not in fired]
            if pending:
                now = datetime.fromisoformat(product.simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
                due = max(datetime.fromisoformat(e["FireAt"].replace("Z", "+00:00")) for e in pending)
                if due > now:
                    product.simulator.advance_clock((due - now).total_seconds() + 0.5)
        time.sleep(0.05)  # polling the status, not waiting for time to pass
    raise AssertionError(f"alert {instance} did not finish:\n" + "\n".join(product.stderr_lines[-30:]))


def _delivered_to_webhook(webhook, alert: dict) -> list[dict]:
    return [b for b in webhook.bodies() if b.get("id") == alert["id"]]


def test_an_alert_reaches_the_webhook_once_and_the_mail(simulator, alerting, webhook) -> None:
    alert = _alert(simulator)
    _start(alerting, alert)
    status = _finish(alerting, alert["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["webhook"]["delivered"] is True
    assert status["output"]["mail"]["delivered"] is True

    [body] = _delivered_to_webhook(webhook, alert)
    assert body["schema"] == "certauth.alert/v1"
    for field in ("type", "severity", "tenantId", "serviceMailbox", "appId", "thumbprint", "notAfter", "daysLeft",
                  "threshold", "onboardingId"):
        assert body[field] == alert[field], field
    # The signed status URL of the onboarding, on the public base (functions/api.py's shape).
    assert body["statusUrl"].startswith(f"{PUBLIC_BASE}/api/onboardings/{alert['onboardingId']}/status?token=")

    [mail] = _mail_about(simulator, alert)
    assert mail["from"] == f"certauth-alerts@{simulator.home['domain']}"
    recipients = [r["emailAddress"]["address"] for r in mail["message"]["toRecipients"]]
    assert recipients == ["ops@contoso.example", "security@contoso.example"]
    assert mail["message"]["body"]["contentType"].lower() == "html"
    assert alert["thumbprint"] in mail["message"]["body"]["content"]
    [text] = mail["message"]["attachments"]
    assert text["contentType"] == "text/plain"

    # The same alert started again (Durable replaces a finished instance): still delivered once.
    _start(alerting, alert)
    again = _finish(alerting, alert["id"])
    assert again["output"] == {"duplicate": True}
    assert len(_delivered_to_webhook(webhook, alert)) == 1
    assert len(_mail_about(simulator, alert)) == 1


def test_a_failing_webhook_gets_the_alert_after_it_recovers_and_mail_is_not_held_up(simulator, alerting,
                                                                                     webhook) -> None:
    alert = _alert(simulator, threshold=7)
    webhook.fail_next(3)
    attempts_before = len(webhook.attempts)
    _start(alerting, alert)
    # Mail goes out while the webhook still fails (no clock moved yet: the webhook's retry timer is pending).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _mail_about(simulator, alert):
        time.sleep(0.05)
    assert len(_mail_about(simulator, alert)) == 1
    assert _delivered_to_webhook(webhook, alert) == []
    assert webhook.attempts[attempts_before] == 500

    status = _finish(alerting, alert["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["webhook"] == {"delivered": True, "attempts": 4}
    assert webhook.attempts[attempts_before:] == [500, 500, 500, 202]
    assert len(_delivered_to_webhook(webhook, alert)) == 1
    assert len(_mail_about(simulator, alert)) == 1

    # Audit: the alert raised, the webhook's failure recorded, the outcome of both sinks.
    entries = store_for(alerting.connection_string).audit_trail(alert["onboardingId"])
    events = sorted(e["Event"] for e in entries if e.get("AlertId") == alert["id"])
    assert events == ["alertDelivered", "alertRaised", "alertSinkRetrying"]
    [delivered] = [e for e in entries if e["Event"] == "alertDelivered"]
    assert delivered["Sinks"] == "webhook:ok,mail:ok"

    # The failures were logged (so the log scan below reads the product's lines), without the URL.
    assert any(alert["id"] in line and "webhook failed" in line for line in alerting.stderr_lines)
    _assert_webhook_url_nowhere(alerting, webhook, alert["id"])


def test_failing_mail_is_retried_and_does_not_hold_up_the_webhook(simulator, alerting, webhook, clean_faults) -> None:
    alert = _alert(simulator, threshold=1)
    # Graph answers 500 to sendMail twice (msgraph-sdk's own retry handler does not retry 500: the product does).
    simulator.set_faults([{"origin": "graph", "method": "POST", "path": "/sendMail", "status": 500, "count": 2}])
    _start(alerting, alert)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _delivered_to_webhook(webhook, alert):
        time.sleep(0.05)
    assert len(_delivered_to_webhook(webhook, alert)) == 1
    assert _mail_about(simulator, alert) == []
    status = _finish(alerting, alert["id"])
    assert status["output"]["mail"] == {"delivered": True, "attempts": 3}
    assert len(_mail_about(simulator, alert)) == 1
    trail = store_for(alerting.connection_string).audit_trail(alert["onboardingId"])
    [retrying] = [e for e in trail if e["Event"] == "alertSinkRetrying"]
    assert retrying["Sink"] == "mail"
    assert retrying["Error"].startswith("500 ")


def test_a_digest_sends_one_request_and_one_mail_for_many_alerts(simulator, alerting, webhook) -> None:
    many = [_alert(simulator, threshold=3) for _ in range(5)]
    digest_id = f"alert-digest-{uuid.uuid4().hex}"
    path = f"/runtime/webhooks/durabletask/orchestrators/alert_digest_orchestrator/{digest_id}"
    response = alerting.call("POST", path, key="admin", json={"id": digest_id, "alerts": many})
    assert response.status_code == 202, response.text
    status = _finish(alerting, digest_id)
    assert status["output"]["webhook"]["delivered"] is True
    [body] = [b for b in webhook.bodies() if b.get("id") == digest_id]
    assert body["schema"] == "certauth.alertDigest/v1"
    assert [a["id"] for a in body["alerts"]] == [a["id"] for a in many]
    sent = simulator.admin("GET", f"/tenants/{simulator.home['tenantId']}/mail")["value"]
    [mail] = [m for m in sent if all(a["thumbprint"] in m["message"]["body"]["content"] for a in many)]
    assert "5 certificate alerts" in mail["message"]["subject"]
    # Every alert of the digest is in its onboarding's audit.
    for alert in many:
        trail = store_for(alerting.connection_string).audit_trail(alert["onboardingId"])
        assert {e["Event"] for e in trail if e.get("DigestId") == digest_id} == {"alertRaised", "alertDelivered"}


def _assert_webhook_url_nowhere(product: Product, webhook, instance: str) -> None:
    """The secret-bearing URL (its sig=) is in no orchestration history, no table and no log line."""
    documents = [product.status(name, history=True) for name in (instance, f"{instance}-webhook", f"{instance}-mail")]
    assert all(documents)
    service = TableServiceClient.from_connection_string(product.connection_string)
    rows = []
    for table in service.list_tables():
        try:
            rows.extend(json.dumps(dict(e), default=str) for e in service.get_table_client(table.name).list_entities())
        except ResourceNotFoundError:
            continue  # another test's task hub, deleted meanwhile
    assert any(instance in row for row in rows)  # the scan saw this alert's rows
    logs = product.stderr_lines
    for text in [json.dumps(documents), *rows, *logs]:
        assert webhook.secret not in text
        assert "/workflows/alerts/triggers/manual" not in text


def test_teams_format_sends_an_adaptive_card(simulator, azurite, webhook) -> None:
    product = Product(simulator, azurite.connection_string, env=_env(simulator, webhook, "teams")).launch()
    try:
        alert = _alert(simulator, kind="certificateExpired", threshold=0)
        before = len(webhook.bodies())
        _start(product, alert)
        status = _finish(product, alert["id"])
        assert status["runtimeStatus"] == "Completed", status
        cards = [b for b in webhook.bodies()[before:] if alert["thumbprint"] in json.dumps(b)]
        assert len(cards) == 1
        [message] = cards
        assert message["type"] == "message"
        [attachment] = message["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard"
        assert card["version"] == "1.4"
        assert {element["type"] for element in card["body"]} <= {"TextBlock", "FactSet"}
        facts = {f["title"]: f["value"] for e in card["body"] if e["type"] == "FactSet" for f in e["facts"]}
        assert facts["Mailbox"] == alert["serviceMailbox"]
        assert facts["Alert id"] == alert["id"]  # receivers drop duplicates by it
        assert len(_mail_about(simulator, alert)) == 1
        _assert_webhook_url_nowhere(product, webhook, alert["id"])
    finally:
        product.stop()
