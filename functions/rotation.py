"""Rotation: POST /api/onboardings/{id}/rotate, its status, the rotation orchestrator and its activities."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
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
    json_response,
    public_base,
    retry_after,
    validation_error,
)
from functions.onboarding import ACTIVE, ONBOARDING_ID, RECORD_RETRY, StepFailed, run_step
from shared.graph import certificate_lifetime_cap
from shared.keyvault import CertificateRejected, NothingPending, certificate_name, check_pfx, vault_for
from shared.offboarding import offboarding_instance_id
from shared.onboarding import parse_time
from shared.rotation import (
    COMPLETED,
    FAILED,
    MANUAL_ACTION,
    RUNNING,
    Rotation,
    rotation_instance_id,
    rotation_request,
    source_of,
    write_rotation_state,
)
from shared.rules import MAX_VALIDITY_MONTHS, RequestError, validity_months_for
from shared.settings import get_settings
from shared.signing import make_token, signing_keys
from shared.state import state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

STATUS_PURPOSE = "rotationStatus"
KEY_SIZES = (2048, 3072, 4096)
OPTION_NAMES = ("keySize", "validityMonths", "exportable")
# A PFX-imported certificate rotates to a new PFX: imported here, never passed to the orchestration (a secret).
PFX_NAMES = ("pfx", "password")
# A customer-CA certificate rotates to the certificate the CA signed for the rotation's CSR (PEM, or DER in base64).
SIGNED_NAME = "signedCertificate"
CUSTOMER_NAMES = (*PFX_NAMES, SIGNED_NAME)
MAX_SIGNED_CHARS = 64 * 1024


def _record(instance: str) -> dict:
    stored = state_store(get_settings()).get_onboarding(instance)
    return stored.entity if stored else {}


def _parse_options(body: bytes) -> tuple[dict, list[dict]]:
    """The on-demand certificate options {keySize?, validityMonths?, exportable?} and the problems found."""
    if not body.strip():
        return {}, []
    try:
        given = json.loads(body)
    except ValueError:
        return {}, [{"field": "body", "rule": "must be JSON"}]
    if not isinstance(given, dict):
        return {}, [{"field": "body", "rule": "must be a JSON object"}]
    options = given.get("certificate", given) if isinstance(given.get("certificate"), dict) else given
    allowed = OPTION_NAMES + CUSTOMER_NAMES
    problems = [{"field": name, "rule": f"is not a rotation option (allowed: {', '.join(allowed)})"}
                for name in options if name not in allowed and name != "certificate"]
    signed = options.get(SIGNED_NAME)
    if signed is not None:
        if type(signed) is not str or not signed.strip() or len(signed) > MAX_SIGNED_CHARS:
            problems.append({"field": SIGNED_NAME, "rule": "must be the signed certificate: PEM, or DER in base64"})
        if any(options.get(name) is not None for name in OPTION_NAMES + PFX_NAMES):
            problems.append({"field": SIGNED_NAME, "rule": "the signed certificate is for the CSR's key: no other "
                                                           "option goes with it"})
    pfx, password = (options.get(name) for name in PFX_NAMES)
    if pfx is not None:
        try:
            if type(pfx) is not str:
                raise ValueError
            base64.b64decode("".join(pfx.split()), validate=True)
        except ValueError:
            problems.append({"field": "pfx", "rule": "must be the PFX file in base64"})
        if password is not None and type(password) is not str:
            problems.append({"field": "password", "rule": "must be a string"})
        if any(options.get(name) is not None for name in OPTION_NAMES):
            problems.append({"field": "pfx", "rule": "a new PFX brings its own key: no other option goes with it"})
    elif password is not None:
        problems.append({"field": "password", "rule": "goes only with pfx"})
    size, months, exportable = (options.get(name) for name in OPTION_NAMES)
    if size is not None and (type(size) is not int or size not in KEY_SIZES):
        problems.append({"field": "keySize", "rule": f"must be one of {', '.join(map(str, KEY_SIZES))}"})
    if months is not None and (type(months) is not int or not 1 <= months <= MAX_VALIDITY_MONTHS):
        problems.append({"field": "validityMonths", "rule": f"must be a whole number from 1 to {MAX_VALIDITY_MONTHS}"})
    if exportable is not None and type(exportable) is not bool:
        problems.append({"field": "exportable", "rule": "must be true or false"})
    if exportable is True and not get_settings().allow_exportable_keys:
        problems.append({"field": "exportable", "rule": "must be false: exportable private keys are off for this "
                                                        "deployment (CERTAUTH_ALLOW_EXPORTABLE_KEYS)"})
    return {name: options[name] for name in allowed if options.get(name) is not None}, problems


async def _status_url(req: func.HttpRequest, onboarding: str) -> str:
    settings = get_settings()
    key = await asyncio.to_thread(signing_keys(settings).current)
    token = make_token(key, STATUS_PURPOSE, onboarding, int(time.time()) + settings.status_token_days * 86400)
    return (f"{public_base(req, settings.public_base_url)}/api/onboardings/{quote(onboarding, safe='')}/rotation"
            f"?token={quote(token, safe='')}")


@bp.route(route="onboardings/{id}/rotate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def start_rotation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or join) the rotation of an onboarding's certificate, with optional new certificate options."""
    onboarding = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(onboarding):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    options, problems = _parse_options(req.get_body())
    if problems:
        return validation_error(problems)
    record = await asyncio.to_thread(_record, onboarding)
    if not record:
        return azure_error(404, "OnboardingNotFound", f"onboarding {onboarding} does not exist")
    running = await client.get_status(onboarding)
    if running is not None and running.runtime_status in ACTIVE:
        return azure_error(409, "OnboardingInProgress", f"onboarding {onboarding} is running "
                           f"({running.runtime_status.value}): rotate after it ends", target="onboarding")
    offboarding = await client.get_status(offboarding_instance_id(onboarding))
    if offboarding is not None and offboarding.runtime_status in ACTIVE:
        # The offboarding removes the app and the certificate a rotation would write to.
        return azure_error(409, "OffboardingInProgress", f"onboarding {onboarding} is being offboarded "
                           f"({offboarding.runtime_status.value}): nothing is left to rotate", target="onboarding")
    if record.get("Status") != "completed":
        return azure_error(409, "OnboardingNotCompleted", f"onboarding {onboarding} is {record.get('Status')!r}: "
                           "only a completed onboarding's certificate rotates", target="onboarding")
    if "validityMonths" in options and (record.get("Method") or "automatic") == "automatic":
        cap = await certificate_lifetime_cap(get_settings(), record["TenantId"])
        try:
            validity_months_for(options["validityMonths"], cap)
        except RequestError as error:
            return validation_error(error.problems)
    instance = rotation_instance_id(onboarding)
    existing = await client.get_status(instance)
    pfx = options.pop("pfx", None)
    password = options.pop("password", None) or ""
    signed = options.pop(SIGNED_NAME, None)
    if (pfx is not None or signed is not None) and existing is not None and existing.runtime_status in ACTIVE:
        return azure_error(409, "RotationInProgress", f"the certificate of onboarding {onboarding} is being "
                           "rotated: POST the new certificate after the rotation ends",
                           target="pfx" if pfx is not None else SIGNED_NAME)
    if pfx is not None:
        refused = await _import_new_pfx(onboarding, record, base64.b64decode("".join(pfx.split())), password)
        if refused is not None:
            return refused
    if signed is not None:
        refused = await _merge_signed(onboarding, record, signed)
        if refused is not None:
            return refused
    if existing is None or existing.runtime_status not in ACTIVE:
        try:
            await client.start_new("rotation_orchestrator", instance, {
                "onboardingId": onboarding, "reason": "onDemand", "certificate": options})
        except Exception:
            # An overlapping start (the expiry monitor's) won the race: join it.
            current = await client.get_status(instance)
            if current is None or current.runtime_status not in ACTIVE:
                raise
        log.info("rotation %s started", instance)
    url = await _status_url(req, onboarding)
    return json_response({"id": instance, "onboardingId": onboarding, "status": "running",
                          "statusQueryGetUri": url}, 202, {"Location": url, "Retry-After": str(retry_after("running",
                                                                                                          None))})


async def _import_new_pfx(onboarding: str, record: dict, pfx: bytes, password: str) -> func.HttpResponse | None:
    """Import the customer's new PFX as the next version of a PFX-imported certificate (the rotation then puts its
    key on the app); a 400 naming the problem otherwise. The PFX and its password go no further than Key Vault."""
    if source_of(_loads(record.get("CertificateOptions"))) != "imported":
        return validation_error([{"field": "pfx", "rule": "only a certificate imported from a PFX rotates to a new "
                                                          "PFX; this one is made by Key Vault or the customer's CA"}])
    now = datetime.now(UTC)
    try:
        await asyncio.to_thread(check_pfx, pfx, password, now)
        await asyncio.to_thread(vault_for(get_settings()).import_pfx, certificate_name(onboarding), pfx, password,
                                now)
    except CertificateRejected as error:
        return azure_error(400, error.code, f"{error.field}: {error.rule}", target=error.field,
                           details=[{"code": "InvalidValue", "target": error.field, "message": error.rule}])
    return None


async def _merge_signed(onboarding: str, record: dict, signed: str) -> func.HttpResponse | None:
    """Merge the certificate the customer's CA signed into the rotation's pending CSR (Key Vault checks it is for the
    CSR's key): the next version, which the rotation then puts on the app. A 400 / 409 naming the problem."""
    if source_of(_loads(record.get("CertificateOptions"))) != "customerCa":
        return validation_error([{"field": SIGNED_NAME, "rule": "only a certificate from the customer's CA rotates "
                                                                "to a signed certificate"}])
    if "-----BEGIN" in signed:
        upload = signed.encode()
    else:
        try:
            upload = base64.b64decode("".join(signed.split()), validate=True)
        except ValueError:
            return validation_error([{"field": SIGNED_NAME, "rule": "must be PEM, or DER in base64"}])
    try:
        await asyncio.to_thread(vault_for(get_settings()).merge, certificate_name(onboarding), upload)
    except CertificateRejected as error:
        return azure_error(400, error.code, f"{SIGNED_NAME}: {error.rule}", target=SIGNED_NAME,
                           details=[{"code": "InvalidValue", "target": SIGNED_NAME, "message": error.rule}])
    except NothingPending:
        return azure_error(409, "NoCertificateExpected", f"onboarding {onboarding} has no pending CSR: POST "
                           f"/api/onboardings/{onboarding}/rotate without a certificate first; it makes one",
                           target=SIGNED_NAME)
    return None


@bp.route(route="onboardings/{id}/rotation", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handled(log)
async def get_rotation_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The rotation's own status URL (the 202's Location): authorised by its token, read-only."""
    onboarding = req.route_params.get("id", "")
    forbidden = azure_error(403, "AuthorizationFailed", "the status token is missing, expired or not valid for "
                            "this rotation: use the status URL of the rotate request's own 202")
    if not await capability_valid(STATUS_PURPOSE, onboarding, req.params.get("token") or ""):
        return forbidden
    instance = rotation_instance_id(onboarding)
    status = await client.get_status(instance)
    record = await asyncio.to_thread(_record, onboarding)
    rotation = _loads(record.get("Rotation"))
    runtime = status.runtime_status.value if status is not None and status.runtime_status is not None else None
    active = status is not None and status.runtime_status in ACTIVE
    state = RUNNING if active else rotation.get("state") or (FAILED if runtime in ("Failed", "Terminated") else None)
    if state is None:
        return azure_error(404, "RotationNotFound", f"onboarding {onboarding} has no rotation")
    if not active and state == RUNNING:
        state = FAILED  # the instance ended without recording its end
    body = {"id": instance, "onboardingId": onboarding, "runtimeStatus": runtime, "status": state,
            "rotation": rotation, "customStatus": status.custom_status if status is not None else None}
    if active:
        return json_response(body, 202, {"Location": req.url, "Retry-After": str(retry_after("running", None))})
    return json_response(body, 200)


def _loads(text) -> dict:
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _alerts_available() -> bool:
    """Whether this deployment has the alert orchestration (functions/alerts.py)."""
    return importlib.util.find_spec("functions.alerts") is not None


@bp.orchestration_trigger(context_name="context")
def rotation_orchestrator(context: df.DurableOrchestrationContext):
    """Rotate an onboarding's certificate: new Key Vault version, addKey (proof by the current key), token proof,
    records, a grace period on a durable timer, removeKey (proof by the new key), record. Each step is an
    idempotent activity retried through run_step; the record's `Rotation` field says where it stands. One step at
    a time: each needs the one before (addKey the new version, the proof the key on the app, removeKey the proof
    and the grace period); what is independent runs at once inside rotation_begin."""
    given = context.get_input() or {}
    onboarding = given["onboardingId"]
    started = context.current_utc_datetime
    rotation = {"state": RUNNING, "instanceId": context.instance_id, "startedAt": started.isoformat(),
                "reason": given.get("reason") or "onDemand"}
    begun = yield context.call_activity_with_retry("rotation_begin", RECORD_RETRY, {
        "onboardingId": onboarding, "options": given.get("certificate") or {}, "rotation": rotation,
        "runStartedAt": started.isoformat()})
    if not begun.get("ok"):
        rotation = {**rotation, "state": FAILED, "error": begun["error"]}
        yield context.call_activity_with_retry("rotation_state", RECORD_RETRY, {
            "onboardingId": onboarding, "rotation": rotation, "event": "rotation.failed"})
        return rotation
    request = {**begun["request"], "runStartedAt": started.isoformat()}
    application, old, options = begun["application"], begun["old"], begun["options"]
    rotation["oldThumbprint"] = old["thumbprint"]
    created: dict = {}
    current = {"step": "certificate"}

    def step(name: str, activity: str, extra: dict):
        current["step"] = name
        return (yield from run_step(context, request, name, activity, extra, created))

    try:
        cert = yield from step("certificate", "rotation_new_certificate", {"old": old, "options": options})
        if MANUAL_ACTION in cert:
            return (yield from _manual_action(context, request, rotation, cert[MANUAL_ACTION], old, application))
        new = cert["certificate"]
        rotation["newThumbprint"] = new["thumbprint"]
        created["certificate"] = {"thumbprint": new["thumbprint"], "notAfter": new["not_after"]}
        added = yield from step("application", "rotation_add_key", {"application": application, "old": old,
                                                                     "new": new})
        if MANUAL_ACTION in added:
            return (yield from _manual_action(context, request, rotation, added[MANUAL_ACTION], old, application))
        yield from step("proof", "rotation_prove", {"application": application, "certificate": new})
        rotation["keyAddedVia"] = added.get("via")
        rotation["step"] = "grace"
        rotation["graceUntil"] = (context.current_utc_datetime
                                  + timedelta(hours=begun["graceHours"])).isoformat()
        yield from step("record", "rotation_record", {"old": old, "new": new, "options": options,
                                                      "rotation": rotation})
        context.set_custom_status({"step": "grace", "graceUntil": rotation["graceUntil"], "created": created})
        yield context.create_timer(parse_time(rotation["graceUntil"]))
        removed = yield from step("removeKey", "rotation_remove_key", {"application": application, "old": old,
                                                                        "new": new})
        rotation = {**rotation, "state": COMPLETED, "step": "completed", "removedKeyIds": removed["removed"],
                    "completedAt": context.current_utc_datetime.isoformat()}
        yield context.call_activity_with_retry("rotation_state", RECORD_RETRY, {
            "request": request, "onboardingId": onboarding, "rotation": rotation, "event": "rotation.completed"})
    except Exception as exc:
        error = exc.error if isinstance(exc, StepFailed) else {
            "step": current["step"], "status": 0, "code": type(exc).__name__, "message": str(exc)[:1000]}
        rotation = {**rotation, "state": FAILED, "step": current["step"], "error": error}
        context.set_custom_status({"step": current["step"], "error": error, "created": created})
        yield context.call_activity_with_retry("rotation_state", RECORD_RETRY, {
            "request": request, "onboardingId": onboarding, "rotation": rotation, "event": "rotation.failed"})
        raise RuntimeError(f"rotation failed at step {error['step']}: {error['status']} {error['code']}: "
                           f"{error['message']}") from None
    context.set_custom_status({"step": "completed", "created": created})
    return rotation


def _manual_action(context: df.DurableOrchestrationContext, request: dict, rotation: dict, action: dict, old: dict,
                   application: dict):
    """Record the manual action on the record and raise a manualActionNeeded alert (when alerts exist)."""
    rotation = {**rotation, "state": MANUAL_ACTION, "manualAction": action,
                "endedAt": context.current_utc_datetime.isoformat()}
    context.set_custom_status({"step": MANUAL_ACTION, "manualAction": action})
    yield context.call_activity_with_retry("rotation_state", RECORD_RETRY, {
        "request": request, "onboardingId": request["onboardingId"], "rotation": rotation,
        "event": "rotation.manualActionNeeded"})
    if _alerts_available():
        alert_id = f"alert-{old['name']}-{old['version']}-{MANUAL_ACTION}-{action['kind']}"
        alert = {"id": alert_id, "schema": "certauth.alert/v1", "type": MANUAL_ACTION, "severity": "critical",
                 "tenantId": request["tenantId"], "serviceMailbox": request["serviceMailbox"],
                 "appId": application.get("appId"), "thumbprint": old["thumbprint"], "notAfter": old["not_after"],
                 "daysLeft": None, "threshold": None, "onboardingId": request["onboardingId"],
                 "detail": action["detail"]}
        try:
            # Its own instance: delivery retries on its timers without holding this rotation.
            yield context.call_sub_orchestrator("alert_orchestrator", alert, alert_id)
        except Exception as error:  # the alert is recorded above; its delivery is the alert orchestration's
            log.warning("rotation %s: manualActionNeeded alert not delivered: %s", context.instance_id, error)
    return rotation


@bp.activity_trigger(input_name="payload")
async def rotation_begin(payload: dict) -> dict:
    """The onboarding's request, app and current certificate, and the certificate options the rotation uses."""
    settings = get_settings()
    onboarding = payload["onboardingId"]
    record = await asyncio.to_thread(_record, onboarding)
    if not record:
        return {"ok": False, "retry": False, "error": {"step": "rotation", "status": 404,
                                                       "code": "OnboardingNotFound",
                                                       "message": f"onboarding {onboarding} does not exist"}}
    request = {**rotation_request(onboarding, record), "runStartedAt": payload["runStartedAt"]}
    rotation = Rotation(settings, request)
    stored = request["certificate"] or {}
    # Fit the tenant's cap on key lifetimes (Policy.Read.All); the manual method's verifier can't read it.
    fits = source_of(stored) == "keyVault" and request["method"] == "automatic"
    # The Rotation field's write, the current version's read (Key Vault) and the tenant's cap (Graph) need nothing
    # from each other: at once.
    _, begun, cap = await asyncio.gather(
        asyncio.to_thread(rotation.set_state, payload["rotation"], "rotation.started"),
        asyncio.to_thread(rotation.begin, record),
        certificate_lifetime_cap(settings, request["tenantId"]) if fits else _no_cap())
    if not begun.get("ok"):
        return begun
    asked = payload.get("options") or {}
    options = {"keySize": asked.get("keySize") or stored.get("keySize") or begun["old"].get("key_size") or 2048,
               "exportable": asked.get("exportable", stored.get("exportable", False)),
               "validityMonths": asked.get("validityMonths") or stored.get("validityMonths")}
    if fits:
        try:
            options["validityMonths"] = validity_months_for(options["validityMonths"], cap)
        except RequestError:
            options["validityMonths"] = validity_months_for(None, cap)
    else:
        options["validityMonths"] = validity_months_for(options["validityMonths"], None)
    return {**begun, "request": request, "options": options, "graceHours": settings.rotation_grace_hours}


async def _no_cap() -> None:
    return None


def _rotation(payload: dict) -> Rotation:
    return Rotation(get_settings(), payload["request"])


@bp.activity_trigger(input_name="payload")
def rotation_new_certificate(payload: dict) -> dict:
    """Step 1: a new Key Vault version (or a manual action for a customer's certificate)."""
    return _rotation(payload).new_certificate(payload["old"], payload["options"], parse_time(payload["now"]))


@bp.activity_trigger(input_name="payload")
async def rotation_add_key(payload: dict) -> dict:
    """Step 2: addKey with the current key's proof (or the fallbacks when every key expired)."""
    return await _rotation(payload).add_key(payload["application"], payload["old"], payload["new"],
                                            parse_time(payload["now"]))


@bp.activity_trigger(input_name="payload")
def rotation_prove(payload: dict) -> dict:
    """Step 3: tokens with the new key, the Exchange proof included (the onboarding's own proof)."""
    return _rotation(payload).prove(payload["application"], payload["certificate"], parse_time(payload["now"]))


@bp.activity_trigger(input_name="payload")
def rotation_record(payload: dict) -> dict:
    """Step 4: the records carry the new certificate."""
    return _rotation(payload).record_new_certificate(payload["old"], payload["new"], payload["options"],
                                                     payload["rotation"])


@bp.activity_trigger(input_name="payload")
async def rotation_remove_key(payload: dict) -> dict:
    """Step 6: removeKey of the old key with the new key's proof."""
    return await _rotation(payload).remove_old_key(payload["application"], payload["old"], payload["new"])


@bp.activity_trigger(input_name="payload")
def rotation_state(payload: dict) -> dict:
    """Write the record's Rotation field, with an audit entry."""
    return write_rotation_state(state_store(get_settings()), payload["onboardingId"], payload["rotation"],
                                payload.get("event"))
