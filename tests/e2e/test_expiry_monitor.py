"""The expiry monitor end to end on the sandbox host: a certificate of 2 months, rotation off, the clock moved day
by day with the timer run through the host's admin route (twice at once each day): exactly one alert per threshold
30/14/7/3/1 and one when expired; skipping 10 days alerts only the current threshold; the latest run says when it
started and finished; GET /api/certificates lists what is tracked, paged."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from tests.conftest import customers
from tests.e2e.conftest import TERMINAL, Product

DAY = 86400
THRESHOLDS = [30, 14, 7, 3, 1]
RETENTION_DAYS = 45


@pytest.fixture(scope="module")
def monitor(simulator, azurite, webhook):
    """The product with rotation off (only alerts) delivering to the loopback webhook (json) and by mail, keeping
    Durable history and audit entries for 45 days."""
    process = Product(simulator, azurite.connection_string, env={
        "CERTAUTH_ROTATE_BEFORE_DAYS": "0", "CERTAUTH_HISTORY_RETENTION_DAYS": str(RETENTION_DAYS),
        "CERTAUTH_AUDIT_RETENTION_DAYS": str(RETENTION_DAYS),
        "CERTAUTH_ALERT_WEBHOOK_URL": webhook.url, "CERTAUTH_ALERT_WEBHOOK_FORMAT": "json",
        "CERTAUTH_ALERT_MAIL_FROM": f"certauth-alerts@{simulator.home['domain']}",
        "CERTAUTH_ALERT_MAIL_TO": "ops@contoso.example"}).launch()
    yield process
    process.stop()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_timer(product, state, times: int = 1) -> list[dict]:
    """Run expiry_check through the admin route `times` times at once; the runs' records once all finished."""
    before = {run["RunId"] for run in state.expiry_runs(1000)}
    with ThreadPoolExecutor(times) as pool:
        answers = list(pool.map(lambda _: product.call("POST", "/admin/functions/expiry_check", key="admin",
                                                       json={"input": ""}), range(times)))
    assert [a.status_code for a in answers] == [202] * times, [a.text for a in answers]
    deadline = time.monotonic() + 60
    while True:
        new = [run for run in state.expiry_runs(1000) if run["RunId"] not in before]
        if len(new) == times and all(run.get("FinishedAt") for run in new):
            return new
        assert time.monotonic() < deadline, ("the timer runs did not finish", new, product.stderr_lines[-20:])
        time.sleep(0.05)  # polling the run records


def alerts_for(runs: list[dict], onboarding_id: str) -> list[tuple[str, int]]:
    return [(a["type"], a["threshold"]) for run in runs for a in json.loads(run.get("Alerts") or "[]")
            if a["onboardingId"] == onboarding_id]


def onboard(simulator, product, mailbox: str) -> dict:
    tenant = customers(simulator)[0]["tenantId"]
    simulator.consent(tenant, state="consent")
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox, "certificate": {"validityMonths": 2}})
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Completed", status
    return {"id": started["id"]}


def certificate_of(state, onboarding_id: str) -> dict:
    return next(e for e in state.certificates_page(None, 1000)[0] if e["RowKey"] == onboarding_id)


def now(simulator) -> datetime:
    return _parse(simulator.admin("GET", "/clock")["now"])


def wait_delivered(product, instance: str, timeout: float = 60) -> dict:
    """Poll the alert orchestration's status until it ends (its sinks retry on durable timers only on failure)."""
    deadline = time.monotonic() + timeout
    while True:
        status = product.status(instance)
        if status is not None and status["runtimeStatus"] in TERMINAL:
            return status
        assert time.monotonic() < deadline, (instance, status, product.stderr_lines[-20:])
        time.sleep(0.05)  # polling the status


def test_one_alert_per_threshold_then_expired_with_concurrent_runs(simulator, monitor, state, webhook, clean_faults):
    onboarded = onboard(simulator, monitor, "expiry-daily@contoso.com")
    certificate = certificate_of(state, onboarded["id"])
    not_after = certificate["NotAfter"]
    assert 55 * DAY < (not_after - now(simulator)).total_seconds() < 63 * DAY
    runs: list[dict] = []
    checked_list = False
    while (not_after - now(simulator)).total_seconds() > -2 * DAY:
        runs += run_timer(monitor, state, times=2)
        left = (not_after - now(simulator)).total_seconds() / DAY
        if not checked_list and 15 < left < 29:
            checked_list = True
            listed = monitor.api("GET", "/certificates?expiringWithinDays=30").json()
            mine = [c for c in listed["value"] if c["onboardingId"] == onboarded["id"]]
            assert len(mine) == 1, listed
            assert mine[0]["thumbprint"] == certificate["Thumbprint"]
            assert mine[0]["lastAlert"]["type"] == "certificateExpiry"
            assert mine[0]["daysLeft"] == int(left)
            assert mine[0]["tenantId"] == customers(simulator)[0]["tenantId"]
            assert mine[0]["rotation"] is None
            soon = monitor.api("GET", "/certificates?expiringWithinDays=10").json()["value"]
            assert onboarded["id"] not in {c["onboardingId"] for c in soon}
        simulator.advance_clock(DAY)
    assert checked_list
    sent = alerts_for(runs, onboarded["id"])
    assert sent == [("certificateExpiry", t) for t in THRESHOLDS] + [("certificateExpired", 0)], sent

    latest = monitor.api("GET", "/expiry-runs/latest")
    assert latest.status_code == 200, latest.text
    body = latest.json()
    assert body["status"] == "completed"
    assert _parse(body["finishedAt"]) >= _parse(body["startedAt"])
    assert body["runId"] in {run["RunId"] for run in runs}

    assert body["historyPurged"] >= 0, body
    assert body["auditPurged"] >= 0, body

    name, version = certificate["CertificateName"], certificate["Version"]
    started = [a["started"] for run in runs for a in json.loads(run.get("Alerts") or "[]")
               if a["onboardingId"] == onboarded["id"]]
    assert started == [True] * len(sent)
    ids = [f"alert-{name}-{version}-{kind}-{threshold}" for kind, threshold in sent]
    assert monitor.status(f"alert-{name}-{version}-certificateExpiry-21") is None
    finished = {instance: wait_delivered(monitor, instance) for instance in ids}
    assert all(status["runtimeStatus"] == "Completed" for status in finished.values()), finished
    # what the admins receive: exactly one webhook body per threshold and one when expired, one mail each
    bodies = [b for b in webhook.bodies() if b.get("onboardingId") == onboarded["id"]]
    assert sorted((b["id"], b["type"], b["threshold"]) for b in bodies) == sorted(
        (instance, kind, threshold) for instance, (kind, threshold) in zip(ids, sent, strict=True)), bodies
    assert all(b["schema"] == "certauth.alert/v1" and b["thumbprint"] == certificate["Thumbprint"] for b in bodies)
    mails = [m for m in simulator.admin("GET", f"/tenants/{simulator.home['tenantId']}/mail")["value"]
             if "expiry-daily@contoso.com" in (m["message"].get("subject") or "")]
    subjects = sorted(m["message"]["subject"] for m in mails)
    assert subjects == sorted(["certauth: Certificate expires soon (expiry-daily@contoso.com)"] * len(THRESHOLDS)
                              + ["certauth: Certificate expired (expiry-daily@contoso.com)"]), subjects
    # each was raised once (the orchestration's own audit entry, keyed by the alert id)
    raised = [e["AlertId"] for e in state.audit_trail(onboarded["id"]) if e["Event"] == "alertRaised"]
    assert sorted(raised) == sorted(ids)

    # retention: the onboarding's instance and audit entries are over 45 days old, so they are gone
    assert monitor.status(onboarded["id"]) is None
    trail = state.audit_trail(onboarded["id"])
    assert trail, "the alerts' own audit entries are recent and stay"
    assert all((now(simulator) - entry["At"]).total_seconds() < RETENTION_DAYS * DAY for entry in trail), trail
    assert not [entry for entry in trail if entry["Event"].startswith("certificate.")], trail


def test_after_skipped_days_only_the_current_threshold_alerts(simulator, monitor, state, clean_faults):
    onboarded = onboard(simulator, monitor, "expiry-skip@contoso.com")
    not_after = certificate_of(state, onboarded["id"])["NotAfter"]
    # to 16 days left: only 30 (14 is not reached yet)
    simulator.advance_clock((not_after - now(simulator)).total_seconds() - 16 * DAY)
    first = alerts_for(run_timer(monitor, state), onboarded["id"])
    assert first == [("certificateExpiry", 30)]
    # ten days skipped: 6 days left, 14 was skipped over, only 7 alerts
    simulator.advance_clock(10 * DAY)
    assert alerts_for(run_timer(monitor, state, times=2), onboarded["id"]) == [("certificateExpiry", 7)]
    assert alerts_for(run_timer(monitor, state), onboarded["id"]) == []


def test_the_certificates_list_is_paged_with_next_links(monitor):
    first = monitor.api("GET", "/certificates?top=1")
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["value"]) == 1, page
    assert "continuationToken=" in page["nextLink"]
    assert "top=1" in page["nextLink"]
    following = monitor.call("GET", page["nextLink"].split(monitor.base_url, 1)[-1]).json()
    assert following["value"]
    assert following["value"][0]["onboardingId"] != page["value"][0]["onboardingId"]
    bad = monitor.api("GET", "/certificates?expiringWithinDays=soon")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["target"] == "expiringWithinDays"
