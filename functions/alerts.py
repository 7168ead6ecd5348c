"""Alert delivery: one orchestration per alert (its id is the alert's id), one sub-orchestration per sink, each
retried on durable timers, and the audit records (thin adapters over shared/alerts.py).

Contract (for the monitor): ``start_new("alert_orchestrator", instance_id=alert["id"], client_input=alert)`` with
the alert dict of shared/alerts.py; for a run with many alerts, ``start_new("alert_digest_orchestrator",
instance_id=<"alert-digest-{runId}">, client_input={"id": <that id>, "alerts": [alert, ...]})``.
The webhook URL is read from the settings inside the delivery activity: it is never in an input or a result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

import azure.durable_functions as df

from functions.api import status_link
from shared import alerts as alert_payloads
from shared import failures
from shared.settings import get_settings
from shared.signing import make_token, signing_keys
from shared.state import state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

RECORD_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=5)
STATUS_PURPOSE = "status"  # the token of functions/onboarding.py's status route
# A receiver may be down for hours (a Logic App disabled, a Teams outage): back off to 15 minutes, give up after a
# day. The alert's orchestration outlives the timer run that started it.
BACKOFF_SECONDS = (30, 60, 120, 300, 600, 900)
DELIVERY_BUDGET = timedelta(hours=24)
NO_ONBOARDING = "-"  # the audit partition of an alert that names no onboarding


def _backoff(attempt: int) -> timedelta:
    return timedelta(seconds=BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1])


def _status_url(settings, onboarding: str | None) -> str | None:
    """The onboarding's signed status URL on CERTAUTH_PUBLIC_BASE_URL (none without a public base)."""
    if not onboarding or not settings.public_base_url:
        return None
    key = signing_keys(settings).current()
    token = make_token(key, STATUS_PURPOSE, onboarding, int(time.time()) + settings.status_token_days * 86400)
    return status_link(settings.public_base_url, onboarding, token)


def _audit(onboarding: str | None, event: str, at: str, details: dict, key: str) -> None:
    store = state_store(get_settings())
    store.audit(onboarding or NO_ONBOARDING, event, datetime.fromisoformat(at), details, key=key)


# -- orchestrators ---------------------------------------------------------------------------------------------

def _deliver_everywhere(context: df.DurableOrchestrationContext, delivery_id: str, payload: dict):
    """Each configured sink in its own sub-orchestration, side by side: a failing sink never holds up another."""
    sinks = yield context.call_activity("alert_sinks", None)
    tasks = [context.call_sub_orchestrator("alert_sink_orchestrator", {**payload, "sink": sink},
                                           f"{delivery_id}-{sink}") for sink in sinks]
    results = (yield context.task_all(tasks)) if tasks else []
    return dict(zip(sinks, results, strict=True))


@bp.orchestration_trigger(context_name="context", orchestration="alert_orchestrator")
def alert_orchestrator(context: df.DurableOrchestrationContext):
    """Deliver one alert to every sink, then record the outcome."""
    alert = context.get_input()
    # Durable replaces a finished instance started again with its id: an alert already delivered stays sent once.
    delivered = yield context.call_activity_with_retry("alert_delivered_before", RECORD_RETRY, alert)
    if delivered:
        return {"duplicate": True}
    at = context.current_utc_datetime.isoformat()
    yield context.call_activity_with_retry("record_alert", RECORD_RETRY,
                                           {"alerts": [alert], "event": "alertRaised", "at": at})
    outcome = yield from _deliver_everywhere(context, context.instance_id, {"alerts": [alert]})
    yield context.call_activity_with_retry("record_alert", RECORD_RETRY, {
        "alerts": [alert], "event": "alertDelivered", "at": context.current_utc_datetime.isoformat(),
        "sinks": outcome})
    return outcome


@bp.orchestration_trigger(context_name="context", orchestration="alert_digest_orchestrator")
def alert_digest_orchestrator(context: df.DurableOrchestrationContext):
    """Deliver a run's alerts as one digest per sink (Teams throttles above 4 requests a second)."""
    digest = context.get_input()
    alerts = digest["alerts"]
    if not alerts:
        return {}
    delivered = yield context.call_activity_with_retry("alert_delivered_before", RECORD_RETRY,
                                                       {**alerts[0], "digestId": digest["id"]})
    if delivered:
        return {"duplicate": True}
    at = context.current_utc_datetime.isoformat()
    yield context.call_activity_with_retry("record_alert", RECORD_RETRY,
                                           {"alerts": alerts, "event": "alertRaised", "at": at,
                                            "digestId": digest["id"]})
    outcome = yield from _deliver_everywhere(context, context.instance_id,
                                             {"alerts": alerts, "digestId": digest["id"]})
    yield context.call_activity_with_retry("record_alert", RECORD_RETRY, {
        "alerts": alerts, "event": "alertDelivered", "at": context.current_utc_datetime.isoformat(),
        "sinks": outcome, "digestId": digest["id"]})
    return outcome


@bp.orchestration_trigger(context_name="context", orchestration="alert_sink_orchestrator")
def alert_sink_orchestrator(context: df.DurableOrchestrationContext):
    """One sink: deliver, retry transient failures on durable timers within the budget, record failures."""
    payload = context.get_input()
    sink = payload["sink"]
    first_failure: datetime | None = None
    attempt = 0
    while True:
        attempt += 1
        context.set_custom_status({"sink": sink, "attempt": attempt})
        result = yield context.call_activity("deliver_alert", payload)
        if result.get("ok"):
            return {"delivered": True, "attempts": attempt}
        error = result["error"]
        now = context.current_utc_datetime
        first_failure = first_failure or now
        retry_at = now + _backoff(attempt)
        final = not result.get("retry") or retry_at > first_failure + DELIVERY_BUDGET
        if final or attempt == 1:
            yield context.call_activity_with_retry("record_alert", RECORD_RETRY, {
                "alerts": payload["alerts"], "event": "alertSinkFailed" if final else "alertSinkRetrying",
                "at": now.isoformat(), "sink": sink, "error": error, "attempt": attempt,
                "digestId": payload.get("digestId")})
        if final:
            return {"delivered": False, "attempts": attempt, "error": error}
        context.set_custom_status({"sink": sink, "attempt": attempt, "retryAt": retry_at.isoformat(),
                                   "waitingFor": error.get("waitingFor") or failures.TRANSIENT})
        yield context.create_timer(retry_at)


# -- activities -------------------------------------------------------------------------------------------------

@bp.activity_trigger(input_name="payload", activity="alert_sinks")
def alert_sinks(payload) -> list[str]:
    """The configured sinks' names (never their addresses)."""
    return alert_payloads.configured_sinks(get_settings())


@bp.activity_trigger(input_name="payload", activity="deliver_alert")
async def deliver_alert(payload: dict) -> dict:
    """Send to one sink; never raises: {"ok": True} or failures' outcome. The status URL and the webhook URL are
    made here and go nowhere else."""
    sink = payload["sink"]
    try:
        settings = get_settings()
        alerts = payload["alerts"]
        urls = await asyncio.to_thread(lambda: [_status_url(settings, a.get("onboardingId")) for a in alerts])
        await alert_payloads.deliver(settings, sink, alerts, urls, payload.get("digestId"))
    except Exception as exc:
        failure = failures.classify(f"alert:{sink}", exc)
        log.warning("alert %s to %s failed: %s %s", payload.get("digestId") or payload["alerts"][0].get("id"), sink,
                    failure.error.get("status"), failure.error.get("code"))
        return failure.outcome()
    return {"ok": True}


@bp.activity_trigger(input_name="payload", activity="alert_delivered_before")
def alert_delivered_before(payload: dict) -> bool:
    """Whether the audit already holds this alert's delivery."""
    trail = state_store(get_settings()).audit_trail(payload.get("onboardingId") or NO_ONBOARDING)
    return any(e.get("AlertId") == payload.get("id") and e.get("Event") == "alertDelivered"
               and e.get("DigestId") == payload.get("digestId") for e in trail)


@bp.activity_trigger(input_name="payload", activity="record_alert")
def record_alert(payload: dict) -> None:
    """An audit entry per alert (idempotent per alert, event and sink)."""
    details = {"AlertEvent": payload["event"]}
    if payload.get("sinks") is not None:
        details["Sinks"] = ",".join(f"{sink}:{'ok' if r.get('delivered') else 'failed'}"
                                    for sink, r in payload["sinks"].items()) or "none"
    if payload.get("sink"):
        details["Sink"] = payload["sink"]
        details["Attempt"] = payload.get("attempt")
        error = payload.get("error") or {}
        details["Error"] = f"{error.get('status')} {error.get('code')}: {error.get('message')}"[:1000]
    if payload.get("digestId"):
        details["DigestId"] = payload["digestId"]
    for alert in payload["alerts"]:
        fields = {**details, "AlertId": alert.get("id"), "AlertType": alert.get("type"),
                  "Severity": alert.get("severity"), "Threshold": str(alert.get("threshold")),
                  "Thumbprint": alert.get("thumbprint")}
        key = f"{alert.get('id')}-{payload['event']}-{payload.get('sink') or 'all'}"
        _audit(alert.get("onboardingId"), payload["event"], payload["at"],
               {k: v for k, v in fields.items() if v is not None}, key)
