"""Onboarding: HTTP routes, the onboarding orchestrator and its activities (thin adapters over shared/)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

from shared.graph import certificate_lifetime_cap
from shared.models import RequestError, parse_onboarding_request, validity_months_for
from shared.onboarding import Onboarding, parse_time
from shared.settings import get_settings
from shared.state import StateStore, onboarding_id, state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

# Durable retries of transient failures (replication delay, throttling beyond the SDK's retries, 5xx,
# consent still propagating): the orchestrator waits on a durable timer between attempts. It retries
# itself rather than through call_activity_with_retry, because Python's RetryOptions re-sends the same
# input (a stale `now`) at a fixed interval and retries every exception, permanent ones included. The
# waits grow to a minute and add up to about 12 minutes on the orchestration clock: Microsoft's guidance
# for directory replication is "10 minutes or more".
BACKOFF_SECONDS = (5, 10, 20, 40, *([60] * 11))
# Recording the outcome only writes Table Storage: a few quick tries are enough.
RECORD_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=5)
ONBOARDING_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.[0-9a-f]{20}$")
ACTIVE = {df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending}


def _json(body: dict, status: int = 200, headers: dict | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def _error(status: int, code: str, message: str, details: list | None = None) -> func.HttpResponse:
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return _json(body, status)


def _store() -> StateStore:
    return state_store(get_settings())


def _record_request(instance: str, fields: dict) -> None:
    store = _store()
    if not store.create_onboarding(instance, fields):
        # A new run of a known onboarding: this request's options replace the earlier ones.
        store.update_onboarding(instance, lambda _: fields)


def _status_url(req: func.HttpRequest, instance: str) -> str:
    base = req.url.split("/api/", 1)[0]
    return f"{base}/api/onboardings/{instance}"


@bp.route(route="onboardings", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Validate the request and start (or join) the onboarding of (tenant, mailbox)."""
    try:
        request = parse_onboarding_request(req.get_body())
    except RequestError as error:
        return _error(400, "InvalidRequest", str(error), error.problems)
    if request.method != "automatic":
        return _error(400, "InvalidRequest", "method: only 'automatic' is available in this version",
                      [{"field": "method", "rule": "only 'automatic' is available in this version"}])
    settings = get_settings()
    if not settings.provisioner_client_id and request.tenant_id != (settings.home_tenant_id or "").lower():
        rule = ("must be the home tenant (CERTAUTH_HOME_TENANT_ID): no onboarding app "
                "(CERTAUTH_PROVISIONER_CLIENT_ID) is configured for other tenants")
        return _error(400, "InvalidRequest", f"tenantId: {rule}", [{"field": "tenantId", "rule": rule}])
    # The tenant's app management policy may cap certificate lifetimes: fit the certificate to the cap, or refuse
    # an explicit validity Graph would refuse at the application step. An unknown cap (no Policy.Read.All) leaves
    # the request as it is.
    cap = await certificate_lifetime_cap(settings, request.tenant_id)
    try:
        validity_months = validity_months_for(request.certificate.validity_months, cap)
    except RequestError as error:
        return _error(400, "InvalidRequest", str(error), error.problems)
    instance = onboarding_id(request.tenant_id, request.service_mailbox)
    existing = await client.get_status(instance)
    if existing and existing.runtime_status in ACTIVE:
        # Requests for the same tenant and mailbox converge on one instance.
        return _accepted(req, instance, existing.runtime_status.value)
    payload = {
        "onboardingId": instance, "tenantId": request.tenant_id, "serviceMailbox": request.service_mailbox,
        "method": request.method, "permissionProfile": request.permission_profile,
        "directoryRole": request.directory_role,
        "certificate": {"validityMonths": validity_months,
                        "keySize": request.certificate.key_size, "exportable": request.certificate.exportable},
    }
    fields = {"TenantId": request.tenant_id, "ServiceMailbox": request.service_mailbox, "Status": "running",
              "Step": "accepted", "Method": request.method, "PermissionProfile": request.permission_profile,
              "DirectoryRole": request.directory_role or "", "Error": ""}
    # Table Storage's client is sync: keep its round trips off the worker's event loop.
    await asyncio.to_thread(_record_request, instance, fields)
    try:
        await client.start_new("onboarding_orchestrator", instance, payload)
    except Exception:
        # A concurrent request started the same instance between our status read and this start: the
        # durable runtime refuses a second start of a running instance, so join the one that runs.
        current = await client.get_status(instance)
        if current and current.runtime_status in ACTIVE:
            return _accepted(req, instance, current.runtime_status.value)
        raise
    log.info("onboarding %s started", instance)
    return _accepted(req, instance, "Pending")


def _accepted(req: func.HttpRequest, instance: str, runtime_status: str) -> func.HttpResponse:
    url = _status_url(req, instance)
    return _json({"id": instance, "runtimeStatus": runtime_status, "statusQueryGetUri": url}, 202,
                 {"Location": url})


def _status(recorded: str | None, runtime: str | None) -> str | None:
    """The record's status, unless the orchestration ended without recording it (terminated, or a failure
    the record activity could not write): then the runtime's word wins."""
    if runtime in ("Failed", "Terminated") and recorded not in ("failed",):
        return runtime.lower()
    return recorded


def _iso(value) -> str | None:
    """A Table Storage datetime as ISO-8601 UTC with Z."""
    if not isinstance(value, datetime):
        return value
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _loads(value: str | None, default):
    try:
        return json.loads(value) if value else default
    except ValueError:
        return default


@bp.route(route="onboardings/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def get_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Status of an onboarding: runtime status, current step, what was created, the error if any."""
    instance = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(instance):
        return _error(400, "InvalidRequest", "id: not an onboarding id")
    stored = await asyncio.to_thread(_store().get_onboarding, instance)
    status = await client.get_status(instance)
    if stored is None and (status is None or status.runtime_status is None):
        return _error(404, "NotFound", f"no onboarding {instance}")
    record = stored.entity if stored else {}
    custom = status.custom_status if status and isinstance(status.custom_status, dict) else {}
    output = status.output if status and isinstance(status.output, dict) else {}
    body = {
        "id": instance,
        "runtimeStatus": status.runtime_status.value if status and status.runtime_status else None,
        "status": _status(record.get("Status"), status.runtime_status.value if status and status.runtime_status
                          else None),
        "step": custom.get("step") or record.get("Step"),
        "tenantId": record.get("TenantId"), "serviceMailbox": record.get("ServiceMailbox"),
        "application": {"appId": record.get("AppId"), "objectId": record.get("ApplicationObjectId")},
        "servicePrincipalId": record.get("ServicePrincipalId"),
        "certificate": {"name": record.get("CertificateName"), "thumbprint": record.get("Thumbprint"),
                        "notAfter": _iso(record.get("NotAfter"))},
        "permissions": _loads(record.get("Permissions"), []),
        "directoryRole": record.get("DirectoryRole") or None,
        "proofRoles": _loads(record.get("ProofRoles"), {}),
        "created": custom.get("created") or _loads(record.get("Created"), {}),
        "error": _loads(record.get("Error"), None),
        "output": output or None,
    }
    running = body["runtimeStatus"] in ("Running", "Pending")
    # Like Durable's own status endpoint, tell pollers when to come back.
    return _json(body, headers={"Retry-After": "2"} if running else None)


@bp.orchestration_trigger(context_name="context")
def onboarding_orchestrator(context: df.DurableOrchestrationContext):
    """Steps 1-7, each an idempotent activity retried on durable timers; fails fast on permanent errors."""
    # The first replay's time is the run's start on every replay (deterministic): it keys the audit entries.
    request = {**context.get_input(), "runStartedAt": context.current_utc_datetime.isoformat()}
    created: dict = {}
    current = {"step": "certificate"}

    def step(name: str, activity: str, extra: dict):
        current["step"] = name
        for attempt, wait in enumerate((*BACKOFF_SECONDS, None), start=1):
            context.set_custom_status({"step": name, "attempt": attempt, "created": created})
            payload = {"request": request, "now": context.current_utc_datetime.isoformat(), **extra}
            result = yield context.call_activity(activity, payload)
            if result.get("ok") or not result.get("retry") or wait is None:
                break
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        if not result.get("ok"):
            error = result["error"]
            if result.get("retry"):
                error = {**error, "message": f"still failing after {attempt} attempts: {error['message']}"}
            raise StepFailed(error)
        return result

    try:
        cert = yield from step("certificate", "ensure_certificate", {})
        info = cert["certificate"]
        created["certificate"] = {"name": info["name"], "version": info["version"],
                                  "thumbprint": info["thumbprint"], "notAfter": info["not_after"]}
        app = yield from step("application", "ensure_application", {"certificate": info})
        created["application"] = {"appId": app["appId"], "objectId": app["applicationObjectId"]}
        sp = yield from step("servicePrincipal", "ensure_service_principal", {"application": app})
        created["servicePrincipalId"] = sp["servicePrincipalId"]
        consent = yield from step("consent", "grant_permissions", {"servicePrincipalId": sp["servicePrincipalId"]})
        created["permissions"] = consent["granted"]
        role = yield from step("directoryRole", "ensure_directory_role",
                               {"servicePrincipalId": sp["servicePrincipalId"]})
        created["directoryRole"] = role["role"]
        proof = yield from step("proof", "prove_onboarding", {"application": app, "certificate": info})
        summary = {**created, "proofRoles": proof["roles"]}
        yield from step("record", "record_onboarding_completed", {"summary": summary})
    except Exception as exc:  # a step's permanent failure, or anything unexpected: record it, then fail
        error = exc.error if isinstance(exc, StepFailed) else {
            "step": current["step"], "status": 0, "code": type(exc).__name__, "message": str(exc)[:1000]}
        context.set_custom_status({"step": current["step"], "created": created, "error": error})
        yield context.call_activity_with_retry("record_onboarding_failure", RECORD_RETRY, {
            "request": request, "now": context.current_utc_datetime.isoformat(), "error": error,
            "created": created})
        raise RuntimeError(f"onboarding failed at step {error['step']}: {error['status']} {error['code']}: "
                           f"{error['message']}") from None
    context.set_custom_status({"step": "completed", "created": created})
    return summary


class StepFailed(Exception):
    """A step failed for good; `error` names the step, the status and the service's error code."""

    def __init__(self, error: dict) -> None:
        super().__init__(error.get("message", ""))
        self.error = error


def _onboarding(payload: dict) -> Onboarding:
    return Onboarding(get_settings(), payload["request"])


def _decided_at(payload: dict) -> datetime:
    """The orchestration's time of this attempt: what a step's decisions (reuse, replication windows) use."""
    return parse_time(payload["now"])


@bp.activity_trigger(input_name="payload")
def ensure_certificate(payload: dict) -> dict:
    """Step 1: the Key Vault certificate."""
    return _onboarding(payload).ensure_certificate(_decided_at(payload))


@bp.activity_trigger(input_name="payload")
async def ensure_application(payload: dict) -> dict:
    """Step 2: the app registration carrying the certificate."""
    return await _onboarding(payload).ensure_application(payload["certificate"])


@bp.activity_trigger(input_name="payload")
async def ensure_service_principal(payload: dict) -> dict:
    """Step 3: the service principal."""
    return await _onboarding(payload).ensure_service_principal(payload["application"], _decided_at(payload))


@bp.activity_trigger(input_name="payload")
async def grant_permissions(payload: dict) -> dict:
    """Step 4: admin consent of the profile's application permissions."""
    return await _onboarding(payload).grant_permissions(payload["servicePrincipalId"])


@bp.activity_trigger(input_name="payload")
async def ensure_directory_role(payload: dict) -> dict:
    """Step 5: the directory role."""
    return await _onboarding(payload).ensure_directory_role(payload["servicePrincipalId"])


@bp.activity_trigger(input_name="payload")
def prove_onboarding(payload: dict) -> dict:
    """Step 6: a token with the new certificate whose roles hold every granted permission."""
    return _onboarding(payload).prove(payload["application"], payload["certificate"])


@bp.activity_trigger(input_name="payload")
def record_onboarding_completed(payload: dict) -> dict:
    """Step 7: the record says completed."""
    return _onboarding(payload).complete(payload["summary"])


@bp.activity_trigger(input_name="payload")
def record_onboarding_failure(payload: dict) -> dict:
    """The record says failed, with the step, Graph's error and what exists."""
    return _onboarding(payload).fail(payload["error"], payload["created"])

