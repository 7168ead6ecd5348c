"""Onboarding links: POST /api/onboarding-links (function key) makes a signed link; GET /api/onboard (the link,
anonymous: its signature protects it) redirects to Entra's admin-consent page with a signed single-use state; GET
/api/onboard/callback (Entra's redirect, anonymous: only its state protects it) proves the consent in the tenant
and starts the onboarding through POST /api/onboardings' own code path. Thin adapters over shared/links.py; every
page goes through functions/pages.py. Nothing here logs a token, a state, a signature or a URL that carries one.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import azure.durable_functions as df
import azure.functions as func

from functions.api import azure_error, handled, json_response, validation_error, view_link
from functions.manual import ACTIVE_RUNTIMES, ADMIN_VERIFIED, WAITING
from functions.onboarding import begin_onboarding, status_token
from functions.pages import handled_page, message_page
from shared import links
from shared.rules import RequestError
from shared.settings import SettingsError, get_settings
from shared.signing import signing_keys
from shared.state import onboarding_id, state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

AGAIN = "Nothing was started. Ask whoever sent you the link for a new one."
LINK_REFUSED = {
    "missing": "This link is incomplete: its signature (sig) is missing. It may have been cut off when it was copied.",
    "malformed": "This link is damaged: its signature (sig) cannot be read. It may have been cut off when it was "
                 "copied.",
    "forged": "This link's signature is not valid: the link was not made by this service, or it was damaged when it "
              "was copied.",
    "altered": "This link was changed after it was made: its parameters no longer match its signature.",
    "retired": "This link was signed with a key this service no longer accepts (its signing key has been rotated "
               "since).",
    "expired": "This link has expired.",
}
STATE_REFUSED = {
    "expired": "Microsoft's answer came back too late: the consent took more than an hour, or the link expired in "
               "the meantime.",
    "retired": "Microsoft's answer carries a state signed with a key this service no longer accepts.",
}
STATE_NOT_OURS = ("Microsoft's answer could not be verified: its state is missing, damaged, altered or was not made by "
                  "this service.")
ADMIN_ROLES = ("an administrator who may grant tenant-wide consent to application permissions (a Global "
               "Administrator or a Privileged Role Administrator)")
DECLINED = ("access_denied", "consent_required")


def _pages(handler):
    """An HTML route: a missing setting or an unexpected failure answers a page (500, with a correlation id that the
    log line carries too), never a stack trace."""

    @handled_page(log)
    @functools.wraps(handler)
    async def wrapped(*args, **kwargs) -> func.HttpResponse:
        try:
            return await handler(*args, **kwargs)
        except SettingsError as error:
            log.error("%s: %s", handler.__name__, error)
            return message_page(500, "This service is not set up for onboarding links",
                                [str(error), "Nothing was started. Tell the operator of this service."])

    return wrapped


def _configuration_problems(settings, request) -> list[dict[str, str]]:
    """What this deployment cannot do of a link's request ({field, rule} each): the app to consent to, and the
    operator's switches that POST /api/onboardings applies too."""
    problems = []
    if not links.consent_client_id(settings, request.method):
        setting = "CERTAUTH_VERIFIER_CLIENT_ID" if request.method == "manual" else "CERTAUTH_PROVISIONER_CLIENT_ID"
        app = "the read-only verifier app" if request.method == "manual" else "the onboarding app"
        problems.append({"field": "method", "rule": f"an onboarding link of the {request.method!r} method needs {app} "
                                                    f"({setting}), which this deployment has not configured"})
    if request.certificate.exportable and not settings.allow_exportable_keys:
        problems.append({"field": "certificate.exportable", "rule": "must be false: exportable private keys are off "
                         "for this deployment (the operator enables them with CERTAUTH_ALLOW_EXPORTABLE_KEYS=true)"})
    return problems


@bp.route(route="onboarding-links", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def create_onboarding_link(req: func.HttpRequest) -> func.HttpResponse:
    """Make a signed, expiring onboarding link: 201 {url, expiresAt}."""
    return await make_link(req)


async def make_link(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/onboarding-links: the body as POST /api/onboardings takes it (tenantId optional, no secret) plus
    expiresInHours; the link is built from CERTAUTH_PUBLIC_BASE_URL only."""
    settings = get_settings()
    try:
        base = links.public_base(settings)
    except SettingsError as error:
        return azure_error(500, "PublicBaseUrlNotConfigured", str(error), target="CERTAUTH_PUBLIC_BASE_URL")
    try:
        request, hours = links.parse_link_request(req.get_body())
    except RequestError as error:
        return validation_error(error.problems)
    problems = _configuration_problems(settings, request)
    if problems:
        return validation_error(problems)
    params = links.link_parameters(request)
    key = await asyncio.to_thread(signing_keys(settings).current)
    expires = int(time.time()) + hours * 3600
    url = links.link_url(base, params, links.sign_link(key, params, expires))
    log.info("onboarding link made (tenant %s, method %s), expiring %s", params.get("tenantId") or "any",
             request.method, links.iso(expires))
    return json_response({"url": url, "expiresAt": links.iso(expires)}, 201, {"Cache-Control": "no-store"})


@bp.route(route="onboard", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_pages
async def open_onboarding_link(req: func.HttpRequest) -> func.HttpResponse:
    """The onboarding link: checked (signature, expiry, parameters), then 302 to Entra's admin-consent page with a
    new single-use state."""
    settings = get_settings()
    base = links.public_base(settings)
    query = dict(req.params)
    try:
        version = links.sig_version(query)
        keys = await asyncio.to_thread(signing_keys(settings).accepted, version)
        payload = links.check_link(query, keys)
    except links.Rejected as rejected:
        log.info("onboarding link refused: %s", rejected.reason)
        return message_page(403, "This onboarding link cannot be used", [LINK_REFUSED[rejected.reason], AGAIN])
    params = links.link_fields(query)
    try:
        request = links.request_of(params)
        problems = _configuration_problems(settings, request)
    except RequestError as error:
        problems = error.problems
    if problems:
        log.info("onboarding link refused: its request is no longer accepted (%d problems)", len(problems))
        return message_page(400, "This onboarding link asks for something this service does not accept",
                            [*(f"{p['field']}: {p['rule']}" for p in problems), AGAIN])
    nonce = links.new_nonce()
    expires = links.state_expiry(payload["e"])
    now = datetime.now(UTC)
    await asyncio.to_thread(state_store(settings).create_consent_state, nonce, {
        "Link": json.dumps(params), "LinkTenant": params.get("tenantId") or "", "Method": request.method,
        "CreatedAt": now, "ExpiresAt": datetime.fromtimestamp(expires, UTC)})
    key = await asyncio.to_thread(signing_keys(settings).current)
    url = links.admin_consent_redirect(settings, base, params, links.make_state(key, nonce, expires))
    log.info("onboarding link opened (tenant %s, method %s): to Entra's admin consent",
             params.get("tenantId") or "organizations", request.method)
    return message_page(302, "Continue to Microsoft", [
        "An administrator of the Microsoft 365 tenant grants consent on Microsoft's page; you then come back here."],
        links=[("Continue to Microsoft", url)], kind="ok", headers={"Location": url})


@bp.route(route="onboard/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@_pages
async def onboarding_consent_callback(req: func.HttpRequest, client: df.DurableOrchestrationClient
                                      ) -> func.HttpResponse:
    """Entra's redirect after admin consent: the state is checked (signature, expiry, single use), then the tenant
    (the link's, and an app-only token there), then the onboarding starts; 303 to its progress page."""
    settings = get_settings()
    base = links.public_base(settings)
    query = dict(req.params)
    state = query.get("state") or ""
    if not state:
        log.info("consent callback without a state (error %s)", query.get("error") or "none")
        return message_page(400, "Nothing to do here", [
            "This address is where Microsoft sends an administrator back after a consent that certauth asked for, "
            "and this visit carries no answer certauth can check (no state).",
            "Nothing was started. If you granted a consent from a certauth status page or script, certauth notices "
            "it on its next check; to onboard a tenant, open the onboarding link you were sent."])
    try:
        version, purpose, subject = links.state_claims(state)
        keys = await asyncio.to_thread(signing_keys(settings).accepted, version)
        links.check_state(state, keys, purpose, subject)
    except links.Rejected as rejected:
        log.info("consent callback: state refused: %s", rejected.reason)
        return message_page(403, "This answer cannot be used", [
            STATE_REFUSED.get(rejected.reason, STATE_NOT_OURS),
            "Nothing was started. Open the onboarding link again to start over."])
    if purpose == links.VERIFIER_PURPOSE:
        return await _verifier_landing(client, settings, base, subject, query)
    return await _consent_landing(req, client, settings, base, subject, query)


def _entra_error_page(query: dict, what: str) -> func.HttpResponse:
    """Entra's error answer (the admin declined, or may not consent): what happened and what to do."""
    error = query.get("error") or "error"
    description = (query.get("error_description") or "").strip()[:500]
    said = f"Microsoft answered {error}" + (f": {description}" if description else ".")
    log.info("consent callback: Entra answered %s", error)
    if error in DECLINED:
        return message_page(403, "Consent was not granted", [
            said, f"Nothing was started: {what} has no access to the tenant.",
            f"To go on, {ADMIN_ROLES} opens the link again and accepts. If you are not such an administrator, "
            "forward the link to one."])
    return message_page(400, "Microsoft could not complete the consent", [
        said, f"Nothing was started: {what} has no access to the tenant.",
        f"Open the link again; if Microsoft answers the same, {ADMIN_ROLES} should check the error above."])


def _consent_answer_problem(query: dict) -> str | None:
    """What is wrong with a success answer's own parameters (None when nothing is)."""
    if (query.get("admin_consent") or "").lower() != "true":
        return "Microsoft's answer does not say that consent was granted (admin_consent=True)."
    if not links.is_guid(query.get("tenant")):
        return "Microsoft's answer does not name the tenant that consented."
    return None


def _not_visible(base: str, query: dict, tenant: str, what: str) -> func.HttpResponse:
    """The consent is not visible in the tenant (yet): nothing starts, and this answer can be tried again."""
    again = f"{links.callback_url(base)}?{urlencode(query)}"
    return message_page(403, "The consent is not visible yet", [
        f"certauth cannot sign in to tenant {tenant} as {what} yet: Microsoft has not made a consent visible there. "
        "A consent that was just granted can take a few minutes to show.",
        "Nothing was started. Try again in a minute; if it keeps failing, open the link again and make sure the "
        "consent is granted in this tenant."], links=[("Try again", again)], kind="warning")


async def _consent_landing(req: func.HttpRequest, client: df.DurableOrchestrationClient, settings, base: str,
                           nonce: str, query: dict) -> func.HttpResponse:
    """An onboarding link's consent came back: check the answer and the tenant, consume the state, start."""
    store = state_store(settings)
    seen = await asyncio.to_thread(store.get_consent_state, nonce)
    if seen is None:
        log.info("consent callback: no consent state for a signed state")
        return message_page(403, "This answer cannot be used", [STATE_NOT_OURS,
                            "Nothing was started. Open the onboarding link again to start over."])
    if seen.entity.get("Used"):
        return await _replayed(settings, base, seen.entity)
    if query.get("error"):
        return _entra_error_page(query, "certauth")
    problem = _consent_answer_problem(query)
    if problem:
        return message_page(400, "This answer cannot be used", [problem, "Nothing was started. Open the onboarding "
                                                                          "link again."])
    tenant = query["tenant"].lower()
    params = json.loads(seen.entity.get("Link") or "{}")
    if params.get("tenantId") and params["tenantId"] != tenant:
        log.info("consent callback: tenant %s consented to a link for tenant %s: refused", tenant, params["tenantId"])
        return message_page(403, "Consent came from another tenant", [
            f"This link is for tenant {params['tenantId']}, but the consent came from tenant {tenant}.",
            "Nothing was started. Sign in to Microsoft with an administrator account of the link's tenant and open "
            "the link again."])
    try:
        request = links.request_of(params, tenant)
    except RequestError as error:
        return message_page(400, "This onboarding link asks for something this service does not accept",
                            [*(f"{p['field']}: {p['rule']}" for p in error.problems), AGAIN])
    what = "the verifier app" if request.method == "manual" else "the onboarding app"
    # The tenant in Entra's redirect proves nothing by itself: an app-only token there proves the consent.
    consented, reason = await asyncio.to_thread(links.consent_visible, settings, tenant, request.method)
    if not consented:
        log.info("consent callback: no consent visible in tenant %s yet: %s", tenant, (reason or "")[:200])
        return _not_visible(base, query, tenant, what)
    warnings = links.domain_warnings(request.service_mailbox,
                                     await links.verified_domains(settings, tenant, request.method))
    instance = onboarding_id(tenant, request.service_mailbox)
    now = datetime.now(UTC)
    if not await asyncio.to_thread(store.consume_consent_state, seen, {"UsedAt": now, "Tenant": tenant,
                                                                       "OnboardingId": instance}):
        current = await asyncio.to_thread(store.get_consent_state, nonce)
        return await _replayed(settings, base, (current or seen).entity)
    answer = await begin_onboarding(req, client, request, consented_at=now, warnings=warnings)
    if answer.status_code != 202:
        error = (json.loads(answer.get_body() or b"{}").get("error") or {})
        log.info("consent callback: tenant %s consented; onboarding %s not started: %s", tenant, instance,
                 error.get("code"))
        return message_page(answer.status_code, "The onboarding did not start", [
            f"The consent of tenant {tenant} is in place, but the onboarding was refused: "
            f"{error.get('message') or 'see the service log'}",
            "Nothing new was started. Once this is resolved, open the onboarding link again."])
    view = json.loads(answer.get_body())["viewUrl"]
    log.info("consent callback: tenant %s consented; onboarding %s started (%d warnings)", tenant, instance,
             len(warnings))
    return message_page(303, "Onboarding started", ["The consent is in place and the onboarding has started."],
                        links=[("Follow the onboarding", view)], kind="ok", headers={"Location": view})


async def _replayed(settings, base: str, entity: dict) -> func.HttpResponse:
    """A state that was already used: start nothing; link to the progress page of what it started."""
    instance = entity.get("OnboardingId") or ""
    log.info("consent callback: state already used (onboarding %s)", instance or "none")
    targets = []
    if instance and await asyncio.to_thread(state_store(settings).get_onboarding, instance) is not None:
        targets.append(("Follow the onboarding", view_link(base, instance, await status_token(instance))))
    return message_page(409, "This answer was already used", [
        "Microsoft's answer to this consent was already received, and what it started goes on. Nothing new was "
        "started.", "To start over, open the onboarding link again."], links=targets, kind="warning")


def _waiting_manual_onboardings(store, tenant: str) -> list[str]:
    """The ids of the tenant's manual onboardings whose records wait for the admin (its partition, by status)."""
    found = []
    for status in WAITING:
        continuation = None
        while True:
            page, continuation = store.onboardings_page(tenant, status, 100, continuation)
            found += [r["RowKey"] for r in page if (r.get("Method") or "automatic") == "manual"]
            if not continuation:
                break
    return found


async def _verifier_landing(client: df.DurableOrchestrationClient, settings, base: str, tenant: str,
                            query: dict) -> func.HttpResponse:
    """The manual method's verifier consent came back (the status's or the script's adminConsentUrl): once the
    verifier has a token in the tenant, the tenant's waiting manual onboardings verify now (AdminVerified) instead
    of at their next poll. Starts nothing."""
    if query.get("error"):
        return _entra_error_page(query, "the verifier app")
    answered = (query.get("tenant") or tenant).lower()
    if (query.get("admin_consent") or "").lower() != "true":
        return message_page(400, "This answer cannot be used", [
            "Microsoft's answer does not say that consent was granted (admin_consent=True).", "Nothing was started."])
    if answered != tenant:
        log.info("verifier consent callback: tenant %s answered for tenant %s: refused", answered, tenant)
        return message_page(403, "Consent came from another tenant", [
            f"This consent is for tenant {tenant}, but it came from tenant {answered}.",
            "Nothing was started. Sign in with an administrator account of that tenant and open the consent link "
            "again."])
    consented, reason = await asyncio.to_thread(links.consent_visible, settings, tenant, "manual")
    if not consented:
        log.info("verifier consent callback: no consent visible in tenant %s yet: %s", tenant, (reason or "")[:200])
        return _not_visible(base, query, tenant, "the verifier app")
    told = []
    for instance in await asyncio.to_thread(_waiting_manual_onboardings, state_store(settings), tenant):
        status = await client.get_status(instance)
        runtime = status.runtime_status.value if status is not None and status.runtime_status is not None else None
        if runtime not in ACTIVE_RUNTIMES:
            continue
        await client.raise_event(instance, ADMIN_VERIFIED, {"at": datetime.now(UTC).isoformat()})
        told.append(instance)
    log.info("verifier consent callback: tenant %s consented; %d waiting onboarding(s) verify now", tenant, len(told))
    if len(told) == 1:
        view = view_link(base, told[0], await status_token(told[0]))
        return message_page(303, "Consent granted", ["The verifier's consent is in place; the onboarding verifies "
                                                     "the tenant now."],
                            links=[("Follow the onboarding", view)], kind="ok", headers={"Location": view})
    targets = [(f"Follow onboarding {instance}", view_link(base, instance, await status_token(instance)))
               for instance in told]
    return message_page(200, "Consent granted", [
        "The verifier's consent is in place." + (f" {len(told)} onboardings of this tenant verify it now."
                                                 if told else " No onboarding of this tenant is waiting for it.")],
        links=targets, kind="ok")
