"""Offboarding: DELETE /api/onboardings/{id}, its own status URL, the manual method's removal script and its
verify-removal, the offboarding orchestrator and its activities (thin adapters over shared/offboarding.py).

DELETE answers 202 with the offboarding's status URL (`GET /api/onboardings/{id}/offboarding?token=…`, a token of
its own purpose: 202 until the offboarding ends, then 200), 409 while an onboarding or a rotation of the pair is
active, and 200 with the earlier result when the onboarding is retired already (a second DELETE is a no-op; one with
`permanent=true` after a plain one runs again, to delete permanently what the first left in deleted items).

The orchestration, instance `offboarding-{onboardingId}`: for the automatic method the steps of shared/offboarding.py
in order, each retried on durable timers through run_step (functions/onboarding.py); for the manual method rounds of
waiting (the external event RemovalVerified from POST …/verify-removal, or the next poll, until
CERTAUTH_MANUAL_DEADLINE_DAYS), each round one generation that checks read-only what is left; once nothing is, the
certificate and the records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func

from functions.api import (
    azure_error,
    capability_valid,
    handled,
    http_status,
    json_response,
    public_base,
    retry_after,
    validation_error,
    wants_failure_as_error,
    with_query,
)
from functions.onboarding import ACTIVE, ONBOARDING_ID, RECORD_RETRY, StepFailed, _runtime, _zulu, run_step, wait_round
from shared.offboarding import (
    ACTIVE_STATES,
    EXPIRED,
    FAILED,
    RETIRED,
    RUNNING,
    WAITING,
    Offboarding,
    offboarding_instance_id,
    offboarding_of,
    offboarding_request,
)
from shared.onboarding import application_display_name, application_unique_name, parse_time
from shared.powershell import removal_script_bytes, removal_script_filename
from shared.rotation import rotation_instance_id
from shared.settings import get_settings
from shared.signing import make_token, signing_keys
from shared.state import state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

STATUS_PURPOSE = "offboardingStatus"
REMOVAL_VERIFIED = "RemovalVerified"
ORCHESTRATOR = "offboarding_orchestrator"
TERMINAL_STATES = (RETIRED, FAILED, EXPIRED)


def _record(instance: str) -> dict | None:
    stored = state_store(get_settings()).get_onboarding(instance)
    return stored.entity if stored else None


def _permanent(req: func.HttpRequest) -> bool | None:
    """The `permanent` query switch: True, False, or None when it is not true/false."""
    value = (req.params.get("permanent") or "false").strip().lower()
    return {"true": True, "false": False}.get(value)


async def _status_url(req: func.HttpRequest, onboarding: str) -> str:
    """The offboarding's own tokenised status URL (read-only, this onboarding's offboarding only, expiring)."""
    settings = get_settings()
    key = await asyncio.to_thread(signing_keys(settings).current)
    token = make_token(key, STATUS_PURPOSE, onboarding, int(time.time()) + settings.status_token_days * 86400)
    url = (f"{public_base(req, settings.public_base_url)}/api/onboardings/{quote(onboarding, safe='')}/offboarding"
           f"?token={quote(token, safe='')}")
    return with_query(url, **({"returnInternalServerErrorOnFailure": "true"} if wants_failure_as_error(req) else {}))


# -- DELETE /api/onboardings/{id} ------------------------------------------------------------------------------

@bp.route(route="onboardings/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def offboard(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or join) the offboarding of an onboarding; `?permanent=true` also empties deleted items and purges
    the certificate where the vault allows it."""
    onboarding = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(onboarding):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    permanent = _permanent(req)
    if permanent is None:
        return validation_error([{"field": "permanent", "rule": "must be true or false"}])
    record = await asyncio.to_thread(_record, onboarding)
    if record is None:
        return azure_error(404, "OnboardingNotFound", f"onboarding {onboarding} does not exist", target="id")
    running = await client.get_status(onboarding)
    if running is not None and running.runtime_status in ACTIVE:
        return azure_error(409, "OnboardingInProgress", f"onboarding {onboarding} is running ({_runtime(running)}): "
                           "offboard it after it ends", target="onboarding",
                           innererror={"onboarding": {"id": onboarding, "runtimeStatus": _runtime(running)}})
    rotating = await client.get_status(rotation_instance_id(onboarding))
    if rotating is not None and rotating.runtime_status in ACTIVE:
        return azure_error(409, "RotationInProgress", f"the certificate of onboarding {onboarding} is being rotated "
                           f"({_runtime(rotating)}): offboard it after the rotation ends", target="onboarding",
                           innererror={"rotation": {"id": rotation_instance_id(onboarding),
                                                    "runtimeStatus": _runtime(rotating)}})
    instance = offboarding_instance_id(onboarding)
    earlier = offboarding_of(record)
    existing = await client.get_status(instance)
    if existing is not None and existing.runtime_status in ACTIVE:
        if bool(earlier.get("permanent")) != permanent:
            return azure_error(409, "OffboardingInProgress", f"onboarding {onboarding} is being offboarded with "
                               f"permanent={str(bool(earlier.get('permanent'))).lower()}: wait until it ends, then "
                               "DELETE again", target="permanent")
        return await _accepted(req, onboarding, earlier)
    if record.get("Status") == RETIRED and earlier.get("state") == RETIRED and (earlier.get("permanent")
                                                                                 or not permanent):
        # A second DELETE: nothing to do; the earlier result, as its status URL would answer it.
        body = await _status_body(req, client, onboarding, record)
        body.pop("_custom")
        return json_response({**body, "statusQueryGetUri": await _status_url(req, onboarding)}, 200)
    state = {"state": RUNNING, "instanceId": instance, "permanent": permanent,
             "method": record.get("Method") or "automatic", "requestedAt": _zulu(datetime.now(UTC))}
    await asyncio.to_thread(state_store(get_settings()).merge_onboarding, onboarding,
                            {"Offboarding": json.dumps(state)})
    try:
        await client.start_new(ORCHESTRATOR, instance, {"onboardingId": onboarding, "permanent": permanent})
    except Exception:
        current = await client.get_status(instance)  # a concurrent DELETE started it first: join it
        if current is None or current.runtime_status not in ACTIVE:
            # Nothing runs: the record must not say "running" (the expiry monitor leaves running ones alone).
            failed = {**state, "state": FAILED, "error": {"step": "start", "status": 0, "code": "StartFailed",
                                                          "message": "the durable runtime did not start the "
                                                                     "offboarding; DELETE again"}}
            await asyncio.to_thread(state_store(get_settings()).merge_onboarding, onboarding,
                                    {"Offboarding": json.dumps(failed)})
            raise
    log.info("offboarding %s started (permanent: %s)", onboarding, permanent)
    return await _accepted(req, onboarding, state)


async def _accepted(req: func.HttpRequest, onboarding: str, state: dict) -> func.HttpResponse:
    url = await _status_url(req, onboarding)
    return json_response({"id": offboarding_instance_id(onboarding), "onboardingId": onboarding, "status": RUNNING,
                          "permanent": bool(state.get("permanent")), "statusQueryGetUri": url}, 202,
                         {"Location": url, "Retry-After": str(retry_after("running", None))})


# -- the offboarding's status URL ---------------------------------------------------------------------------------

def _lifecycle(state: dict, runtime: str | None, active: bool) -> str | None:
    """The offboarding's status from the record's Offboarding.state and Durable's runtime status."""
    recorded = state.get("state")
    if active:
        return WAITING if recorded == WAITING else RUNNING
    if recorded in TERMINAL_STATES:
        return recorded
    if recorded in ACTIVE_STATES or runtime in ("Failed", "Terminated"):
        return FAILED  # the instance ended without recording its end
    return recorded


async def _status_body(req: func.HttpRequest, client: df.DurableOrchestrationClient, onboarding: str,
                       record: dict) -> dict:
    status = await client.get_status(offboarding_instance_id(onboarding))
    state = offboarding_of(record)
    runtime = _runtime(status)
    active = status is not None and status.runtime_status in ACTIVE
    custom = status.custom_status if status is not None and isinstance(status.custom_status, dict) else {}
    lifecycle = _lifecycle(state, runtime, active)
    body = {"id": offboarding_instance_id(onboarding), "onboardingId": onboarding, "runtimeStatus": runtime,
            "status": lifecycle, "step": custom.get("step") if active else state.get("step"),
            "method": state.get("method") or record.get("Method") or "automatic",
            "permanent": bool(state.get("permanent")), "onboardingStatus": record.get("Status"),
            "removed": (custom.get("created") if active else None) or state.get("removed") or {},
            "certificate": state.get("certificate"), "remaining": state.get("remaining") or [],
            "deadline": state.get("deadline"), "startedAt": state.get("startedAt"),
            "retiredAt": state.get("retiredAt"), "error": state.get("error") or custom.get("error")}
    if body["method"] == "manual":
        base = f"{public_base(req, get_settings().public_base_url)}/api/onboardings/{quote(onboarding, safe='')}"
        body["removalScriptUrl"] = f"{base}/removal-script"
        body["verifyRemovalUrl"] = f"{base}/verify-removal"
    return {**body, "_custom": custom}


@bp.route(route="onboardings/{id}/offboarding", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handled(log)
async def get_offboarding_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The offboarding's status URL (the DELETE's Location): authorised by its own token, read-only."""
    onboarding = req.route_params.get("id", "")
    forbidden = azure_error(403, "AuthorizationFailed", "the status token is missing, expired or not valid for "
                            "this offboarding: use the status URL of the DELETE's own answer")
    if not await capability_valid(STATUS_PURPOSE, onboarding, req.params.get("token") or ""):
        return forbidden
    record = await asyncio.to_thread(_record, onboarding)
    if record is None or not offboarding_of(record):
        return azure_error(404, "OffboardingNotFound", f"onboarding {onboarding} has no offboarding")
    body = await _status_body(req, client, onboarding, record)
    custom = body.pop("_custom")
    code = http_status(body["status"], wants_failure_as_error(req)) if body["status"] in TERMINAL_STATES else 202
    if code == 500:
        error = body["error"] or {}
        return azure_error(500, "OffboardingFailed", f"offboarding of {onboarding} {body['status']}: "
                           f"{error.get('message') or 'see the status'}", target=error.get("step"),
                           innererror={"offboarding": body})
    if code == 202:
        return json_response(body, 202, {"Location": req.url,
                                         "Retry-After": str(retry_after(body["status"], custom))})
    return json_response(body, code)


# -- the manual method: the removal script and verify-removal -------------------------------------------------------

@bp.route(route="onboardings/{id}/removal-script", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def get_removal_script(req: func.HttpRequest) -> func.HttpResponse:
    """The manual method's removal script (UTF-8 with a BOM, pure ASCII after it). Permanent when the offboarding
    under way is, or when `?permanent=true` asks."""
    onboarding = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(onboarding):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    asked = req.params.get("permanent")
    permanent = _permanent(req) if asked is not None else None
    if asked is not None and permanent is None:
        return validation_error([{"field": "permanent", "rule": "must be true or false"}])
    record = await asyncio.to_thread(_record, onboarding)
    if record is None:
        return azure_error(404, "OnboardingNotFound", f"onboarding {onboarding} does not exist", target="id")
    if (record.get("Method") or "automatic") != "manual":
        return azure_error(409, "NotManualOnboarding", f"onboarding {onboarding} uses the automatic method: "
                           f"DELETE /api/onboardings/{onboarding} removes it, no script is needed", target="method")
    if permanent is None:
        permanent = bool(offboarding_of(record).get("permanent"))
    body = removal_script_bytes(
        tenant_id=record["TenantId"], unique_name=application_unique_name(onboarding),
        display_name=application_display_name(get_settings(), record["ServiceMailbox"]),
        app_id=record.get("AppId") or None, onboarding_id=onboarding, permanent=permanent)
    return func.HttpResponse(body, status_code=200, headers={
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{removal_script_filename(record["TenantId"])}"',
        "Cache-Control": "no-store"})


@bp.route(route="onboardings/{id}/verify-removal", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def verify_removal(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The admin says the removal script ran: raise RemovalVerified; 202 with the offboarding's status URL."""
    onboarding = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(onboarding):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    record = await asyncio.to_thread(_record, onboarding)
    if record is None:
        return azure_error(404, "OnboardingNotFound", f"onboarding {onboarding} does not exist", target="id")
    if (record.get("Method") or "automatic") != "manual":
        return azure_error(409, "NotManualOnboarding", f"onboarding {onboarding} uses the automatic method: its "
                           "offboarding needs no verification", target="method")
    instance = offboarding_instance_id(onboarding)
    status = await client.get_status(instance)
    state = offboarding_of(record)
    if status is None or status.runtime_status not in ACTIVE or state.get("state") != WAITING:
        return azure_error(409, "NotWaitingForAdmin", f"the offboarding of {onboarding} is not waiting for the admin "
                           f"(status {state.get('state')}, runtime {_runtime(status)}): DELETE "
                           f"/api/onboardings/{onboarding} starts it", target="id")
    await client.raise_event(instance, REMOVAL_VERIFIED, {"at": datetime.now(UTC).isoformat()})
    log.info("offboarding %s: the admin asked for verification", onboarding)
    return await _accepted(req, onboarding, state)


# -- the orchestrator ---------------------------------------------------------------------------------------------

@bp.orchestration_trigger(context_name="context")
def offboarding_orchestrator(context: df.DurableOrchestrationContext):
    """Remove what the onboarding made, in order, then retire the records. Input {onboardingId, permanent} (and, in
    a manual offboarding's later generations, the request and its wait state). Custom status {step, steps,
    attempt, created (what was removed so far), retryAt?, waitingFor?}.

    One step at a time, unlike onboarding: issue 12 orders the removal (role, app roles, service principal, app,
    certificate), so privilege goes first. Only the certificate needs nothing from the Graph steps; it stays last
    all the same, so that an offboarding that fails in Graph for good (say, the onboarding app's consent was taken
    back) leaves the onboarding with its certificate: nothing is retired, and the app that is still there still has
    a working key."""
    given = context.get_input() or {}
    onboarding = given["onboardingId"]
    request = given.get("request")
    if request is None:
        started = context.current_utc_datetime
        deadline = started + timedelta(days=get_settings().manual_deadline_days)
        begun = yield context.call_activity_with_retry("offboarding_begin", RECORD_RETRY, {
            "onboardingId": onboarding, "permanent": bool(given.get("permanent")), "instanceId": context.instance_id,
            "runStartedAt": started.isoformat(), "deadline": _zulu(deadline)})
        if not begun.get("ok"):
            context.set_custom_status({"step": "begin", "error": begun["error"]})
            return {"state": FAILED, "error": begun["error"]}
        request = begun["request"]
        state = begun["state"]
    else:
        state = given["state"]
    if request["method"] == "manual":
        return (yield from _manual(context, request, state, given.get("wait") or {}))
    return (yield from _automatic(context, request, state))


def _fail(context: df.DurableOrchestrationContext, request: dict, state: dict, step: str, exc: Exception):
    """Record a step's permanent failure (the onboarding keeps its status: nothing is retired), then fail."""
    error = exc.error if isinstance(exc, StepFailed) else {
        "step": step, "status": 0, "code": type(exc).__name__, "message": str(exc)[:1000]}
    state = {**state, "state": FAILED, "step": step, "error": error,
             "endedAt": context.current_utc_datetime.isoformat()}
    context.set_custom_status({"step": step, "steps": [], "error": error})
    yield context.call_activity_with_retry("offboarding_state", RECORD_RETRY, {
        "request": request, "state": state, "event": "offboarding.failed"})
    raise RuntimeError(f"offboarding failed at step {error['step']}: {error['status']} {error['code']}: "
                       f"{error['message']}") from None


def _automatic(context: df.DurableOrchestrationContext, request: dict, state: dict):
    removed: dict = {}
    deleted: dict = {}
    current = {"step": "locate"}

    def step(name: str, activity: str, extra: dict):
        current["step"] = name
        return (yield from run_step(context, request, name, activity, extra, removed))

    try:
        found = yield from step("locate", "offboarding_locate", {})
        sp_id = (found.get("servicePrincipal") or {}).get("id")
        app_object_id = (found.get("application") or {}).get("id")
        deleted.update({"applicationObjectId": app_object_id or request.get("applicationObjectId"),
                        "appId": found.get("appId"), "servicePrincipalId": sp_id})
        roles = yield from step("directoryRoles", "offboarding_remove_directory_roles", {"servicePrincipalId": sp_id})
        removed["directoryRoleAssignments"] = roles["removed"]
        grants = yield from step("appRoleAssignments", "offboarding_remove_app_role_assignments",
                                 {"servicePrincipalId": sp_id})
        removed["appRoleAssignments"] = grants["removed"]
        sp = yield from step("servicePrincipal", "offboarding_remove_service_principal", {"servicePrincipalId": sp_id})
        removed["servicePrincipal"] = sp["deleted"]
        app = yield from step("application", "offboarding_remove_application",
                              {"applicationObjectId": app_object_id})
        removed["application"] = app["deleted"]
        if request.get("permanent"):
            purged = yield from step("deletedItems", "offboarding_delete_permanently", {"appId": found.get("appId")})
            removed["deletedPermanently"] = purged["deletedPermanently"]
        certificate = yield from step("certificate", "offboarding_remove_certificate", {})
        final = {**state, "step": "record", "removed": removed, "deleted": deleted,
                 "certificate": certificate["certificate"]}
        retired = yield from step("record", "offboarding_retire", {"state": final})
    except Exception as exc:
        # What it deleted so far is recorded too: a re-onboarding restores the app a failed offboarding deleted.
        yield from _fail(context, request, {**state, "removed": removed,
                                            "deleted": deleted if "application" in removed else {}},
                         current["step"], exc)
    context.set_custom_status({"step": RETIRED, "steps": [], "created": removed})
    return retired["offboarding"]


def _manual(context: df.DurableOrchestrationContext, request: dict, state: dict, wait: dict):
    """Rounds of waiting for the admin's removal script, each one generation: wait for RemovalVerified or the
    next poll, check read-only; once nothing is left, the certificate and the records."""
    settings = get_settings()
    deadline = parse_time(state["deadline"])
    rounds = wait.get("rounds", 0)
    current = {"step": WAITING}

    def record(new_state: dict, event: str | None = None):
        return context.call_activity_with_retry("offboarding_state", RECORD_RETRY, {
            "request": request, "state": new_state, "event": event, "auditKey": f"{event}-{rounds}"})

    def next_generation(new_state: dict):
        context.continue_as_new({"onboardingId": request["onboardingId"], "request": request, "state": new_state,
                                 "wait": {"rounds": rounds + 1}})

    try:
        context.set_custom_status({"step": WAITING, "steps": [WAITING], "round": rounds, "deadline": _zulu(deadline),
                                   "remaining": state.get("remaining") or []})
        outcome = yield from wait_round(context, REMOVAL_VERIFIED, deadline, settings.manual_poll_minutes)
        if outcome == "deadline":
            error = {"step": WAITING, "status": 0, "code": "DeadlineExceeded",
                     "message": f"the removal was not confirmed before the deadline {_zulu(deadline)} "
                                f"(CERTAUTH_MANUAL_DEADLINE_DAYS): run the removal script, then DELETE again"}
            expired = {**state, "state": EXPIRED, "error": error, "endedAt": context.current_utc_datetime.isoformat()}
            context.set_custom_status({"step": WAITING, "steps": [], "error": error})
            yield record(expired, "offboarding.expired")
            return expired
        current["step"] = "verification"
        checked = yield from run_step(context, request, "verification", "offboarding_check_removed", {}, {},
                                      raise_failures=False)
        if not checked.get("ok"):
            yield record({**state, "state": WAITING, "error": checked["error"]}, "offboarding.verificationFailed")
            next_generation({**state, "error": checked["error"]})
            return None
        if not checked.get("verifierConsented"):
            remaining = ["not checked: the verifier app is not consented in the tenant"]
            yield record({**state, "state": WAITING, "remaining": remaining, "error": None})
            next_generation({**state, "remaining": remaining})
            return None
        if checked["remaining"]:
            waiting = {**state, "state": WAITING, "remaining": checked["remaining"], "error": None}
            yield record(waiting, "offboarding.removalIncomplete")
            next_generation(waiting)
            return None
        current["step"] = "certificate"
        removed = {"verified": checked["gone"]}
        certificate = yield from run_step(context, request, "certificate", "offboarding_remove_certificate", {},
                                          removed)
        final = {**state, "step": "record", "removed": removed, "remaining": [],
                 "deleted": {"appId": (checked.get("appIds") or [None])[0]}, "certificate": certificate["certificate"],
                 "error": None}
        current["step"] = "record"
        retired = yield from run_step(context, request, "record", "offboarding_retire", {"state": final}, removed)
    except Exception as exc:
        yield from _fail(context, request, state, current["step"], exc)
    context.set_custom_status({"step": RETIRED, "steps": []})
    return retired["offboarding"]


# -- activities ---------------------------------------------------------------------------------------------------

def _offboarding(payload: dict) -> Offboarding:
    return Offboarding(get_settings(), payload["request"])


@bp.activity_trigger(input_name="payload")
def offboarding_begin(payload: dict) -> dict:
    """The offboarding's request from the record, and its state recorded as started."""
    onboarding = payload["onboardingId"]
    record = _record(onboarding)
    if record is None:
        return {"ok": False, "retry": False, "error": {"step": "begin", "status": 404, "code": "OnboardingNotFound",
                                                       "message": f"onboarding {onboarding} does not exist"}}
    request = offboarding_request(onboarding, record, payload["permanent"], payload["runStartedAt"])
    manual = request["method"] == "manual"
    state = {"state": WAITING if manual else RUNNING, "instanceId": payload["instanceId"],
             "permanent": request["permanent"], "method": request["method"], "startedAt": payload["runStartedAt"]}
    if manual:
        state["deadline"] = payload["deadline"]
    Offboarding(get_settings(), request).write_state(state, "offboarding.started",
                                                     {"Permanent": request["permanent"], "Method": request["method"]})
    return {"ok": True, "request": request, "state": state}


@bp.activity_trigger(input_name="payload")
async def offboarding_locate(payload: dict) -> dict:
    """What of the onboarding exists in Graph (read only)."""
    return await _offboarding(payload).locate()


@bp.activity_trigger(input_name="payload")
async def offboarding_remove_directory_roles(payload: dict) -> dict:
    """Step 1: the directory role assignments."""
    return await _offboarding(payload).remove_directory_roles(payload.get("servicePrincipalId"))


@bp.activity_trigger(input_name="payload")
async def offboarding_remove_app_role_assignments(payload: dict) -> dict:
    """Step 2: the app role assignments."""
    return await _offboarding(payload).remove_app_role_assignments(payload.get("servicePrincipalId"))


@bp.activity_trigger(input_name="payload")
async def offboarding_remove_service_principal(payload: dict) -> dict:
    """Step 3: the service principal (to deleted items)."""
    return await _offboarding(payload).remove_service_principal(payload.get("servicePrincipalId"))


@bp.activity_trigger(input_name="payload")
async def offboarding_remove_application(payload: dict) -> dict:
    """Step 4: the application (to deleted items)."""
    return await _offboarding(payload).remove_application(payload.get("applicationObjectId"))


@bp.activity_trigger(input_name="payload")
async def offboarding_delete_permanently(payload: dict) -> dict:
    """permanent: the application and service principal out of deleted items."""
    return await _offboarding(payload).delete_permanently(payload.get("appId"))


@bp.activity_trigger(input_name="payload")
def offboarding_remove_certificate(payload: dict) -> dict:
    """Step 5: the Key Vault certificate, soft-deleted (purged with permanent, where the vault allows)."""
    return _offboarding(payload).remove_certificate()


@bp.activity_trigger(input_name="payload")
async def offboarding_check_removed(payload: dict) -> dict:
    """The manual method: what is left, read as the verifier (GETs only)."""
    return await _offboarding(payload).check_removed()


@bp.activity_trigger(input_name="payload")
def offboarding_retire(payload: dict) -> dict:
    """The records say retired; the certificate leaves the expiry index."""
    return _offboarding(payload).retire(payload["state"])


@bp.activity_trigger(input_name="payload")
def offboarding_state(payload: dict) -> dict:
    """The record's Offboarding field, with an audit entry when the payload names an event."""
    offboarding = _offboarding(payload)
    event = payload.get("event")
    if event and payload.get("auditKey"):
        offboarding.write_state(payload["state"])
        offboarding.audit(payload["auditKey"], event, {"State": json.dumps(payload["state"])})
        return {"ok": True}
    return offboarding.write_state(payload["state"], event, {"State": json.dumps(payload["state"])} if event else None)
