"""Onboarding: HTTP routes, the onboarding orchestrator and its activities (thin adapters over shared/)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import azure.durable_functions as df
import azure.functions as func

from functions.api import (
    ACTIVE_RUNTIME,
    ONBOARDING_ID,
    PROGRESSING,
    TERMINAL,
    azure_error,
    capability_valid,
    handled,
    http_status,
    json_response,
    public_base,
    retry_after,
    status_link,
    validation_error,
    view_link,
    wants_failure_as_error,
)
from functions.certificates import customer_certificate_links, import_request_pfx
from shared import failures
from shared.graph import certificate_lifetime_cap
from shared.onboarding import Onboarding, merge_changes, parse_time
from shared.rotation import rotation_instance_id
from shared.rules import RequestError, validity_months_for
from shared.settings import get_settings
from shared.signing import make_token, signing_keys
from shared.state import StateStore, onboarding_id, state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

# Recording the outcome only writes Table Storage: a few quick tries are enough.
RECORD_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=5)
# Durable's runtime statuses that are not terminal (Suspended and ContinuedAsNew included): the run can go on.
ACTIVE = {df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending,
          df.OrchestrationRuntimeStatus.Suspended, df.OrchestrationRuntimeStatus.ContinuedAsNew}
STATUS_PURPOSE = "status"
# The orchestrator of each method (the manual one lives in functions/manual.py).
ORCHESTRATORS = {"automatic": "onboarding_orchestrator", "manual": "manual_onboarding_orchestrator"}
# Certificate options only a rotation changes (POST /api/onboardings/{id}/rotate, functions/rotation.py).
CERTIFICATE_FIELDS = (("validity_months", "validityMonths"), ("key_size", "keySize"), ("exportable", "exportable"))


def _store() -> StateStore:
    return state_store(get_settings())


def _record_request(instance: str, fields: dict) -> None:
    store = _store()
    if not store.create_onboarding(instance, fields):
        # A new run of a known onboarding: this request's options replace the earlier ones.
        store.update_onboarding(instance, lambda _: fields)


def _runtime(status) -> str | None:
    return status.runtime_status.value if status is not None and status.runtime_status is not None else None


def _options(payload: dict) -> dict:
    """The options of a run that decide what it does (compared between a POST and the run it would join)."""
    return {key: payload.get(key) for key in ("method", "permissionProfile", "directoryRole", "certificate")}


def _certificate_options(request, record: dict, cap_months: int) -> tuple[dict, list[str]]:
    """The run's certificate options and the explicit ones that differ from the certificate that exists.

    A completed onboarding keeps its certificate's options (CertificateOptions, written when the run that made it
    was requested) unless the request names other ones: those only a rotation applies."""
    asked = request.certificate
    wanted = {"validityMonths": cap_months, "keySize": asked.key_size, "exportable": asked.exportable}
    # The customer's own certificate (functions/certificates.py): the PFX is imported before the start, so the run
    # only reuses it; a CSR's certificate comes from the customer's CA.
    if asked.source == "imported":
        wanted = {"imported": True}
    elif asked.source == "customerCa":
        wanted = {"issuer": "customer"}
    stored = _loads(record.get("CertificateOptions"), None)
    if record.get("Status") != "completed" or not record.get("Thumbprint") or not isinstance(stored, dict):
        return wanted, []
    stored_source = "imported" if stored.get("imported") else "customerCa" if stored.get("issuer") else "keyVault"
    if asked.source == "keyVault" and stored_source != "keyVault":
        # A completed customer certificate stays on a re-run without certificate options; options change it.
        return stored, [name for field_name, name in CERTIFICATE_FIELDS if field_name in asked.model_fields_set]
    if asked.source == "customerCa" and stored_source != "customerCa":
        return wanted, ["issuer"]
    if asked.source != "keyVault":
        return wanted, []  # a PFX: import_request_pfx compares its thumbprint with the certificate's
    changed = [name for field_name, name in CERTIFICATE_FIELDS
               if field_name in asked.model_fields_set and stored.get(name) != wanted[name]]
    return {**wanted, **{k: stored[k] for k in wanted if k in stored}}, changed


async def status_token(instance: str) -> str:
    """A new status token of one onboarding: read-only, this onboarding only, expiring. It authorises the status
    URL and the progress page."""
    settings = get_settings()
    key = await asyncio.to_thread(signing_keys(settings).current)
    return make_token(key, STATUS_PURPOSE, instance, int(time.time()) + settings.status_token_days * 86400)


async def check_status_token(instance: str, token: str) -> bool:
    """Whether `token` is a valid status token of this onboarding."""
    return await capability_valid(STATUS_PURPOSE, instance, token)


async def _status_url(req: func.HttpRequest, instance: str, *, fail_on_error: bool = False) -> str:
    """A tokenised status URL for this caller."""
    token = await status_token(instance)
    return status_link(public_base(req, get_settings().public_base_url), instance, token, fail_on_error=fail_on_error)


@bp.route(route="onboardings", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def start_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Validate the request and start (or join) the onboarding of (tenant, mailbox)."""
    from shared.models import parse_onboarding_request  # pydantic: loaded by the first request, not at import

    try:
        request = parse_onboarding_request(req.get_body())
    except RequestError as error:
        return validation_error(error.problems)
    return await begin_onboarding(req, client, request)


async def begin_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient, request, *,
                           consented_at: datetime | None = None, warnings: list[dict] | None = None
                           ) -> func.HttpResponse:
    """Start (or join) the onboarding a validated request asks for: 202 with the status URL, or the refusal in
    Azure's error shape. POST /api/onboardings and the onboarding link's callback both come here; the callback
    adds when the tenant's administrator consented and what it found about the tenant (`warnings`)."""
    manual = request.method == "manual"
    settings = get_settings()
    if manual and not settings.verifier_client_id:
        rule = ("'manual' needs the read-only verifier app (CERTAUTH_VERIFIER_CLIENT_ID), which this deployment "
                "has not configured")
        return validation_error([{"field": "method", "rule": rule}])
    if (not manual and not settings.provisioner_client_id
            and request.tenant_id != (settings.home_tenant_id or "").lower()):
        rule = ("must be the home tenant (CERTAUTH_HOME_TENANT_ID): no onboarding app "
                "(CERTAUTH_PROVISIONER_CLIENT_ID) is configured for other tenants")
        return validation_error([{"field": "tenantId", "rule": rule}])
    if request.certificate.exportable and not settings.allow_exportable_keys:
        rule = ("must be false: exportable private keys are off for this deployment (the operator enables them "
                "with CERTAUTH_ALLOW_EXPORTABLE_KEYS=true); the default key never leaves Key Vault")
        return validation_error([{"field": "certificate.exportable", "rule": rule}])
    # The tenant's app management policy may cap certificate lifetimes: fit the certificate to the cap, or refuse
    # an explicit validity Graph would refuse when the key goes onto the app. An unknown cap (no Policy.Read.All)
    # leaves the request as it is.
    # The manual method has no identity that may read the policy (the verifier holds no Policy.Read.All).
    # That read (Graph), the record (Table Storage) and the status of the pair's runs (durable) need nothing from
    # each other: all at once, then judged in order.
    instance = onboarding_id(request.tenant_id, request.service_mailbox)
    cap, stored, existing, offboarding, rotating = await asyncio.gather(
        _none() if manual else certificate_lifetime_cap(settings, request.tenant_id),
        asyncio.to_thread(_store().get_onboarding, instance),
        client.get_status(instance, show_input=True),
        client.get_status(f"offboarding-{instance}"),  # shared/offboarding.offboarding_instance_id
        client.get_status(rotation_instance_id(instance)))
    try:
        validity_months = validity_months_for(request.certificate.validity_months, cap)
    except RequestError as error:
        return validation_error(error.problems)
    record = stored.entity if stored else {}
    certificate, changed = _certificate_options(request, record, validity_months)
    if changed:
        return _rotation_conflict(instance, changed, _loads(record.get("CertificateOptions"), {}), certificate,
                                  request)
    payload = {
        "onboardingId": instance, "tenantId": request.tenant_id, "serviceMailbox": request.service_mailbox,
        "method": request.method, "permissionProfile": request.permission_profile,
        "directoryRole": request.directory_role, "certificate": certificate,
    }
    if consented_at is not None:
        payload["consentedAt"] = consented_at.astimezone(UTC).isoformat()
    active = bool(existing and existing.runtime_status in ACTIVE)
    conflict = _method_conflict(instance, record, request.method, active)
    if conflict is not None:
        return conflict
    if offboarding is not None and offboarding.runtime_status in ACTIVE:
        # The offboarding removes what this run would make: start again once it has retired the onboarding.
        return azure_error(409, "OffboardingInProgress", f"onboarding {instance} is being offboarded "
                           f"({_runtime(offboarding)}): POST the onboarding again after the offboarding ends",
                           target="onboarding", innererror={"offboarding": {"id": f"offboarding-{instance}",
                                                                            "runtimeStatus": _runtime(offboarding)}})
    if rotating is not None and rotating.runtime_status in ACTIVE:
        # The rotation changes the certificate and the app's keys: a run now would race it.
        return azure_error(409, "RotationInProgress", f"the certificate of onboarding {instance} is being rotated "
                           f"({_runtime(rotating)}): POST the onboarding again after the rotation ends",
                           target="onboarding", innererror={"rotation": {"id": rotation_instance_id(instance),
                                                                         "runtimeStatus": _runtime(rotating)}})
    if active:
        return await _join(req, instance, existing, payload)
    if request.certificate.source == "imported":
        # The PFX goes into Key Vault here and no further: the run gets {"imported": true}.
        refused = await import_request_pfx(instance, request.certificate, record)
        if refused is not None:
            return refused
    fields = {"TenantId": request.tenant_id, "ServiceMailbox": request.service_mailbox, "Status": "running",
              "Step": "accepted", "Method": request.method, "PermissionProfile": request.permission_profile,
              "DirectoryRole": request.directory_role or "", "Error": "", "Changes": "",
              "CertificateOptions": json.dumps(certificate), "Warnings": json.dumps(warnings or [])}
    # Table Storage's client is sync: keep its round trips off the worker's event loop.
    await asyncio.to_thread(_record_request, instance, fields)
    try:
        await client.start_new(ORCHESTRATORS[request.method], instance, payload)
    except Exception as error:
        # A concurrent request started the same instance between our status read and this start: the durable
        # runtime refuses a second start of a running instance, so join the one that runs.
        current = await client.get_status(instance, show_input=True)
        if current and current.runtime_status in ACTIVE:
            return await _join(req, instance, current, payload)
        # Nothing runs: the record must not say "running".
        failure = {"step": "start", "status": 0, "code": type(error).__name__,
                   "message": "the durable runtime did not start the orchestration; POST the request again"}
        await asyncio.to_thread(_store().merge_onboarding, instance,
                                {"Status": "failed", "Step": "start", "Error": json.dumps(failure)})
        raise
    log.info("onboarding %s started", instance)
    return await _accepted(req, instance, "Pending")


async def _none() -> None:
    """Nothing to read (gathered beside the reads that are)."""
    return None


def _method_conflict(instance: str, record: dict, method: str, active: bool) -> func.HttpResponse | None:
    """409 when the pair's onboarding by the other method is active or completed; after it failed, expired or was
    retired, the other method may start."""
    other = record.get("Method") or "automatic"
    status = record.get("Status")
    if not record or other == method or not (active or status == "completed"):
        return None
    state = "completed" if status == "completed" and not active else f"active ({status})"
    message = (f"onboarding {instance} of this tenant and mailbox by the {other} method is {state}: a {method} "
               f"onboarding can start only after it failed, expired or was retired (DELETE /api/onboardings/"
               f"{instance} retires it)")
    return azure_error(409, "OnboardingMethodConflict", message, target="method",
                       details=[{"code": "MethodDiffers", "target": "method",
                                 "message": f"the existing onboarding uses {other!r}; this request asks for "
                                            f"{method!r}"}],
                       innererror={"existingOnboarding": {"id": instance, "method": other, "status": status}})


def _rotation_conflict(instance: str, changed: list[str], stored: dict, wanted: dict, request) -> func.HttpResponse:
    details = [{"code": "CertificateOptionChanged", "target": f"certificate.{name}",
                "message": f"the certificate has {name}={json.dumps(stored.get(name))}; the request asks for "
                           f"{json.dumps(getattr(request.certificate, field_name))}"}
               for field_name, name in CERTIFICATE_FIELDS if name in changed]
    message = (f"onboarding {instance} is completed with a certificate whose {', '.join(changed)} differ from this "
               f"request: a re-run does not change keys. A rotation applies new certificate options: POST "
               f"/api/onboardings/{instance}/rotate with them; it answers 202 with the rotation's own status URL. "
               f"Without certificate options, a re-run keeps the certificate and reconciles the rest.")
    return azure_error(409, "CertificateOptionsRequireRotation", message, target="certificate", details=details)


async def _join(req: func.HttpRequest, instance: str, running, payload: dict) -> func.HttpResponse:
    """Join the run of the same options (202); a run of other options is a 409 that names it."""
    given = running.input_
    if isinstance(given, str):  # the input as the client stored it: JSON text
        given = _loads(given, {})
    ours, theirs = _options(payload), _options(given if isinstance(given, dict) else {})
    if ours == theirs:
        return await _accepted(req, instance, _runtime(running))
    details = [{"code": "OptionDiffers", "target": name,
                "message": f"the running onboarding has {json.dumps(theirs[name])}; this request asks for "
                           f"{json.dumps(ours[name])}"}
               for name in ours if ours[name] != theirs[name]]
    message = (f"onboarding {instance} is running ({_runtime(running)}) with other options "
               f"{json.dumps(theirs, sort_keys=True)}: wait until it ends, then POST again with the new options; "
               f"the same options join it")
    return azure_error(409, "OnboardingInProgress", message, target="onboarding", details=details,
                       innererror={"runningOnboarding": {"id": instance, "runtimeStatus": _runtime(running),
                                                         "options": theirs}})


async def _accepted(req: func.HttpRequest, instance: str, runtime_status: str | None) -> func.HttpResponse:
    token = await status_token(instance)
    base = public_base(req, get_settings().public_base_url)
    url = status_link(base, instance, token, fail_on_error=wants_failure_as_error(req))
    status = "pending" if runtime_status == "Pending" else "running"
    return json_response({"id": instance, "runtimeStatus": runtime_status, "status": status,
                          "statusQueryGetUri": url, "viewUrl": view_link(base, instance, token)}, 202,
                         {"Location": url, "Retry-After": str(retry_after(status, None))})


def _lifecycle(recorded: str | None, runtime: str | None) -> str | None:
    """The product's lifecycle status from the record and Durable's runtime status.

    While the orchestration can still run, a waiting status the run recorded stands, else pending / running. When
    it ended without recording the end (terminated, or a failure the record activity could not write), it failed.
    """
    if runtime in ACTIVE_RUNTIME:
        if recorded in PROGRESSING and recorded not in ("pending", "running"):
            return recorded
        return "pending" if runtime == "Pending" else "running"
    if runtime in ("Failed", "Terminated", "Canceled") and recorded not in TERMINAL:
        return "failed"
    if runtime == "Completed" and recorded not in TERMINAL:
        return "completed"
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


def admin_consent_url(settings, tenant_id: str, base: str) -> str:
    """Entra's admin-consent page for the verifier app in this tenant (learn.microsoft.com/entra/identity-platform/
    v2-admin-consent: GET {authority}/{tenant}/adminconsent?client_id=&redirect_uri=&state=), back to the consent
    callback. Its state (verifierConsent on the tenant, the same all day: the status and the script show one URL)
    lets the callback tell the tenant's waiting manual onboardings to verify at once; it starts nothing."""
    from shared.links import callback_url, verifier_state

    # The key is cached per process for minutes (shared/signing.py): this sync read seldom reaches the vault.
    state = verifier_state(signing_keys(settings).current(), tenant_id, settings.manual_deadline_days)
    query = urlencode({"client_id": settings.verifier_client_id or "", "redirect_uri": callback_url(base),
                       "state": state})
    return f"{settings.authority_host}/{quote(tenant_id, safe='')}/adminconsent?{query}"


def _method_status(req: func.HttpRequest, instance: str, record: dict, lifecycle: str | None) -> dict:
    """The status keys of the method: for the manual one the script URL, the verifier's admin-consent URL until
    the verifier could get a token in the tenant, what the verification found, and the Exchange proof."""
    method = record.get("Method") or "automatic"
    verification = _loads(record.get("Verification"), None)
    keys = {"method": method, "exchangeProof": _loads(record.get("ExchangeProof"), None),
            "verification": {name: verification.get(name, []) for name in ("verified", "notVerified", "missing")}
            if isinstance(verification, dict) else None}
    if method != "manual":
        return keys
    settings = get_settings()
    base = public_base(req, settings.public_base_url)
    keys["scriptUrl"] = f"{base}/api/onboardings/{quote(instance, safe='')}/script"
    consented = isinstance(verification, dict) and verification.get("verifierConsented") is True
    if not consented and lifecycle not in TERMINAL and record.get("TenantId"):
        keys["adminConsentUrl"] = admin_consent_url(settings, record["TenantId"], base)
    return keys


async def onboarding_status_body(req: func.HttpRequest, client: df.DurableOrchestrationClient,
                                 instance: str) -> tuple[dict | None, dict]:
    """The status body of one onboarding (None when there is none) and the orchestration's custom status: what
    the status routes answer and the progress page shows."""
    stored = await asyncio.to_thread(_store().get_onboarding, instance)
    status = await client.get_status(instance)
    runtime = _runtime(status)
    if stored is None and runtime is None:
        return None, {}
    record = stored.entity if stored else {}
    custom = status.custom_status if status and isinstance(status.custom_status, dict) else {}
    output = status.output if status and isinstance(status.output, dict) else {}
    lifecycle = _lifecycle(record.get("Status"), runtime)
    step = custom.get("step") or record.get("Step")
    steps = custom.get("steps") if isinstance(custom.get("steps"), list) else ([step] if step else [])
    body = {
        "id": instance,
        "runtimeStatus": runtime,
        "status": lifecycle,
        "step": step,
        "steps": steps,
        "tenantId": record.get("TenantId"), "serviceMailbox": record.get("ServiceMailbox"),
        "application": {"appId": record.get("AppId"), "objectId": record.get("ApplicationObjectId")},
        "servicePrincipalId": record.get("ServicePrincipalId"),
        "certificate": {"name": record.get("CertificateName"), "thumbprint": record.get("Thumbprint"),
                        "notAfter": _iso(record.get("NotAfter"))},
        "permissions": _loads(record.get("Permissions"), []),
        "directoryRole": record.get("DirectoryRole") or None,
        "proofRoles": _loads(record.get("ProofRoles"), {}),
        "created": custom.get("created") or _loads(record.get("Created"), {}),
        "changes": _loads(record.get("Changes"), None),
        "error": _loads(record.get("Error"), None),
        "warnings": _loads(record.get("Warnings"), []),
        "output": output or None,
        "offboarding": _loads(record.get("Offboarding"), None),  # functions/offboarding.py: the last offboarding
    }
    body.update(_method_status(req, instance, record, lifecycle))
    if lifecycle == "waitingForCertificate":
        body.update(customer_certificate_links(req, instance))  # the CSR to sign, where its certificate goes
    return body, custom


async def _onboarding_status(req: func.HttpRequest, client: df.DurableOrchestrationClient, instance: str,
                             location) -> func.HttpResponse:
    """The status answer shared by both status routes: the body, and the code by lifecycle status (202 with
    Location and Retry-After while it can progress, 200 once terminal, 500 for a failure when asked)."""
    body, custom = await onboarding_status_body(req, client, instance)
    if body is None:
        return azure_error(404, "NotFound", f"no onboarding {instance}", target="id")
    lifecycle = body["status"]
    code = http_status(lifecycle, wants_failure_as_error(req))
    if code == 500:
        error = body["error"] or {}
        return azure_error(500, "OnboardingFailed", f"onboarding {instance} {lifecycle}: "
                           f"{error.get('message') or 'see the status'}", target=error.get("step"),
                           innererror={"onboarding": body})
    if code != 202:
        return json_response(body, code)
    # Like Durable's own status endpoint: 202, come back in Retry-After seconds, at Location.
    return json_response(body, 202, {"Location": await location(), "Retry-After": str(retry_after(lifecycle, custom))})


@bp.route(route="onboardings/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def get_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Status of an onboarding for operators (function key): runtime and lifecycle status, steps, what exists."""
    instance = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(instance):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    return await _onboarding_status(req, client, instance, lambda: _status_url(
        req, instance, fail_on_error=wants_failure_as_error(req)))


@bp.route(route="onboardings/{id}/status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handled(log)
async def get_onboarding_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The status URL that every 202 returns: anonymous at the Functions level, authorised by its own token
    (read-only, this onboarding only, expiring), so a poller needs no header."""
    instance = req.route_params.get("id", "")
    token = req.params.get("token") or ""
    if not await check_status_token(instance, token):
        return azure_error(403, "AuthorizationFailed", "the status token is missing, expired or not valid for "
                           "this onboarding: use the status URL of the request's own 202")

    async def location() -> str:
        # The caller's own URL again (its token, its switch), on the public base.
        settings = get_settings()
        return status_link(public_base(req, settings.public_base_url), instance, token,
                           fail_on_error=wants_failure_as_error(req))

    return await _onboarding_status(req, client, instance, location)


def _zulu(moment: datetime) -> str:
    """An orchestration time as ISO-8601 UTC with Z (the custom status's retryAt)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def step_attempts(context: df.DurableOrchestrationContext, request: dict, name: str, activity: str, extra: dict,
                  consented_at: datetime | None, state: dict, report: Callable[[], None], *,
                  raise_failures: bool = True):
    """One step: the activity, retried on durable timers while it fails transiently, within the budget of what it
    waits for (shared/failures.py), from its first transient failure on the orchestration clock. A permanent
    failure (or a spent budget) raises StepFailed, or is returned when `raise_failures` is false. `state` says
    where the step is ({attempt, retryAt?, waitingFor?}); `report()` is called after each change of it, before
    the yield that waits (it sets the custom status)."""
    first_failure: datetime | None = None
    attempt = 0
    while True:
        attempt += 1
        state.clear()
        state["attempt"] = attempt
        report()
        payload = {"request": request, "now": context.current_utc_datetime.isoformat(), **extra}
        result = yield context.call_activity(activity, payload)
        if result.get("ok"):
            return result
        error = result["error"]
        if not result.get("retry"):
            if raise_failures:
                raise StepFailed(error)
            return result
        now = context.current_utc_datetime
        first_failure = first_failure or now
        retry_at = now + failures.backoff(attempt)
        if retry_at > failures.retry_deadline(error.get("waitingFor"), first_failure, consented_at,
                                              error.get("retryUntil")):
            spent = failures.exhausted(error, attempt, first_failure, now)
            if raise_failures:
                raise StepFailed(spent)
            return {"ok": False, "retry": False, "error": spent}
        state.update(retryAt=_zulu(retry_at), waitingFor=error.get("waitingFor") or failures.TRANSIENT)
        report()
        yield context.create_timer(retry_at)


def run_step(context: df.DurableOrchestrationContext, request: dict, name: str, activity: str, extra: dict,
             created: dict, consented_at: datetime | None = None, *, raise_failures: bool = True):
    """One step on its own (step_attempts), the custom status naming it: {step, steps: [step], attempt, created,
    retryAt?, waitingFor?}."""
    state: dict = {}

    def report() -> None:
        context.set_custom_status({"step": name, "steps": [name], "created": created, **state})

    return (yield from step_attempts(context, request, name, activity, extra, consented_at, state, report,
                                     raise_failures=raise_failures))


@dataclass(frozen=True)
class Planned:
    """A step of a plan (run_plan): its activity, the steps whose results it needs, and its activity's input
    from their results."""

    name: str
    activity: str
    needs: tuple[str, ...] = ()
    extra: Callable[[dict], dict] = field(default=lambda results: {})


def plan_status(order: list[str], running: dict, states: dict[str, dict], created: dict) -> dict:
    """The custom status of a plan's run: {step (the first of steps), steps (those in progress, in the plan's
    order), attempt (of step), created, retries? ({step: {attempt, retryAt, waitingFor}} of the steps waiting on a
    retry timer), retryAt?, waitingFor? (the earliest retry, when every step in progress waits for one)}."""
    names = [name for name in order if name in running]
    status: dict = {"step": names[0] if names else None, "steps": names, "created": created}
    if names:
        status["attempt"] = states[names[0]].get("attempt")
    retries = {name: dict(states[name]) for name in names if "retryAt" in states[name]}
    if retries:
        status["retries"] = retries
        if len(retries) == len(names):  # nothing runs now: a poller comes back when the next retry is due
            first = min(retries, key=lambda name: retries[name]["retryAt"])
            status.update(retryAt=retries[first]["retryAt"], waitingFor=retries[first]["waitingFor"])
    return status


def run_plan(context: df.DurableOrchestrationContext, request: dict, plan: list[Planned], results: dict,
             created: dict, consented_at: datetime | None, done: Callable[[str, dict], None], failed_at: dict):
    """Run the plan's steps, each as soon as every step it needs has its result (`results`, by step name; steps
    already there are not run), so that independent steps run at the same time: each is its own activity with
    its own durable retries (step_attempts), and its result lands in the history, so a host that dies resumes
    after the last finished step of each. One orchestration drives them all, waiting on task_any of each
    running step's pending task (its activity or its retry timer): the SDK's task_all takes tasks, not the
    generators that retry them. `done(name, result)` is called as each step finishes.

    A step's permanent failure (or anything unexpected) ends the run: nothing new starts, retry timers are
    cancelled, activities in flight are waited for (what they made is kept in `results` and `created`, they are
    not retried), then the failure is raised, `failed_at["step"]` naming its step."""
    order = [step.name for step in plan]
    running: dict[str, Generator] = {}
    pending: dict[str, object] = {}  # step -> the task it waits on
    states: dict[str, dict] = {}
    failure: list = []

    def report() -> None:
        context.set_custom_status(plan_status(order, running, states, created))

    def finish(name: str) -> None:
        running.pop(name).close()
        pending.pop(name, None)
        states.pop(name, None)

    def advance(name: str, value=None, error: BaseException | None = None) -> None:
        try:
            pending[name] = running[name].throw(error) if error is not None else running[name].send(value)
        except StopIteration as stop:
            finish(name)
            results[name] = stop.value
            done(name, stop.value)
        except Exception as exc:
            finish(name)
            failure.append((name, exc))

    while True:
        if not failure:
            for step in plan:
                if step.name in results or step.name in running or not all(n in results for n in step.needs):
                    continue
                states[step.name] = {}
                running[step.name] = step_attempts(context, request, step.name, step.activity, step.extra(results),
                                                   consented_at, states[step.name], report)
                advance(step.name)
        else:
            for name in [name for name in running if "retryAt" in states[name]]:
                pending[name].cancel()  # every pending timer is completed or cancelled before the run ends
                finish(name)
        if not running:
            break
        report()
        waiting = list(pending.items())
        value, error = None, None
        if len(waiting) == 1:
            name, task = waiting[0]
            try:
                value = yield task
            except Exception as exc:  # the activity itself raised (it should return its outcome)
                error = exc
        else:
            winner = yield context.task_any([task for _, task in waiting])
            name = next(name for name, task in waiting if task is winner)
            if isinstance(winner.result, Exception):
                error = winner.result
            else:
                value = winner.result
        if failure:
            # Ending: keep what this step's activity made, start nothing after it.
            if error is None and isinstance(value, dict) and value.get("ok"):
                results[name] = value
                done(name, value)
            finish(name)
            continue
        advance(name, value, error)
    if failure:
        failed_at["step"], exc = failure[0]
        raise exc
    return results


def wait_round(context: df.DurableOrchestrationContext, event: str, deadline: datetime, poll_minutes: int):
    """Wait for the external event `event` or the next poll (a durable timer), whichever comes first: "event",
    "poll", or "deadline" when the poll that fired is at the deadline."""
    poll_at = min(context.current_utc_datetime + timedelta(minutes=poll_minutes), deadline)
    raised = context.wait_for_external_event(event)
    timer = context.create_timer(poll_at)
    winner = yield context.task_any([raised, timer])
    if winner == raised:
        if not timer.is_completed:
            timer.cancel()  # every pending timer must be completed or cancelled before the generation ends
        return "event"
    return "deadline" if context.current_utc_datetime >= deadline else "poll"


def wait_state(request: dict, context: df.DurableOrchestrationContext) -> tuple[dict, dict, datetime]:
    """The run's request (without its carried wait state), the wait state a continue_as_new carried, and the
    deadline of the wait (set on the first generation from CERTAUTH_MANUAL_DEADLINE_DAYS)."""
    request = dict(request)
    wait = request.pop("wait", None) or {}
    # The first generation's first replay time is the run's start on every replay and every later generation.
    request.setdefault("runStartedAt", context.current_utc_datetime.isoformat())
    deadline = (parse_time(wait["deadline"]) if wait.get("deadline") else
                context.current_utc_datetime + timedelta(days=get_settings().manual_deadline_days))
    return request, wait, deadline


def certificate_wait(context: df.DurableOrchestrationContext, request: dict, wait: dict, deadline: datetime,
                     created: dict, result: dict):
    """The customer's CA has the CSR (ensure_certificate said pending): wait for CertificateMerged or the next
    poll, then start a new generation that asks again, or end expired at the deadline. True when it expired."""
    context.set_custom_status({"step": "certificate", "steps": ["certificate"], "created": created,
                               "waitingFor": "certificate", "deadline": _zulu(deadline)})
    outcome = yield from wait_round(context, "CertificateMerged", deadline, get_settings().manual_poll_minutes)
    if outcome == "deadline":
        yield from record_expired(context, request, "certificate", deadline)
        return True
    context.continue_as_new({**request, "wait": {**wait, "deadline": _zulu(deadline),
                                                 "rounds": wait.get("rounds", 0) + 1}})
    return False


def record_expired(context: df.DurableOrchestrationContext, request: dict, step: str, deadline: datetime):
    """The wait ended at its deadline: the record says expired (a later POST of the pair starts over)."""
    error = {"step": step, "status": 0, "code": "DeadlineExceeded",
             "message": f"nothing happened before the deadline {_zulu(deadline)} "
                        f"(CERTAUTH_MANUAL_DEADLINE_DAYS): POST the onboarding again to start over"}
    context.set_custom_status({"step": step, "steps": [], "error": error})
    yield context.call_activity_with_retry("record_onboarding_state", RECORD_RETRY, {
        "request": request, "event": "onboarding.expired",
        "fields": {"Status": "expired", "Step": step, "Error": json.dumps(error)}})


def onboarding_plan(created: dict) -> list[Planned]:
    """The automatic method's steps and what each needs (the data each takes from another):

        certificate ──────────────────────────────┐
        application ─┬─ servicePrincipal ─┬─ consent ────────┬─ proof ── record
                     │                    └─ directoryRole ──┤
                     └──────────────────── keyCredential ────┘ (needs the certificate and the application)

    The app is upserted without its key, so the directory chain does not wait for Key Vault; the key goes onto the
    app as soon as both exist, beside consent and the role. `created` is what the record step's summary reads."""

    def sp_id(results: dict) -> dict:
        return {"servicePrincipalId": results["servicePrincipal"]["servicePrincipalId"]}

    def app_and_certificate(results: dict) -> dict:
        return {"application": results["application"], "certificate": results["certificate"]["certificate"]}

    return [
        Planned("certificate", "ensure_certificate"),
        Planned("application", "ensure_application"),
        Planned("servicePrincipal", "ensure_service_principal", ("application",),
                lambda results: {"application": results["application"]}),
        Planned("consent", "grant_permissions", ("servicePrincipal",), sp_id),
        Planned("directoryRole", "ensure_directory_role", ("servicePrincipal",), sp_id),
        Planned("keyCredential", "ensure_key_credential", ("certificate", "application"), app_and_certificate),
        # The proof's needsAttention (Exchange refuses the role after the propagation window) is a permanent
        # failure here: the automatic method assigned the role itself, nobody is there to fix it. Its activity
        # also records the completion (step 7, a Table write: no activity hop of its own).
        Planned("proof", "prove_onboarding", ("keyCredential", "consent", "directoryRole"),
                lambda results: {**app_and_certificate(results),
                                 "complete": {"summary": onboarding_summary(created, results)}}),
    ]


def onboarding_summary(created: dict, results: dict) -> dict:
    """What a run made (the completion's audit entry and the orchestration's output, with proof_summary)."""
    return {**created,
            "changes": merge_changes(results["consent"].get("changes"), results["directoryRole"].get("changes"))}


def proof_summary(summary: dict, proof: dict) -> dict:
    """The summary with what the proof found: the token's roles and the Exchange proof."""
    summary = {**summary, "proofRoles": proof["roles"]}
    if proof.get("exchange"):
        summary["exchangeProof"] = proof["exchange"]
    return summary


def record_created(created: dict, name: str, result: dict) -> None:
    """What a finished step made, into `created` (the custom status's and the failure record's)."""
    if name == "certificate":
        info = result["certificate"]
        created["certificate"] = {"name": info["name"], "version": info["version"],
                                  "thumbprint": info["thumbprint"], "notAfter": info["not_after"]}
    elif name == "application":
        created["application"] = {"appId": result["appId"], "objectId": result["applicationObjectId"]}
    elif name == "servicePrincipal":
        created["servicePrincipalId"] = result["servicePrincipalId"]
    elif name == "consent":
        created["permissions"] = result["granted"]
    elif name == "directoryRole":
        created["directoryRole"] = result["role"]
    elif name == "keyCredential":
        created["keyCredential"] = {"thumbprint": result["thumbprint"], "added": result["keyAdded"]}


@bp.orchestration_trigger(context_name="context")
def onboarding_orchestrator(context: df.DurableOrchestrationContext):
    """Steps 1-7 (onboarding_plan), each an idempotent activity retried on durable timers, what is independent at
    the same time (run_plan); fails fast on permanent errors.

    The certificate chain (Key Vault: read, create, poll, read) runs beside the directory chain (application →
    service principal → consent and directory role, at once); the key goes onto the app (keyCredential) once the
    certificate and the app exist, beside consent and the role; then the proof, whose activity also records the
    completion. Activities left on the critical path, each for its data: application (the appId every later Graph
    call names), service principal (the object consent and the role are granted to; its own activity, so that its
    replication retries do not repeat the app's upsert and the key need not wait for it), consent / directory role
    (the grants the proof's token must carry; side by side), proof + record (a token with the new key and grants:
    the only evidence that they work; completed only after it). The certificate and keyCredential activities run
    beside the directory ones: on the path only while Key Vault's creation is slower than the app, its service
    principal and the grants. A certificate from the customer's
    CA is the exception: it may wait days for the CA, so it runs first and alone (certificate_wait, one
    generation per poll), and nothing is made in the tenant before it exists.

    Durable retries of transient failures (shared/failures.py decides what is transient and what it waits for):
    the orchestrator waits on a durable timer between attempts, within the budget of what the step waits for
    (minutes for a missing consent, about 12 for the rest), from the step's first transient failure on the
    orchestration clock. It retries itself rather than through call_activity_with_retry, because Python's
    RetryOptions re-sends the same input (a stale `now`) at a fixed interval and retries every exception,
    permanent ones included. Custom status: {step, steps (every step in progress), attempt, created, retries?,
    retryAt?, waitingFor?} (plan_status)."""
    request, wait, deadline = wait_state(context.get_input(), context)
    # A consent recorded for this run (the onboarding link's callback): Entra's "not consented" answers then
    # mean "still propagating", retried through the propagation window.
    consented_at = parse_time(request["consentedAt"]) if request.get("consentedAt") else None
    created: dict = {}
    results: dict = {}
    current = {"step": "certificate"}

    try:
        if request["certificate"].get("issuer"):  # the customer's CA: the certificate first, however long it takes
            cert = yield from run_step(context, request, "certificate", "ensure_certificate", {}, created,
                                       consented_at)
            if cert.get("pending"):
                yield from certificate_wait(context, request, wait, deadline, created, cert)
                return None
            if wait:  # the certificate came after a wait: the record no longer waits for it
                yield context.call_activity_with_retry("record_onboarding_state", RECORD_RETRY, {
                    "request": request, "fields": {"Status": "running"}})
            results["certificate"] = cert
            record_created(created, "certificate", cert)
            current["step"] = "application"
        yield from run_plan(context, request, onboarding_plan(created), results, created, consented_at,
                            lambda name, result: record_created(created, name, result), current)
    except Exception as exc:  # a step's permanent failure, or anything unexpected: record it, then fail
        yield from fail_onboarding(context, request, current["step"], created, exc)
    context.set_custom_status({"step": "completed", "steps": [], "created": created})
    return proof_summary(onboarding_summary(created, results), results["proof"])


def fail_onboarding(context: df.DurableOrchestrationContext, request: dict, step: str, created: dict,
                    exc: Exception):
    """Record a step's permanent failure (or anything unexpected), then fail the orchestration naming it."""
    error = exc.error if isinstance(exc, StepFailed) else {
        "step": step, "status": 0, "code": type(exc).__name__, "message": str(exc)[:1000]}
    context.set_custom_status({"step": step, "steps": [], "created": created, "error": error})
    yield context.call_activity_with_retry("record_onboarding_failure", RECORD_RETRY, {
        "request": request, "now": context.current_utc_datetime.isoformat(), "error": error, "created": created})
    raise RuntimeError(f"onboarding failed at step {error['step']}: {error['status']} {error['code']}: "
                       f"{error['message']}") from None


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
    """Step 2: the app registration (its name and requested permissions)."""
    return await _onboarding(payload).ensure_application()


@bp.activity_trigger(input_name="payload")
async def ensure_key_credential(payload: dict) -> dict:
    """Step 2b: the certificate merged into the app's keyCredentials."""
    return await _onboarding(payload).ensure_key_credential(payload["application"], payload["certificate"],
                                                            _decided_at(payload))


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
    """Step 5: the directory role, and this run's Changes (with the consent step's part)."""
    return await _onboarding(payload).ensure_directory_role(payload["servicePrincipalId"],
                                                            payload.get("permissionChanges"))


@bp.activity_trigger(input_name="payload")
def prove_onboarding(payload: dict) -> dict:
    """Step 6: a token with the new certificate whose roles hold every granted permission; given `complete`
    ({summary, fields?}), step 7 too once the proof holds: the record says completed. A completion that fails is
    the step's failure (retried with the proof: both are idempotent)."""
    onboarding = _onboarding(payload)
    proof = onboarding.prove(payload["application"], payload["certificate"], _decided_at(payload))
    finish = payload.get("complete")
    if finish is None or not proof.get("ok"):
        return proof
    recorded = onboarding.complete(proof_summary(finish["summary"], proof), finish.get("fields"))
    return proof if recorded.get("ok") else recorded


@bp.activity_trigger(input_name="payload")
def record_onboarding_completed(payload: dict) -> dict:
    """Step 7: the record says completed (with the payload's `fields`, when given, in the same write)."""
    return _onboarding(payload).complete(payload["summary"], payload.get("fields"))


@bp.activity_trigger(input_name="payload")
def record_onboarding_failure(payload: dict) -> dict:
    """The record says failed, with the step, Graph's error and what exists."""
    return _onboarding(payload).fail(payload["error"], payload["created"])



@bp.activity_trigger(input_name="payload")
def record_onboarding_state(payload: dict) -> dict:
    """Set fields of the record (a waiting status, what a verification found, an expiry), with an audit entry
    when the payload names an event."""
    onboarding = _onboarding(payload)
    now = datetime.now(UTC)
    onboarding.store.merge_onboarding(onboarding.id, {"UpdatedAt": now, **payload["fields"]})
    if payload.get("event"):
        onboarding.store.audit(onboarding.id, payload["event"], now, payload.get("details") or {},
                               key=onboarding._audit_key(payload.get("auditKey") or payload["event"]))
    return {"ok": True}
