"""The expiry monitor: the `expiry_check` timer trigger, GET /api/expiry-runs/latest and GET /api/certificates.

The timer reads only the certificates due (the expiry index), claims each alert once per threshold and certificate
version (ETag-guarded), starts one `alert_orchestrator` per alert and a `rotation_orchestrator` per certificate
within the rotation lead, purges old Durable history and audit entries, and records the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

from functions.api import ACTIVE_RUNTIME, azure_error, handled, json_response, next_link, page_options, validation_error
from shared.drift import new_drift_alerts
from shared.expiry import days_left, drift_candidates, due_certificates, plan, rotation_of, run_summary
from shared.settings import get_settings
from shared.state import state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

ALERT_ORCHESTRATOR = "alert_orchestrator"
ROTATION_ORCHESTRATOR = "rotation_orchestrator"
# Durable's terminal runtime statuses: only instances that ended are purged.
PURGED_STATUSES = (df.OrchestrationRuntimeStatus.Completed, df.OrchestrationRuntimeStatus.Failed,
                   df.OrchestrationRuntimeStatus.Terminated)
# The purge's lower bound: the extension requires createdTimeFrom, so "since ever".
PURGE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_EXPIRING_WITHIN_DAYS = 3650


def _iso(value) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


@bp.timer_trigger(arg_name="timer", schedule="%CERTAUTH_EXPIRY_SCHEDULE%", use_monitor=True)
@bp.durable_client_input(client_name="client")
async def expiry_check(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """The daily expiry run (also run by hand: POST /admin/functions/expiry_check with the admin key)."""
    if timer.past_due:
        log.warning("expiry_check is past due (a missed schedule); running now")
    await run_expiry_check(client, past_due=timer.past_due)


async def run_expiry_check(client: df.DurableOrchestrationClient, past_due: bool = False) -> dict:
    """One run: alerts, rotations, retention, each recorded; returns the run's summary."""
    settings = get_settings()
    store = state_store(settings)
    run, started = uuid.uuid4().hex, datetime.now(UTC)
    await asyncio.to_thread(store.start_expiry_run, run, started, {"Status": "running", "PastDue": past_due})
    alerts: list[dict] = []
    rotations: list[str] = []
    wanted: list[tuple[datetime, str, dict]] = []  # (notAfter, instance, input) of the rotations due
    failures: list[dict] = []
    scanned, deferred = 0, 0
    try:
        due = await asyncio.to_thread(due_certificates, store, started, settings.alert_thresholds_days,
                                      settings.rotate_before_days)
        for certificate in due:
            scanned += 1
            try:
                await _handle(client, store, certificate, started, settings, alerts, wanted)
            except Exception as error:  # one certificate's failure does not stop the others
                log.exception("expiry_check: certificate of onboarding %s failed", certificate.get("RowKey"))
                failures.append({"onboardingId": certificate.get("RowKey"), "error": type(error).__name__})
        deferred = await _start_rotations(client, wanted, settings.rotations_per_run, rotations, failures)
        await _check_drift(client, store, due, started, settings, alerts, failures)
        retention = await _retention(client, store, started, settings)
        status = "completed"
    except Exception:
        log.exception("expiry_check run %s failed", run)
        retention, status = {}, "failed"
    finished = datetime.now(UTC)
    fields = {"Status": status, "FinishedAt": finished, "Scanned": scanned, "RotationsDeferred": deferred, **retention,
              **run_summary(alerts, rotations, failures)}
    await asyncio.to_thread(store.finish_expiry_run, run, started, fields)
    log.info("expiry_check run %s %s: %d certificates due, %d alerts, %d rotations (%d deferred), %d failures", run,
             status, scanned, len(alerts), len(rotations), deferred, len(failures))
    return fields


async def _handle(client, store, certificate: dict, now: datetime, settings, alerts: list, wanted: list) -> None:
    """Claim and start this certificate's alert; note its rotation, if one is due, in `wanted`."""
    decision = await asyncio.to_thread(plan, store, certificate, now, settings.alert_thresholds_days,
                                       settings.rotate_before_days)
    if decision.alert is not None:
        claimed = await asyncio.to_thread(store.claim_alert, decision.onboarding_id,
                                          certificate.get("Version") or "", decision.seen, decision.claim)
        if claimed:
            alert = decision.alert
            started = await _start(client, ALERT_ORCHESTRATOR, alert["id"], alert)
            alerts.append({"id": alert["id"], "type": alert["type"], "threshold": alert["threshold"],
                           "onboardingId": decision.onboarding_id, "started": started})
            if not started:  # the next run tries again
                await asyncio.to_thread(store.release_alert, decision.onboarding_id,
                                        certificate.get("Version") or "", decision.seen)
            elif alert["type"] == "certificateExpired":
                # its last alert: the certificate leaves the index (it stays tracked in the certificates table)
                await asyncio.to_thread(store.unindex_certificate_expiry, decision.onboarding_id,
                                        certificate["NotAfter"])
        else:
            log.info("alert %s was claimed by a concurrent run", decision.alert["id"])
    if decision.rotation is not None:
        wanted.append((certificate["NotAfter"], f"rotation-{decision.onboarding_id}", decision.rotation))


def soonest_first(wanted: list[tuple[datetime, str, dict]], limit: int) -> tuple[list[tuple[str, dict]], int]:
    """The rotations to start now, the soonest to expire first, at most `limit`; and how many wait for a later run."""
    ordered = sorted(wanted, key=lambda item: (item[0], item[1]))
    return [(instance, body) for _, instance, body in ordered[:limit]], max(0, len(ordered) - limit)


async def _start_rotations(client, wanted: list[tuple[datetime, str, dict]], limit: int, rotations: list[str],
                           failures: list[dict]) -> int:
    """Start the due rotations that are not already active, at most `limit` (Key Vault throttles certificate
    creation per vault); the rest stay due and start on a later run. Returns how many were deferred."""
    idle: list[tuple[datetime, str, dict]] = []
    for not_after, instance, body in wanted:  # check-then-start: an active rotation takes no slot
        try:
            status = await client.get_status(instance)
        except Exception as error:
            log.warning("expiry_check: rotation %s not checked: %s", instance, type(error).__name__)
            failures.append({"onboardingId": body.get("onboardingId"), "error": type(error).__name__,
                             "check": "rotation"})
            continue
        if getattr(getattr(status, "runtime_status", None), "value", None) not in ACTIVE_RUNTIME:
            idle.append((not_after, instance, body))
    now_due, deferred = soonest_first(idle, limit)
    for instance, body in now_due:
        if await _start(client, ROTATION_ORCHESTRATOR, instance, body):
            rotations.append(instance)
    if deferred:
        log.info("expiry_check: %d rotation(s) deferred to the next run (at most %d start per run)", deferred, limit)
    return deferred


async def _check_drift(client, store, due: list[dict], now: datetime, settings, alerts: list,
                       failures: list) -> None:
    """Drift (shared/drift.py) of the certificates due and of today's rolling 1/30 of the rest: one alert per new
    finding. A certificate that can't be checked is a failure of the run, not of the others."""
    candidates = await asyncio.to_thread(drift_candidates, store, now, due, settings.alert_thresholds_days,
                                         settings.rotate_before_days)
    for certificate in candidates:
        try:
            found = await asyncio.to_thread(new_drift_alerts, settings, store, certificate, now)
        except Exception as error:
            log.warning("expiry_check: drift of onboarding %s not checked: %s: %s", certificate.get("RowKey"),
                        type(error).__name__, str(error)[:300])
            failures.append({"onboardingId": certificate.get("RowKey"), "error": type(error).__name__,
                             "check": "drift"})
            continue
        for alert in found:
            started = await _start(client, ALERT_ORCHESTRATOR, alert["id"], alert)
            alerts.append({"id": alert["id"], "type": alert["type"], "threshold": alert["threshold"],
                           "onboardingId": alert["onboardingId"], "started": started})


async def _start(client, orchestrator: str, instance: str, body: dict) -> bool:
    """Start an orchestration; False (logged) when the host refuses, e.g. the orchestrator is not deployed."""
    try:
        await client.start_new(orchestrator, instance_id=instance, client_input=body)
        return True
    except Exception as error:
        log.error("could not start %s %s: %s", orchestrator, instance, error)
        return False


async def _retention(client, store, now: datetime, settings) -> dict:
    """Purge Durable history of instances that ended more than the retention ago, and old audit entries."""
    result: dict = {}
    try:
        purged = await client.purge_instance_history_by(
            created_time_from=PURGE_FROM, created_time_to=now - timedelta(days=settings.history_retention_days),
            runtime_status=list(PURGED_STATUSES))
        result["HistoryPurged"] = purged.instances_deleted
    except Exception as error:
        log.error("expiry_check: purging Durable history failed: %s", error)
        result["HistoryPurged"] = -1
    result["AuditPurged"] = await asyncio.to_thread(store.purge_audit_before,
                                                    now - timedelta(days=settings.audit_retention_days))
    # An onboarding link's consent states live an hour at most; a day later nobody can be mid-consent with one.
    result["ConsentStatesPurged"] = await asyncio.to_thread(store.purge_consent_states_before, now - timedelta(days=1))
    return result


def _run_body(run: dict) -> dict:
    return {"runId": run.get("RunId"), "status": run.get("Status"), "pastDue": bool(run.get("PastDue")),
            "startedAt": _iso(run.get("StartedAt")), "finishedAt": _iso(run.get("FinishedAt")),
            "scanned": run.get("Scanned"), "alertCount": run.get("AlertCount"),
            "alerts": json.loads(run.get("Alerts") or "[]"), "rotationCount": run.get("RotationCount"),
            "rotations": json.loads(run.get("Rotations") or "[]"), "rotationsDeferred": run.get("RotationsDeferred"),
            "failureCount": run.get("FailureCount"),
            "failures": json.loads(run.get("Failures") or "[]"), "historyPurged": run.get("HistoryPurged"),
            "auditPurged": run.get("AuditPurged"), "consentStatesPurged": run.get("ConsentStatesPurged")}


@bp.route(route="expiry-runs/latest", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def latest_expiry_run(req: func.HttpRequest) -> func.HttpResponse:
    """The latest run of the expiry monitor: when it started and finished, what it started."""
    runs = await asyncio.to_thread(state_store(get_settings()).expiry_runs, 1)
    if not runs:
        return azure_error(404, "NotFound", "the expiry monitor has not run yet")
    return json_response(_run_body(runs[0]))


@bp.route(route="certificates", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def list_certificates(req: func.HttpRequest) -> func.HttpResponse:
    """Tracked certificates, paged as {value, nextLink} (Logic Apps' x-ms-pageable)."""
    problems = []
    within_raw = req.params.get("expiringWithinDays")
    within = None
    if within_raw is not None:
        if not within_raw.isdigit() or int(within_raw) > MAX_EXPIRING_WITHIN_DAYS:
            problems.append({"field": "expiringWithinDays",
                             "rule": f"must be a whole number of days from 0 to {MAX_EXPIRING_WITHIN_DAYS}"})
        else:
            within = int(within_raw)
    top, token = page_options(req, problems)
    if problems:
        return validation_error(problems)
    settings = get_settings()
    store = state_store(settings)
    now = datetime.now(UTC)
    before = now + timedelta(days=within) if within is not None else None
    page, next_token = await asyncio.to_thread(store.certificates_page, before, top, token)
    value = await asyncio.to_thread(lambda: [_certificate_body(store, entity, now) for entity in page])
    link = next_link(req, settings.public_base_url, "certificates", next_token,
                     expiringWithinDays=str(within) if within is not None else None, top=req.params.get("top"))
    return json_response({"value": value, "nextLink": link})


def _certificate_body(store, entity: dict, now: datetime) -> dict:
    """One tracked certificate for dashboards: no key material, no secrets."""
    onboarding_id = entity["RowKey"]
    record = store.get_onboarding(onboarding_id)
    onboarding = record.entity if record else {}
    state = store.alert_state(onboarding_id, entity.get("Version") or "")
    alert = state.entity if state else {}
    not_after = entity.get("NotAfter")
    return {"onboardingId": onboarding_id, "tenantId": entity.get("TenantId"),
            "serviceMailbox": entity.get("ServiceMailbox"), "appId": entity.get("AppId") or onboarding.get("AppId"),
            "thumbprint": entity.get("Thumbprint"), "notAfter": _iso(not_after),
            "daysLeft": days_left(not_after, now) if isinstance(not_after, datetime) else None,
            "lastAlert": {"id": alert["LastAlert"], "type": alert.get("LastAlertType"),
                          "at": _iso(alert.get("LastAlertAt"))} if alert.get("LastAlert") else None,
            "rotation": rotation_of(onboarding).get("state"),
            # A retired onboarding's certificate stays listed (its record is kept for audit) but is not monitored.
            "status": onboarding.get("Status")}
