"""The manual method: the orchestrator that waits for the admin's script, its read-only verification, and the
routes GET /api/onboardings/{id}/script and POST /api/onboardings/{id}/verify (their work is
onboarding_script and request_verification, which the progress page's actions call too).

The orchestration makes (or reuses) the certificate as the automatic method does, then waits: for the external
event AdminVerified (POST …/verify) or the next poll (a durable timer every CERTAUTH_MANUAL_POLL_MINUTES), until
CERTAUTH_MANUAL_DEADLINE_DAYS, when it ends expired. Each round of the wait is one generation: it verifies, records
what it found, and continues as new with its state (deadline, certificate, round), so a week of polls keeps a
history of a handful of events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func

from functions.api import azure_error, handled, validation_error
from functions.onboarding import (
    ONBOARDING_ID,
    RECORD_RETRY,
    _accepted,
    _runtime,
    _store,
    _zulu,
    admin_consent_url,
    certificate_wait,
    fail_onboarding,
    record_expired,
    run_step,
    wait_round,
    wait_state,
)
from shared import catalog, verify
from shared.keyvault import CertificateInfo, certificate_name, vault_for
from shared.onboarding import application_display_name, application_unique_name, parse_time, step_outcome
from shared.powershell import onboarding_script_bytes, profile_access, script_filename
from shared.settings import get_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

ADMIN_VERIFIED = "AdminVerified"
# The record's statuses in which the orchestration waits for the admin (POST …/verify is accepted).
WAITING = ("waitingForAdmin", "needsAttention")
ACTIVE_RUNTIMES = ("Running", "Pending", "ContinuedAsNew")


def _certificate_summary(info: dict) -> dict:
    return {"name": info["name"], "version": info["version"], "thumbprint": info["thumbprint"],
            "notAfter": info["not_after"]}


@bp.orchestration_trigger(context_name="context")
def manual_onboarding_orchestrator(context: df.DurableOrchestrationContext):
    """Step 1 (the certificate), then rounds of waiting for the admin and verifying read-only, then the proof and
    the record. Custom status: {step, steps, created, round, deadline, nextCheck?, retryAt?, waitingFor?}.

    One step at a time: each needs the one before (the script embeds the certificate, the verification finds the
    app the script made, the proof signs in as that app). What the verification found is written with the
    completion (one activity, not two)."""
    request, wait, deadline = wait_state(context.get_input(), context)
    settings = get_settings()
    created: dict = dict(wait.get("created") or {})
    info = wait.get("certificate")
    rounds = wait.get("rounds", 0)
    current = {"step": "certificate"}

    def record(fields: dict, event: str | None = None, details: dict | None = None):
        return context.call_activity_with_retry("record_onboarding_state", RECORD_RETRY, {
            "request": request, "fields": fields, "event": event, "details": details or {},
            "auditKey": f"{event}-{rounds}" if event else None})

    def next_generation():
        carried = {"deadline": _zulu(deadline), "certificate": info, "created": created, "rounds": rounds + 1}
        context.continue_as_new({**request, "wait": carried})

    try:
        if info is None:
            cert = yield from run_step(context, request, "certificate", "ensure_certificate", {}, created)
            if cert.get("pending"):
                yield from certificate_wait(context, request, wait, deadline, created, cert)
                return None
            info = cert["certificate"]
            created["certificate"] = _certificate_summary(info)
            yield record({"Status": "waitingForAdmin", "Step": "waitingForAdmin", "Error": ""},
                         "manual.waitingForAdmin", {"Thumbprint": info["thumbprint"]})
        current["step"] = "waitingForAdmin"
        context.set_custom_status({"step": "waitingForAdmin", "steps": ["waitingForAdmin"], "created": created,
                                   "round": rounds, "deadline": _zulu(deadline)})
        outcome = yield from wait_round(context, ADMIN_VERIFIED, deadline, settings.manual_poll_minutes)
        if outcome == "deadline":
            yield from record_expired(context, request, "waitingForAdmin", deadline)
            return {"status": "expired"}
        current["step"] = "verification"
        checked = yield from run_step(context, request, "verification", "verify_manual_onboarding",
                                      {"certificate": info}, created, raise_failures=False)
        if not checked.get("ok"):
            error = checked["error"]
            yield record({"Status": "needsAttention", "Step": "verification", "Error": json.dumps(error)},
                         "manual.verificationFailed", {"Error": json.dumps(error)})
            next_generation()
            return None
        verification = checked["verification"]
        if not checked.get("verifierConsented"):
            yield record({"Status": "waitingForAdmin", "Step": "waitingForAdmin",
                          "Verification": json.dumps(verification), "Error": ""})
            next_generation()
            return None
        created.update({key: value for key, value in checked.get("ids", {}).items() if value})
        if verification["missing"]:
            yield record({"Status": "needsAttention", "Step": "verification",
                          "Verification": json.dumps(verification), "Error": ""},
                         "manual.needsAttention", {"Missing": json.dumps(verification["missing"])})
            next_generation()
            return None
        current["step"] = "proof"
        application = {"appId": created["appId"], "applicationObjectId": created.get("applicationObjectId")}
        proof = yield from run_step(context, request, "proof", "prove_onboarding",
                                    {"application": application, "certificate": info}, created,
                                    raise_failures=False)
        if not proof.get("ok"):
            # The admin can fix what the proof found (a role Exchange refuses, a grant taken back) and verify again.
            error = proof["error"]
            if proof.get("needsAttention"):
                verification = {**verification, "missing": [*verification["missing"], *proof["needsAttention"]]}
            fields = {"Status": "needsAttention", "Step": "proof", "Verification": json.dumps(verification),
                      "Error": json.dumps(error)}
            if proof.get("exchange"):
                fields["ExchangeProof"] = json.dumps(proof["exchange"])
            yield record(fields, "manual.proofFailed", {"Error": json.dumps(error)})
            next_generation()
            return None
        role = catalog.directory_role(request["directoryRole"]) if request.get("directoryRole") else None
        verification = verify.with_exchange_proof(verification, proof.get("exchange"),
                                                  role.display_name if role else None)
        fields = {"Verification": json.dumps(verification), "Error": "", "AppId": created["appId"],
                  "ApplicationObjectId": created.get("applicationObjectId") or "",
                  "ServicePrincipalId": created.get("servicePrincipalId") or ""}
        if proof.get("exchange"):
            fields["ExchangeProof"] = json.dumps(proof["exchange"])
        summary = {**created, "proofRoles": proof["roles"], "verification": verification,
                   "exchangeProof": proof.get("exchange")}
        current["step"] = "record"
        # What the verification found goes into the record in the same write that completes it: one hop, not two.
        yield from run_step(context, request, "record", "record_onboarding_completed",
                            {"summary": summary, "fields": fields}, created)
    except Exception as exc:  # the certificate step's permanent failure, or anything unexpected: record, then fail
        yield from fail_onboarding(context, request, current["step"], created, exc)
    context.set_custom_status({"step": "completed", "steps": [], "created": created})
    return summary


@bp.activity_trigger(input_name="payload")
async def verify_manual_onboarding(payload: dict) -> dict:
    """Read the tenant as the verifier (GETs only) and compare it with what the script sets up."""
    return await _verify(payload)


@step_outcome("verification")
async def _verify(payload: dict) -> dict:
    settings = get_settings()
    request = payload["request"]
    info = CertificateInfo(**payload["certificate"])
    role = catalog.directory_role(request["directoryRole"]) if request.get("directoryRole") else None
    expected = verify.Expected(
        unique_name=application_unique_name(request["onboardingId"]),
        display_name=application_display_name(settings, request["serviceMailbox"]),
        thumbprint=info.thumbprint, not_before=parse_time(info.not_before), not_after=parse_time(info.not_after),
        permissions=tuple((p.resource_app_id, p.value, p.app_role_id)
                          for p in catalog.profile(request["permissionProfile"]).permissions),
        directory_role=role.display_name if role else None,
        exchange_in_profile=any(p.value == verify.EXCHANGE_MANAGE_AS_APP
                                for p in catalog.profile(request["permissionProfile"]).permissions))
    consented, reason = await asyncio.to_thread(verify.verifier_consented, settings, request["tenantId"])
    if not consented:
        log.info("onboarding %s: the verifier has no token in tenant %s yet: %s", request["onboardingId"],
                 request["tenantId"], reason)
        return {"ok": True, "verifierConsented": False,
                "verification": {"verified": [], "missing": [],
                                 "notVerified": ["everything: the verifier app is not consented in the tenant yet"],
                                 "verifierConsented": False}}
    verification, ids = await verify.verify_setup(verify.verifier_directory(settings, request["tenantId"]), expected)
    verification["verifierConsented"] = True
    log.info("onboarding %s verified: %d verified, %d missing, %d not verifiable", request["onboardingId"],
             len(verification["verified"]), len(verification["missing"]), len(verification["notVerified"]))
    return {"ok": True, "verifierConsented": True, "verification": verification, "ids": ids}


def _record_of(instance: str) -> dict | None:
    stored = _store().get_onboarding(instance)
    return stored.entity if stored else None


class ManualRefused(Exception):
    """A manual-method action that cannot be done now, in Azure's error terms: the API answers it as an error, the
    progress page (functions/progress.py) as a page."""

    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 headers: dict | None = None, innererror: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.target, self.headers, self.innererror = target, headers, innererror

    def response(self) -> func.HttpResponse:
        """The refusal in Azure's error shape."""
        return azure_error(self.status, self.code, self.message, target=self.target, headers=self.headers,
                           innererror=self.innererror)


@bp.route(route="onboardings/{id}/script", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def get_onboarding_script(req: func.HttpRequest) -> func.HttpResponse:
    """The manual method's PowerShell script for this onboarding, for the operator (function key)."""
    instance = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(instance):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    try:
        return script_response(*await onboarding_script(req, instance))
    except ManualRefused as refused:
        return refused.response()


def script_response(body: bytes, filename: str) -> func.HttpResponse:
    """The script as a download."""
    return func.HttpResponse(body, status_code=200, headers={
        "Content-Type": "text/plain; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


async def onboarding_script(req: func.HttpRequest, instance: str) -> tuple[bytes, str]:
    """The manual method's PowerShell script of one onboarding (UTF-8 with a BOM, pure ASCII after it) and its file
    name; raises ManualRefused when there is none (no such onboarding, the automatic method, no certificate yet)."""
    record = await asyncio.to_thread(_record_of, instance)
    if record is None:
        raise ManualRefused(404, "NotFound", f"no onboarding {instance}", target="id")
    if (record.get("Method") or "automatic") != "manual":
        raise ManualRefused(409, "NotManualOnboarding", f"onboarding {instance} uses the automatic method: it has "
                            "no script", target="method")
    settings = get_settings()
    info = (await asyncio.to_thread(vault_for(settings).current, record.get("CertificateName")
                                    or certificate_name(instance))) if record.get("Thumbprint") else None
    if info is None:
        raise ManualRefused(409, "CertificateNotReady", f"onboarding {instance} has no certificate yet (status "
                            f"{record.get('Status')}): the script embeds it; try again when the status is "
                            "waitingForAdmin", target="certificate", headers={"Retry-After": "60"})
    role = catalog.directory_role(record["DirectoryRole"]) if record.get("DirectoryRole") else None
    if not settings.public_base_url:
        # The script sends the admin to the consent callback: never a URL built from a caller's Host header.
        raise ManualRefused(500, "PublicBaseUrlNotConfigured", "application setting CERTAUTH_PUBLIC_BASE_URL is "
                            "required for the script (its consent link is built from it) but not set",
                            target="CERTAUTH_PUBLIC_BASE_URL")
    base = settings.public_base_url
    body = onboarding_script_bytes(
        tenant_id=record["TenantId"], onboarding_id=instance, unique_name=application_unique_name(instance),
        display_name=application_display_name(settings, record["ServiceMailbox"]),
        certificate_base64=info.cer, thumbprint=info.thumbprint, not_before=parse_time(info.not_before),
        not_after=parse_time(info.not_after),
        required_resource_access=profile_access(catalog.profile(record["PermissionProfile"])),
        directory_role=(role.template_id, role.display_name) if role else None,
        # POST …/verify needs the operator's function key, which the admin doesn't hold: certauth's poll notices.
        verify_url=None, admin_consent_url=admin_consent_url(settings, record["TenantId"], base))
    return body, script_filename(record["TenantId"])


@bp.route(route="onboardings/{id}/verify", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def verify_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The admin says the script ran (the operator, with the function key): raise AdminVerified; 202 with the
    status URL like every start."""
    instance = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(instance):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    try:
        runtime = await request_verification(client, instance)
    except ManualRefused as refused:
        return refused.response()
    return await _accepted(req, instance, runtime)


async def request_verification(client: df.DurableOrchestrationClient, instance: str) -> str | None:
    """Raise AdminVerified for an onboarding that waits for the admin; its runtime status. Raises ManualRefused
    when there is no such onboarding, it uses the automatic method or nothing waits for the admin."""
    record = await asyncio.to_thread(_record_of, instance)
    status = await client.get_status(instance)
    runtime = _runtime(status)
    if record is None and runtime is None:
        raise ManualRefused(404, "NotFound", f"no onboarding {instance}", target="id")
    record = record or {}
    if (record.get("Method") or "automatic") != "manual":
        raise ManualRefused(409, "NotManualOnboarding", f"onboarding {instance} uses the automatic method: there is "
                            "nothing to verify", target="method")
    if runtime not in ACTIVE_RUNTIMES or record.get("Status") not in WAITING:
        raise ManualRefused(409, "NotWaitingForAdmin", f"onboarding {instance} is not waiting for the admin (status "
                            f"{record.get('Status')}, runtime {runtime}): POST /api/onboardings to start it again",
                            target="id", innererror={"onboarding": {"id": instance, "status": record.get("Status"),
                                                                    "runtimeStatus": runtime}})
    await client.raise_event(instance, ADMIN_VERIFIED, {"at": datetime.now(UTC).isoformat()})
    log.info("onboarding %s: the admin asked for verification", quote(instance))
    return runtime

