"""Onboarding links: the signed link, the admin-consent redirect's signed single-use state, and the check of the
consenting tenant (learn.microsoft.com/entra/identity-platform/v2-admin-consent).

A link is ``{public base}/api/onboard?<parameters>&sig=<token>``. Its parameters stay readable in the query (the
canonical form of an onboarding request without a secret: :data:`LINK_FIELDS`); ``sig`` is a signing token
(shared/signing.py) for purpose ``onboardingLink`` whose subject is a digest of those parameters, so any altered
parameter fails the subject check. The consent redirect carries a ``state``: a token for ``consentState`` on a
nonce that Table Storage holds (with the link's request) until the callback consumes it, once. The manual method's
status and script carry the verifier's admin-consent URL with a state of its own (``verifierConsent``, subject the
tenant id), which starts nothing: it only tells a waiting manual onboarding to verify now.

The ``tenant`` Entra's redirect names is not authenticated by itself: the callback proves the consent with an
app-only token in that tenant (:func:`consent_visible`) before anything starts. Nothing here logs a token, a
state, a signature or a URL that carries one. Plain Python: no Functions imports.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from .rules import RequestError
from .settings import Settings, SettingsError
from .signing import SigningKey, TokenRejected, make_token, read_token, token_version

# The request models (pydantic) load where a link's request is validated, not at import (cold start).
if TYPE_CHECKING:
    from .models import LinkRequest, OnboardingRequest

log = logging.getLogger(__name__)

LINK_PURPOSE = "onboardingLink"
STATE_PURPOSE = "consentState"
VERIFIER_PURPOSE = "verifierConsent"
# A link lives at most 30 days: the signing key keeps its previous version valid until the version after next, so
# a link survives one rotation of the key within its lifetime.
MAX_LINK_HOURS = 720
# The consent round trip (Microsoft's sign-in and consent pages) gets an hour, and never outlives its link.
STATE_SECONDS = 3600
# The query parameters of a link, in the order they are written.
LINK_FIELDS = ("tenantId", "serviceMailbox", "method", "permissionProfile", "directoryRole", "validityMonths",
               "keySize", "exportable", "issuer")
NO_ROLE = "none"  # directoryRole=none: no directory role (an explicit null in the request)
SECRET_FIELDS = ("pfx", "password")
NONCE = re.compile(r"^[0-9a-f]{32}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
CALLBACK_PATH = "/api/onboard/callback"


class Rejected(Exception):
    """A link or state that is not honoured: `reason` is one of missing, malformed, forged, retired, altered,
    expired (the page says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def public_base(settings: Settings) -> str:
    """CERTAUTH_PUBLIC_BASE_URL: links, redirect URIs and pages are built from it only, never from a request's Host
    header. SettingsError (naming the setting) when it is unset."""
    try:
        return settings.require("public_base_url")
    except SettingsError:
        raise SettingsError("application setting CERTAUTH_PUBLIC_BASE_URL is required for onboarding links (their "
                            "URL and Entra's redirect URI are built from it, never from a request's Host header) "
                            "but not set") from None


def callback_url(base: str) -> str:
    """The consent callback, Entra's redirect URI (registered on the onboarding app and the verifier)."""
    return f"{base}{CALLBACK_PATH}"


# -- the link's request ------------------------------------------------------------------------------------------

def parse_link_request(body: bytes) -> tuple[LinkRequest, int]:
    """The body of POST /api/onboarding-links: (the request, expiresInHours), or RequestError naming each field.
    The request is validated by the model of POST /api/onboardings, with tenantId optional and no secret allowed."""
    from pydantic import ValidationError

    from .models import MAX_BODY_BYTES, LinkRequest, describe_validation_error

    if len(body) > MAX_BODY_BYTES:
        raise RequestError([{"field": "body", "rule": f"must be at most {MAX_BODY_BYTES} bytes"}])
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        raise RequestError([{"field": "body", "rule": "must be valid JSON"}]) from None
    if not isinstance(data, dict):
        raise RequestError([{"field": "body", "rule": "must be a JSON object"}])
    problems: list[dict[str, str]] = []
    hours = data.pop("expiresInHours", None)
    if hours is None:
        problems.append({"field": "expiresInHours", "rule": "is required"})
    elif not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_LINK_HOURS:
        problems.append({"field": "expiresInHours", "rule": f"must be a whole number of hours from 1 to "
                                                             f"{MAX_LINK_HOURS}"})
    certificate = data.get("certificate")
    if isinstance(certificate, dict) and any(name in certificate for name in SECRET_FIELDS):
        for name in SECRET_FIELDS:
            if name in certificate:
                problems.append({"field": f"certificate.{name}", "rule": "is not allowed in an onboarding link: a "
                                 "secret never goes into a URL (import a PFX with POST /api/onboardings)"})
        data["certificate"] = {k: v for k, v in certificate.items() if k not in SECRET_FIELDS}
    request = None
    try:
        request = LinkRequest.model_validate(data)
    except ValidationError as error:
        problems.extend(describe_validation_error(error))
    if problems:
        raise RequestError(problems)
    return request, hours


def link_parameters(request: OnboardingRequest) -> dict[str, str]:
    """The canonical query parameters of a validated request: what the link decides, written out (method, profile
    and role resolved), and the certificate options only as given (explicit ones ask for those options)."""
    params: dict[str, str] = {}
    if request.tenant_id:
        params["tenantId"] = request.tenant_id
    params["serviceMailbox"] = request.service_mailbox
    params["method"] = request.method
    params["permissionProfile"] = request.permission_profile
    params["directoryRole"] = request.directory_role or NO_ROLE
    certificate = request.certificate
    for field_name, name in (("validity_months", "validityMonths"), ("key_size", "keySize"),
                             ("exportable", "exportable")):
        if field_name in certificate.model_fields_set:
            value = getattr(certificate, field_name)
            params[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if certificate.issuer is not None:
        params["issuer"] = certificate.issuer
    return params


def link_fields(query: Mapping[str, str]) -> dict[str, str]:
    """The link's parameters out of a request's query (other parameters are not the link's and carry no meaning)."""
    return {name: query[name] for name in LINK_FIELDS if name in query}


def request_of(params: Mapping[str, str], tenant_id: str | None = None) -> OnboardingRequest:
    """The onboarding request a link's parameters ask for, validated again by the same model (a link made before a
    configuration change is checked as it is now); `tenant_id`, the consenting tenant, fills in a link without one.
    RequestError naming the parameter otherwise."""
    from pydantic import ValidationError

    from .models import LinkRequest, OnboardingRequest, describe_validation_error

    data: dict[str, object] = {name: params[name] for name in ("serviceMailbox", "method", "permissionProfile")
                               if name in params}
    if "directoryRole" in params:
        data["directoryRole"] = None if params["directoryRole"] == NO_ROLE else params["directoryRole"]
    certificate: dict[str, object] = {}
    for name in ("validityMonths", "keySize"):
        if name in params:
            value = params[name]
            certificate[name] = int(value) if re.fullmatch(r"[0-9]{1,6}", value) else value
    if "exportable" in params:
        certificate["exportable"] = {"true": True, "false": False}.get(params["exportable"], params["exportable"])
    if "issuer" in params:
        certificate["issuer"] = params["issuer"]
    if certificate:
        data["certificate"] = certificate
    tenant = tenant_id or params.get("tenantId")
    if tenant:
        data["tenantId"] = tenant
    try:
        return (OnboardingRequest if tenant else LinkRequest).model_validate(data)
    except ValidationError as error:
        raise RequestError(describe_validation_error(error)) from None


def link_digest(params: Mapping[str, str]) -> str:
    """The subject of a link's signature: SHA-256 of its canonical parameters (sorted compact JSON), base64url."""
    canonical = json.dumps(link_fields(params), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def sign_link(key: SigningKey, params: Mapping[str, str], expires_at: int) -> str:
    """The link's `sig`: a token for onboardingLink on the parameters' digest, until `expires_at`."""
    return make_token(key, LINK_PURPOSE, link_digest(params), expires_at)


def link_url(base: str, params: Mapping[str, str], sig: str) -> str:
    """GET /api/onboard with the parameters in their canonical order, then `sig`."""
    ordered = [(name, params[name]) for name in LINK_FIELDS if name in params]
    return f"{base}/api/onboard?{urlencode([*ordered, ('sig', sig)])}"


def check_link(query: Mapping[str, str], keys: Mapping[str, bytes], now: float | None = None) -> dict:
    """The sig's payload when the link in `query` is valid; Rejected(reason) otherwise. `keys` are the accepted
    versions of the signing key ({version: key})."""
    return _read(query.get("sig") or "", keys, LINK_PURPOSE, link_digest(query), now)


def sig_version(query: Mapping[str, str]) -> str:
    """The signing key version a link's sig names (Rejected when it is missing or not a token)."""
    sig = query.get("sig") or ""
    if not sig:
        raise Rejected("missing")
    try:
        return token_version(sig)
    except TokenRejected:
        raise Rejected("malformed") from None


def _read(token: str, keys: Mapping[str, bytes], purpose: str, subject: str, now: float | None) -> dict:
    if not token:
        raise Rejected("missing")
    try:
        return read_token(token, keys, purpose, subject, now)
    except TokenRejected as error:
        raise Rejected(_reason(str(error))) from None


def _reason(message: str) -> str:
    """shared.signing's rejection, as the page explains it."""
    if message == "expired":
        return "expired"
    if message.startswith("signed by a key version"):
        return "retired"
    if message == "bad signature":
        return "forged"
    if message.startswith("for another purpose"):
        return "altered"
    return "malformed"


# -- the consent state ---------------------------------------------------------------------------------------------

def new_nonce() -> str:
    """A fresh nonce for one consent round trip (the state's subject; its Table Storage row)."""
    return uuid.uuid4().hex


def state_expiry(link_expires_at: int, now: float | None = None) -> int:
    """When a new state expires: an hour from now, never after its link."""
    return min(int(link_expires_at), int(time.time() if now is None else now) + STATE_SECONDS)


def make_state(key: SigningKey, nonce: str, expires_at: int) -> str:
    """The `state` of a consent redirect: a token for consentState on the nonce."""
    return make_token(key, STATE_PURPOSE, nonce, expires_at)


def state_claims(state: str) -> tuple[str, str, str]:
    """(key version, purpose, subject) a state names, read before its signature is checked, so the check knows
    which purpose and subject to hold it to (:func:`check_state` then verifies all of it). Rejected when it is no
    token."""
    if not state:
        raise Rejected("missing")
    try:
        version = token_version(state)
        payload = json.loads(_unb64url(state.split(".")[1]))
    except (TokenRejected, ValueError, binascii.Error, UnicodeDecodeError):
        raise Rejected("malformed") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), str) or not isinstance(payload.get("s"), str):
        raise Rejected("malformed")
    if payload["p"] not in (STATE_PURPOSE, VERIFIER_PURPOSE):
        raise Rejected("altered")
    if payload["p"] == STATE_PURPOSE and not NONCE.match(payload["s"]):
        raise Rejected("malformed")
    if payload["p"] == VERIFIER_PURPOSE and not GUID.match(payload["s"]):
        raise Rejected("malformed")
    return version, payload["p"], payload["s"]


def check_state(state: str, keys: Mapping[str, bytes], purpose: str, subject: str, now: float | None = None) -> dict:
    """The state's payload when it is valid for `purpose` and `subject`; Rejected(reason) otherwise."""
    return _read(state, keys, purpose, subject, now)


def verifier_state(key: SigningKey, tenant_id: str, lifetime_days: int, now: float | None = None) -> str:
    """The state of the manual method's verifier consent URL in a tenant. It expires at a UTC midnight
    `lifetime_days` + 1 days on, so the URL is the same all day (the status and the script show one URL)."""
    moment = int(time.time() if now is None else now)
    return make_token(key, VERIFIER_PURPOSE, tenant_id.lower(), (moment // 86400 + lifetime_days + 1) * 86400)


# -- Entra's admin-consent page ----------------------------------------------------------------------------------

def consent_client_id(settings: Settings, method: str) -> str | None:
    """The app the admin consents to: the onboarding app for the automatic method, the verifier for the manual."""
    return settings.verifier_client_id if method == "manual" else settings.provisioner_client_id


def admin_consent_redirect(settings: Settings, base: str, params: Mapping[str, str], state: str) -> str:
    """Entra's v2 admin-consent URL for a link: {authority}/{tenant or organizations}/v2.0/adminconsent with
    client_id, scope (Graph's /.default: the app's required application permissions), redirect_uri and state."""
    tenant = params.get("tenantId") or "organizations"
    query = urlencode({"client_id": consent_client_id(settings, params.get("method", "automatic")) or "",
                       "scope": f"{settings.graph_resource}/.default", "redirect_uri": callback_url(base),
                       "state": state})
    return f"{settings.authority_host}/{quote(tenant, safe='')}/v2.0/adminconsent?{query}"


# -- the consenting tenant -----------------------------------------------------------------------------------------

def consent_visible(settings: Settings, tenant_id: str, method: str) -> tuple[bool, str | None]:
    """Whether the app the admin consented to gets an app-only Graph token in the tenant (the consent exists
    there): (True, None), or (False, Entra's reason) when Entra says it isn't consented there (yet). Other
    failures raise."""
    if method == "manual":
        from .verify import verifier_consented

        return verifier_consented(settings, tenant_id)
    from azure.core.exceptions import ClientAuthenticationError

    from .credentials import provisioner_credential
    from .failures import CONSENT_CODES, entra_message

    if not settings.provisioner_client_id:
        raise SettingsError("onboarding links of the automatic method need the onboarding app: set "
                            "CERTAUTH_PROVISIONER_CLIENT_ID")
    try:
        provisioner_credential(settings, tenant_id).get_token(f"{settings.graph_resource}/.default")
    except ClientAuthenticationError as error:
        message = entra_message(error)
        if any(code in message for code in CONSENT_CODES):
            return False, message[:500]
        raise
    return True, None


async def verified_domains(settings: Settings, tenant_id: str, method: str) -> list[str] | None:
    """The tenant's verified domains (GET /organization, verifiedDomains), read as the app the admin consented to
    (both hold Organization.Read.All); None when Graph does not answer them (logged)."""
    from .graph import GraphError, _query, directory_for
    from .verify import verifier_directory

    directory = verifier_directory(settings, tenant_id) if method == "manual" else directory_for(settings, tenant_id)
    try:
        page = await directory._send(directory.client.organization.to_get_request_information(
            _query(select=["id", "verifiedDomains"])))
    except GraphError as error:
        log.warning("verified domains of tenant %s not read: %s %s", tenant_id, error.status, error.code)
        return None
    return sorted({(domain.name or "").lower() for organization in (page.value if page else None) or []
                   for domain in organization.verified_domains or [] if domain.name})


def domain_warnings(service_mailbox: str, domains: list[str] | None) -> list[dict]:
    """The status warnings about the mailbox's domain: none when the tenant verified it."""
    domain = service_mailbox.rsplit("@", 1)[-1].lower()
    if domains is None:
        return [{"code": "VerifiedDomainsNotRead",
                 "message": f"the tenant's verified domains could not be read: check that {domain} (the service "
                            "mailbox's domain) belongs to this tenant"}]
    if domain in domains:
        return []
    return [{"code": "MailboxDomainNotVerified",
             "message": f"the service mailbox's domain {domain} is not among the tenant's verified domains "
                        f"({', '.join(domains) or 'none'}): check that the mailbox belongs to this tenant"}]


def is_guid(value: str | None) -> bool:
    """Whether `value` is a (non-nil) GUID, as Entra writes a tenant id."""
    return bool(value and GUID.match(value) and uuid.UUID(value).int != 0)


def iso(seconds: int) -> str:
    """POSIX seconds as ISO-8601 UTC with Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
