"""Azure Key Vault (data plane) for the simulator: certificates, their keys and their secrets.

One vault, in the home tenant, served on the simulator's vault origin. What it does, and where each
behaviour comes from (learn.microsoft.com unless noted):

- Challenge-based auth (azure/key-vault/general/authentication-requests-and-responses): a request
  without a bearer token gets 401 and ``WWW-Authenticate: Bearer authorization="{login}/{tenant}",
  resource="https://vault.azure.net"``; the SDK's ChallengeAuthPolicy (azure/keyvault/*/_shared/
  challenge_auth_policy.py) then asks its credential for that tenant and resends. Tokens must carry
  aud https://vault.azure.net and come from the vault's tenant (else 401 AKV10022 / AKV10032).
- Authorisation: Azure RBAC on the vault, simplified to a set of principal object ids allowed every
  data action; others get 403 Forbidden/ForbiddenByRbac (azure/key-vault/general/rbac-guide,
  azure/key-vault/general/common-error-codes). Default: the home tenant's seeded provisioner and
  managed identity. ``set_access`` / the admin routes change it.
- api-version is required on every call (rest/api/keyvault: "api-version: Client API version",
  required); every version Microsoft's SDKs and the Azure CLI send is accepted (microsoft.KEYVAULT_API_VERSIONS),
  others get 400 BadParameter "The specified version (…) is not recognized".
- Certificates (rest/api/keyvault/certificates/*): create (202 + CertificateOperation with the new key's
  `csr`, Location and Retry-After headers), pending (inProgress → completed, after `creation_polls` polls),
  merge (issuer Unknown: the operation waits for `POST /pending/merge {x5c}` of a certificate for its key),
  get latest / version, versions, list, policy get/update, properties update, import (PFX or PEM), delete
  (soft), deleted get, recover, purge. Reusing a soft-deleted name → 409 ObjectIsDeletedButRecoverable.
- Lifetime actions (certificates/overview-renew-certificate, tutorial-rotate-certificates): a policy without
  them gets AutoRenew at 80 %; on the sandbox clock, before every request, AutoRenew makes a new version
  (new key unless reuse_key, tags kept) and EmailContacts records a notification (GET
  /_sandbox/vault/notifications), once per action and version.
- Keys (rest/api/keyvault/keys/get-key, get-keys, get-key-versions, keys/sign): the certificate's key,
  public JWK only; sign; lists.
- Secrets (rest/api/keyvault/secrets/get-secret, get-secrets, get-secret-versions): the certificate's
  secret; PFX or PEM with the private key only when the policy is exportable (certificates/about-
  certificates#exportable-or-non-exportable-key); lists. Standalone secrets (secrets/set-secret, update-secret):
  each PUT adds a version, the latest is served without a version, a disabled version answers 403.
- Any other path or method: the 401 challenge, then Key Vault's 404 HTML page (microsoft.py).
- Throttling (azure/key-vault/general/service-limits): 20 software RSA key CREATE transactions per
  10 s per vault → 429 + Retry-After; rejected requests do not count (general/overview-throttling).
- Soft delete (azure/key-vault/general/soft-delete-overview): recoveryLevel from the vault's settings
  (Recoverable+Purgeable with 90 retention days by default; Recoverable / CustomizedRecoverable with purge
  protection, which makes purge answer 403); an object is purged automatically once its scheduledPurgeDate
  passes.

All dates come from the sandbox clock (``world.clock``), in whole POSIX seconds as Key Vault sends them.

State lives in ``world.vault`` (a dict owned by this module); see ``_state``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from . import keyvault_crypto as kc
from . import microsoft as ms
from .auth import bearer_token
from .errors import ServiceError
from .tokens import Caller, TokenRejected

VAULT_RESOURCE = "https://vault.azure.net"
VAULT_AUDIENCES = {"https://vault.azure.net", "https://vault.azure.net/", ms.AZURE_KEY_VAULT_APP_ID}
VAULT_NAME = "certauth-sandbox"
VAULT_LOCATION = "westeurope"
SANDBOX_SUBSCRIPTION = "00000000-0000-0000-0000-00000000cafe"

# Every api-version Microsoft's clients send (the SDKs' ApiVersion enums, their previews, azure-cli's pins).
SUPPORTED_API_VERSIONS = ms.KEYVAULT_API_VERSIONS
LATEST_API_VERSION = ms.KEYVAULT_LATEST_API_VERSION

# Object names: 1-127 of 0-9 a-z A-Z - (general/about-keys-secrets-certificates#object-identifiers).
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
RECOVERABLE_DAYS = 90                      # default retention (soft-delete-overview)
CREATE_LIMIT, CREATE_WINDOW = 20, 10.0    # service-limits: software RSA CREATE key, per 10 s per vault
SUPPORTED_ISSUERS = ("Self", "Unknown")  # self-signed, or a CSR for any CA to sign (merge)

# Key Vault error facts not (yet) in microsoft.KEYVAULT_ERRORS. Each: (status, code, inner code, message).
_LOCAL_ERRORS: dict[str, tuple[int, str, str, str]] = {
    # OBSERVED: "The specified version (7.4) is not recognized. Consider using the latest supported
    # version (7.1)." quoted from a real response in inspec/inspec-azure (libraries/backend/azure_*).
    "api_version_unknown": (400, "BadParameter", "", "The specified version ({version}) is not recognized. "
                            "Consider using the latest supported version ({latest})."),
    # UNCONFIRMED wording; the parameter is required on every data-plane operation (REST reference).
    "api_version_missing": (400, "BadParameter", "", "The request URI must contain the api-version query "
                            "parameter (api-version is required)."),
    # OBSERVED: {"code":"BadParameter","message":"The request URI contains an invalid name: secret_name"}
    # (Azure/azure-sdk-for-rust keyvault tests; many public reports).
    "invalid_name": (400, "BadParameter", "", "The request URI contains an invalid name: {name}"),
    # OBSERVED: 403 "Operation sign is not allowed on a disabled key." innererror KeyDisabled
    # (Azure/azure-sdk-for-python#45342, checked against a live vault).
    "key_disabled": (403, "Forbidden", "KeyDisabled", "Operation {operation} is not allowed on a disabled key."),
    # UNCONFIRMED wording: the service refuses sign/encrypt/wrapKey outside nbf..exp
    # (Azure/azure-sdk-for-net#7677 "As on the server side ... honor NotBefore and Expires"); the text
    # follows the disabled-key / expired-secret pattern.
    "key_expired": (403, "Forbidden", "KeyExpired", "Operation {operation} is not allowed on an expired key."),
    "key_not_yet_valid": (403, "Forbidden", "KeyNotYetValid",
                          "Operation {operation} is not allowed on a key that is not yet valid."),
    # 409 on a create while a prior operation on the certificate is pending is CONFIRMED by
    # Azure/azure-sdk-for-python#13289 ("Key Vault will respond 409 if a create request for a certificate
    # arrives while a prior operation on that cert is still pending"). The wording follows the OBSERVED
    # texts for update/delete of a pending certificate (Azure/azure-sdk-for-js#35011, #24086, #27212);
    # "creating" is inferred.
    "pending_create_conflict": (409, "Conflict", "", "There was a conflict while creating the pending certificate "
                                "'{id}'. This can happen when multiple operations are performed in parallel "
                                "against the pending certificate. To avoid this error, perform operations "
                                "against the pending certificate in a sequential manner."),
    # OBSERVED: 403 Forbidden "Pending status must be in progress to allow update." for PATCH /pending on
    # a finished operation (Azure/azure-sdk-for-js#25758).
    "pending_not_in_progress": (403, "Forbidden", "", "Pending status must be in progress to allow update."),
    # UNCONFIRMED wording (code BadParameter is Key Vault's code for invalid request values).
    "bad_digest": (400, "BadParameter", "", "{detail}"),
    "bad_algorithm": (400, "BadParameter", "", "Invalid algorithm: {alg}. The algorithm is not supported for "
                      "key type RSA."),
    # UNCONFIRMED: 401 texts for tokens Key Vault cannot validate (AKV10000 series, common-error-codes).
    "unauthorized_invalid_token": (401, "Unauthorized", "", "AKV10016: Bearer token is invalid: {detail}"),
    "unauthorized_expired": (401, "Unauthorized", "", "AKV10012: Token has expired."),
}


# -- state ---------------------------------------------------------------------------------------------

@dataclass
class Version:
    """One version of a certificate (its key and secret share the version id)."""

    id: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    enabled: bool
    created: int
    updated: int
    tags: dict
    exportable: bool
    content_type: str
    key_ops: list[str]
    fired: set[str] = field(default_factory=set)   # lifetime actions already taken for this version

    @property
    def nbf(self) -> int:
        return kc.epoch(self.certificate.not_valid_before_utc)

    @property
    def exp(self) -> int:
        return kc.epoch(self.certificate.not_valid_after_utc)


@dataclass
class Operation:
    """The certificate's (last) create operation."""

    request_id: str
    requested_at: float
    policy: dict
    enabled: bool | None
    tags: dict
    status: str = "inProgress"
    target_version: str | None = None
    error: dict | None = None
    cancellation_requested: bool = False
    task: asyncio.Task | None = None
    polls_needed: int = 0                 # GET /pending answers inProgress this many times first
    polls: int = 0
    key: rsa.RSAPrivateKey | None = None  # the new version's key, made at create time (the CSR is its request)
    csr: bytes | None = None              # PKCS#10, DER


@dataclass
class Certificate:
    """A certificate object: its versions, its policy, its last create operation."""

    name: str
    policy: dict
    policy_created: int
    policy_updated: int
    versions: dict[str, Version] = field(default_factory=dict)   # insertion order = creation order
    operation: Operation | None = None
    deleted_date: int | None = None
    scheduled_purge_date: int | None = None

    def latest(self) -> Version | None:
        return next(reversed(self.versions.values()), None) if self.versions else None


def _state(world) -> dict:
    """world.vault with its defaults:
    certificates: {lower name: Certificate}; deleted: {lower name: Certificate};
    access: set of object ids or None (= the home tenant's seeded principals);
    creation_delay_seconds: sandbox seconds before a create completes (0 = at the first poll);
    creation_polls: how many polls of GET /pending answer inProgress before a create completes;
    create_times: sandbox times of recent key creations (throttling window);
    fail_creations: how many of the next creations end with status "failed" (fault injection);
    purge_protection, retention_days: the vault's soft-delete settings (enablePurgeProtection,
    softDeleteRetentionInDays);
    notifications: what EmailContacts lifetime actions (and renewals) would have mailed the contacts."""
    vault = world.vault
    vault.setdefault("certificates", {})
    vault.setdefault("deleted", {})
    vault.setdefault("access", None)
    vault.setdefault("creation_delay_seconds", 0.0)
    vault.setdefault("creation_polls", 0)
    vault.setdefault("create_times", [])
    vault.setdefault("fail_creations", 0)
    vault.setdefault("purge_protection", False)
    vault.setdefault("retention_days", RECOVERABLE_DAYS)
    vault.setdefault("notifications", [])
    return vault


def default_access(world) -> set[str]:
    """The principals allowed by default: the home tenant's seeded provisioner SP and managed identity."""
    home = world.tenants.get(world.home_tenant_id)
    if home is None or not home.seeded:
        return set()
    return {home.seeded["provisioner"]["servicePrincipalId"], home.seeded["managedIdentity"]["principalId"]}


def set_access(world, object_ids: list[str] | set[str] | None) -> list[str]:
    """Set the principals (service principal object ids) allowed to use the vault; None restores the
    default (home provisioner + managed identity). Returns the effective list."""
    _state(world)["access"] = None if object_ids is None else set(object_ids)
    return sorted(allowed_principals(world))


def allowed_principals(world) -> set[str]:
    """Object ids allowed every vault data action."""
    access = _state(world)["access"]
    return default_access(world) if access is None else set(access)


def set_creation_delay(world, seconds: float) -> None:
    """How long (sandbox seconds) a certificate creation stays inProgress; 0 completes it at the first poll."""
    if seconds < 0:
        raise ValueError("creation delay must be >= 0")
    _state(world)["creation_delay_seconds"] = float(seconds)


def set_creation_polls(world, polls: int) -> None:
    """How many polls of a creation's pending operation answer inProgress before it completes (0 = the first)."""
    if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
        raise ValueError("creation polls must be an integer >= 0")
    _state(world)["creation_polls"] = polls


def set_soft_delete(world, purge_protection: bool | None = None, retention_days: int | None = None) -> None:
    """The vault's enablePurgeProtection and softDeleteRetentionInDays (7-90, soft-delete-overview)."""
    vault = _state(world)
    if retention_days is not None:
        low, high = ms.KEYVAULT_RETENTION_DAYS_RANGE
        if not isinstance(retention_days, int) or isinstance(retention_days, bool) or not low <= retention_days <= high:
            raise ValueError(f"softDeleteRetentionInDays: an integer from {low} to {high}")
        vault["retention_days"] = retention_days
    if purge_protection is not None:
        # On Azure enabling purge protection is irreversible (ARM: "Enabling the purge protection for a vault is
        # an irreversible action.", Azure/ai-hub#241); the admin route may turn it off so that one simulator
        # serves many tests.
        vault["purge_protection"] = bool(purge_protection)


def describe(world) -> dict:
    """The vault's state for the admin API."""
    vault = _state(world)
    return {"access": sorted(allowed_principals(world)), "defaultAccess": vault["access"] is None,
            "creationDelaySeconds": vault["creation_delay_seconds"],
            "creationPolls": vault["creation_polls"],
            "enablePurgeProtection": vault["purge_protection"],
            "softDeleteRetentionInDays": vault["retention_days"],
            "recoveryLevel": ms.keyvault_recovery_level(vault["purge_protection"], vault["retention_days"]),
            "failNextCreations": vault["fail_creations"],
            "certificates": sorted(c.name for c in vault["certificates"].values()),
            "deletedCertificates": sorted(c.name for c in vault["deleted"].values())}


# -- errors --------------------------------------------------------------------------------------------

def _kv_error(fact: str, headers: dict | None = None, **fields: Any) -> ServiceError:
    """A ServiceError from the local facts above when they name `fact` (they are the ones checked against
    a source for this module), else from microsoft.KEYVAULT_ERRORS; rendered as
    {"error": {"code", "message", "innererror"?: {"code"}}}."""
    known = None if fact in _LOCAL_ERRORS else getattr(ms, "KEYVAULT_ERRORS", {}).get(fact)
    if known is not None:
        status, code, inner, template = known["status"], known["code"], known["inner_code"], known["message"]
    else:
        status, code, inner, template = _LOCAL_ERRORS[fact]
    try:
        message = template.format(**fields)
    except (KeyError, IndexError):
        message = template
    body: dict = {"code": code, "message": message}
    if inner:
        body["innererror"] = {"code": inner}
    return ServiceError(status, code, message, headers=headers, extra={"error": body})


def _challenge_header(request: web.Request) -> str:
    login = request.app["urls"]["login"].rstrip("/")
    tenant = request.app["world"].home_tenant_id
    return f'Bearer authorization="{login}/{tenant}", resource="{VAULT_RESOURCE}"'


def _unauthorized(request: web.Request, fact: str, **fields: Any) -> ServiceError:
    return _kv_error(fact, headers={"WWW-Authenticate": _challenge_header(request)}, **fields)


# -- request plumbing ----------------------------------------------------------------------------------

def _base(request: web.Request) -> str:
    return request.app["urls"]["vault"].rstrip("/")


def _authenticate(request: web.Request) -> Caller:
    """Challenge auth: the bearer token must be the sandbox's, for Key Vault, from the vault's tenant."""
    token = bearer_token(request)
    if token is None:
        raise _unauthorized(request, "unauthorized_no_token")
    world = request.app["world"]
    try:
        caller = request.app["issuer"].verify(token, VAULT_AUDIENCES)
    except TokenRejected as exc:
        text = str(exc)
        if "audience" in text.lower():
            try:
                aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
            except jwt.PyJWTError:
                aud = None
            raise _unauthorized(request, "unauthorized_bad_audience", aud=aud) from exc
        if "expired" in text.lower():
            raise _unauthorized(request, "unauthorized_expired") from exc
        raise _unauthorized(request, "unauthorized_invalid_token", detail=text) from exc
    if caller.tenant_id != world.home_tenant_id:
        raise _unauthorized(request, "unauthorized_bad_issuer", tenant=world.home_tenant_id,
                            iss=caller.claims.get("iss"))
    tenant = world.tenants.get(caller.tenant_id)
    if tenant is None or caller.object_id not in tenant.service_principals:
        raise _unauthorized(request, "unauthorized_invalid_token", detail="the principal no longer exists.")
    return caller


def _authorize(request: web.Request, caller: Caller, action: str, kind: str, name: str | None) -> None:
    """Vault RBAC: the caller must be among the allowed principals."""
    if caller.object_id in allowed_principals(request.app["world"]):
        return
    resource = (f"/subscriptions/{SANDBOX_SUBSCRIPTION}/resourcegroups/certauth-sandbox/providers/"
                f"microsoft.keyvault/vaults/{VAULT_NAME}" + (f"/{kind}/{name}" if name else ""))
    raise _kv_error("forbidden_rbac",
                    caller=f"appid={caller.app_id};oid={caller.object_id};iss={caller.claims.get('iss')}",
                    action=action, resource=resource, vault=VAULT_NAME, location=VAULT_LOCATION)


def _check_api_version(request: web.Request) -> None:
    version = request.query.get("api-version")
    if not version:
        raise _kv_error("api_version_missing")
    if version not in SUPPORTED_API_VERSIONS:
        raise _kv_error("api_version_unknown", version=version, latest=LATEST_API_VERSION)


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise _kv_error("invalid_name", name=name)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _operation(action: str, kind: str = "certificates") -> Callable[[Handler], Handler]:
    """Wrap a handler: authenticate, check api-version, authorise `action`, validate the name."""

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            caller = _authenticate(request)
            _check_api_version(request)
            name = request.match_info.get("name")
            _authorize(request, caller, action, kind, name)
            if name is not None:
                _check_name(name)
            _sweep(request.app["world"])
            await run_lifetime_actions(request.app["world"])
            return await handler(request)

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return wrap


def _json(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(body, status=status, headers={
        "Cache-Control": "no-cache", "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-keyvault-service-version": "1.9.0.0", "x-ms-keyvault-region": VAULT_LOCATION,
        **(headers or {})})


async def _body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise _kv_error("bad_parameter", detail="The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise _kv_error("bad_parameter", detail="The request body must be a JSON object.")
    return body


# -- rendering -----------------------------------------------------------------------------------------

def _attributes(version: Version, vault: dict) -> dict:
    level = ms.keyvault_recovery_level(vault["purge_protection"], vault["retention_days"])
    return {"enabled": version.enabled, "nbf": version.nbf, "exp": version.exp, "created": version.created,
            "updated": version.updated, "recoveryLevel": level, "recoverableDays": vault["retention_days"]}


def _policy_json(base: str, cert: Certificate) -> dict:
    policy = dict(cert.policy)
    policy["attributes"] = {"enabled": True, "created": cert.policy_created, "updated": cert.policy_updated}
    return {"id": f"{base}/certificates/{cert.name}/policy", **policy}


def _certificate_json(base: str, cert: Certificate, version: Version, vault: dict) -> dict:
    return {
        "id": f"{base}/certificates/{cert.name}/{version.id}",
        "kid": f"{base}/keys/{cert.name}/{version.id}",
        "sid": f"{base}/secrets/{cert.name}/{version.id}",
        "x5t": kc.x5t(version.certificate),
        "cer": base64.b64encode(kc.der(version.certificate)).decode(),
        "contentType": version.content_type,
        "attributes": _attributes(version, vault),
        "policy": _policy_json(base, cert),
        "tags": dict(version.tags),
    }


def _deleted_json(base: str, cert: Certificate, vault: dict) -> dict:
    version = cert.latest()
    body = _certificate_json(base, cert, version, vault) if version else {
        "id": f"{base}/certificates/{cert.name}", "policy": _policy_json(base, cert)}
    body.update({"recoveryId": f"{base}/deletedcertificates/{cert.name}", "deletedDate": cert.deleted_date,
                 "scheduledPurgeDate": cert.scheduled_purge_date})
    return body


def _operation_json(base: str, cert: Certificate) -> dict:
    op = cert.operation
    assert op is not None
    body = {
        "id": f"{base}/certificates/{cert.name}/pending",
        "issuer": dict(op.policy.get("issuer") or {"name": "Self"}),
        "cancellation_requested": op.cancellation_requested,
        "status": op.status,
        "request_id": op.request_id,
    }
    if op.csr is not None:
        # CertificateOperation.csr: the PKCS#10 request of the new version's key, base64 (create-certificate
        # response, get-certificate-operation).
        body["csr"] = base64.b64encode(op.csr).decode()
    if op.status == "inProgress":
        # The status_details Key Vault shows for a pending self-signed certificate
        # (rest/api/keyvault/certificates/create-certificate example response).
        body["status_details"] = ("Pending certificate created. Certificate request is in progress. This may "
                                  "take some time based on the issuer provider. Please check again later.")
    else:
        body["target"] = f"{base}/certificates/{cert.name}"
    if op.error:
        body["error"] = op.error
    return body


# -- policy --------------------------------------------------------------------------------------------

def _normalise_policy(raw: dict | None, previous: dict | None = None) -> dict:
    """The stored policy (wire names, without id/attributes): `raw` merged over `previous`, with Key
    Vault's defaults; BadParameter for what the sandbox cannot issue."""
    policy: dict = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (previous or {}).items()}
    for key in ("key_props", "secret_props", "x509_props", "issuer"):
        if isinstance((raw or {}).get(key), dict):
            merged = dict(policy.get(key) or {})
            merged.update({k: v for k, v in raw[key].items() if v is not None})
            policy[key] = merged
    if raw and raw.get("lifetime_actions") is not None:
        policy["lifetime_actions"] = raw["lifetime_actions"]
    key_props = policy.setdefault("key_props", {})
    key_props.setdefault("exportable", True)   # REST default for certificate keys (portal: exportable)
    key_props.setdefault("kty", "RSA")
    key_props.setdefault("key_size", 2048)
    key_props.setdefault("reuse_key", False)
    if key_props["kty"] not in ("RSA", "RSA-HSM"):
        raise _kv_error("bad_parameter", detail=f"Key type {key_props['kty']} is not supported by the sandbox "
                                                "vault (RSA only).")
    if key_props["key_size"] not in kc.RSA_KEY_SIZES:
        raise _kv_error("bad_parameter", detail=f"The specified RSA key size {key_props['key_size']} is not "
                                                "supported. Supported key sizes are 2048, 3072 and 4096.")
    secret_props = policy.setdefault("secret_props", {})
    secret_props.setdefault("contentType", kc.PKCS12)
    if secret_props["contentType"] not in (kc.PKCS12, kc.PEM):
        raise _kv_error("bad_parameter", detail=f"Invalid content type: {secret_props['contentType']}. Valid "
                                                f"values are {kc.PKCS12} and {kc.PEM}.")
    x509_props = policy.setdefault("x509_props", {})
    x509_props.setdefault("ekus", list(kc.DEFAULT_EKUS))
    x509_props.setdefault("key_usage", list(kc.DEFAULT_KEY_USAGE))
    x509_props.setdefault("validity_months", 12)
    x509_props.setdefault("basic_constraints", {"ca": False})
    months = x509_props["validity_months"]
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 1200:
        raise _kv_error("bad_parameter", detail=f"Invalid validity_months: {months}.")
    policy.setdefault("issuer", {"name": "Self"})
    # No lifetime_actions: Key Vault's default, AutoRenew at 80 % of the lifetime (microsoft.py).
    policy.setdefault("lifetime_actions", [json.loads(json.dumps(a)) for a in ms.KEYVAULT_DEFAULT_LIFETIME_ACTIONS])
    _check_lifetime_actions(policy["lifetime_actions"], months)
    return policy


def _check_lifetime_actions(actions: Any, months: int) -> None:
    """LifetimeAction as the REST reference defines it: one trigger (lifetime_percentage 1-99, or
    days_before_expiry 1 .. validity_months * 27) and an action_type AutoRenew or EmailContacts."""
    if not isinstance(actions, list):
        raise _kv_error("bad_parameter", detail="Property lifetime_actions must be a list.")
    low, high = ms.KEYVAULT_LIFETIME_PERCENTAGE_RANGE
    for action in actions:
        trigger = (action or {}).get("trigger") if isinstance(action, dict) else None
        kind = ((action.get("action") or {}).get("action_type") if isinstance(action, dict) else None)
        if not isinstance(trigger, dict):
            raise _kv_error("bad_parameter", detail="Property trigger of a lifetime action is required.")
        percentage, days = trigger.get("lifetime_percentage"), trigger.get("days_before_expiry")
        if (percentage is None) == (days is None):
            raise _kv_error("bad_parameter", detail="A lifetime action's trigger must set exactly one of "
                                                    "lifetime_percentage and days_before_expiry.")
        if percentage is not None and (not isinstance(percentage, int) or not low <= percentage <= high):
            raise _kv_error("bad_parameter", detail=f"Invalid lifetime_percentage: {percentage}. The value must be "
                                                    f"between {low} and {high}.")
        limit = months * ms.KEYVAULT_DAYS_BEFORE_EXPIRY_PER_MONTH
        if days is not None and (not isinstance(days, int) or not 1 <= days <= limit):
            raise _kv_error("bad_parameter", detail=f"Invalid days_before_expiry: {days}. The value must be between "
                                                    f"1 and {limit} (validity_months * 27).")
        if _action_type(kind) is None:
            raise _kv_error("bad_parameter", detail=f"Invalid action_type: {kind}. Valid values are AutoRenew and "
                                                    "EmailContacts.")


def _action_type(kind: Any) -> str | None:
    """The canonical action type (the service's enum is case-insensitive in the SDKs)."""
    if not isinstance(kind, str):
        return None
    return next((t for t in ms.KEYVAULT_LIFETIME_ACTION_TYPES if t.lower() == kind.lower()), None)


# -- lifetime actions on the sandbox clock ---------------------------------------------------------------

def _trigger_time(version: Version, trigger: dict) -> float:
    """When a lifetime action's trigger fires for a version (POSIX seconds)."""
    if trigger.get("lifetime_percentage") is not None:
        return version.nbf + (version.exp - version.nbf) * trigger["lifetime_percentage"] / 100
    return version.exp - trigger["days_before_expiry"] * 86400


def _notify(world, cert: Certificate, version: Version, action_type: str, trigger: dict, **extra: Any) -> None:
    base = (_state(world).get("urls") or {}).get("vault", "")
    _state(world)["notifications"].append({
        "certificate": cert.name, "version": version.id, "id": f"{base}/certificates/{cert.name}/{version.id}",
        "actionType": action_type, "trigger": dict(trigger), "at": int(world.clock.epoch()),
        "expires": version.exp, **extra})


async def run_lifetime_actions(world) -> None:
    """Take every lifetime action whose trigger the sandbox clock has passed, once per action and version:
    EmailContacts records a notification, AutoRenew makes a new version (certificates/overview-renew-
    certificate). Called before every vault request and by the admin routes, so a renewal that is due
    shows no later than the next request."""
    vault = _state(world)
    lock = vault.setdefault("lifetime_lock", asyncio.Lock())
    async with lock:
        now = world.clock.epoch()
        for cert in list(vault["certificates"].values()):
            version = cert.latest()
            if version is None:
                continue
            for action in list(cert.policy.get("lifetime_actions") or []):
                trigger = action.get("trigger") or {}
                kind = _action_type((action.get("action") or {}).get("action_type"))
                mark = json.dumps(action, sort_keys=True)
                if kind is None or mark in version.fired or now < _trigger_time(version, trigger):
                    continue
                version.fired.add(mark)
                if kind == "EmailContacts":
                    _notify(world, cert, version, kind, trigger)
                elif await _auto_renew(world, cert, version):
                    _notify(world, cert, version, kind, trigger, renewedVersion=cert.latest().id)


async def _auto_renew(world, cert: Certificate, previous: Version) -> bool:
    """AutoRenew: a new version from the certificate's policy, valid from now for validity_months, with a new key
    unless reuse_key, the previous version's tags (overview-renew-certificate FAQ). Self-signed only: Key Vault
    renews self-signed and integrated-CA certificates, not those of a CA it does not know."""
    policy = cert.policy
    if (policy.get("issuer") or {}).get("name", "Self") != "Self":
        return False
    if cert.operation is not None and cert.operation.status == "inProgress":
        return False
    loop = asyncio.get_running_loop()
    key_props, x509_props = policy["key_props"], policy["x509_props"]
    key = previous.key if key_props.get("reuse_key") else await loop.run_in_executor(
        None, kc.generate_key, int(key_props["key_size"]))
    certificate = await loop.run_in_executor(None, kc.self_signed_certificate, key, x509_props, world.clock.now())
    created = int(world.clock.epoch())
    version = Version(id=uuid.uuid4().hex, key=key, certificate=certificate, enabled=True, created=created,
                      updated=created, tags=dict(previous.tags), exportable=bool(key_props["exportable"]),
                      content_type=policy["secret_props"]["contentType"],
                      key_ops=kc.key_ops(x509_props.get("key_usage")))
    cert.versions[version.id] = version
    cert.operation = Operation(request_id=uuid.uuid4().hex, requested_at=created, policy=policy, enabled=True,
                               tags=dict(previous.tags), status="completed", target_version=version.id)
    return True


# -- settling pending creations ------------------------------------------------------------------------

def _sweep(world) -> None:
    """Purge soft-deleted certificates whose scheduledPurgeDate has passed (sandbox clock)."""
    vault = _state(world)
    now = world.clock.epoch()
    for key, cert in list(vault["deleted"].items()):
        if cert.scheduled_purge_date is not None and now >= cert.scheduled_purge_date:
            del vault["deleted"][key]


async def _settle(world, cert: Certificate) -> None:
    """Complete the certificate's pending creation once its delay has passed on the sandbox clock.
    With no delay this happens at the first request that looks at the certificate (the first poll)."""
    op = cert.operation
    if op is None or op.status != "inProgress":
        return
    if (op.policy.get("issuer") or {}).get("name") == "Unknown":
        return  # waits for the merge of a certificate signed by the CA (POST /pending/merge)
    if world.clock.epoch() < op.requested_at + _state(world)["creation_delay_seconds"]:
        return
    if op.polls <= op.polls_needed and op.polls_needed:
        return
    if op.task is None:
        op.task = asyncio.ensure_future(_complete(world, cert, op))
    await asyncio.shield(op.task)


async def _complete(world, cert: Certificate, op: Operation) -> None:
    loop = asyncio.get_running_loop()
    vault = _state(world)
    if vault["fail_creations"] > 0:
        # Fault injection: the operation ends "failed"; the SDK's poller then returns the
        # CertificateOperation instead of a certificate (REFERENCE.md, Key Vault).
        vault["fail_creations"] -= 1
        op.status = "failed"
        op.error = {"code": "InternalError", "message": "The certificate could not be created (sandbox fault "
                                                        "injection: failNextCreations)."}
        return
    key_props, x509_props = op.policy["key_props"], op.policy["x509_props"]
    key = op.key if op.key is not None else await loop.run_in_executor(None, kc.generate_key,
                                                                        int(key_props["key_size"]))
    now = world.clock.now()
    try:
        certificate = await loop.run_in_executor(None, kc.self_signed_certificate, key, x509_props, now)
    except kc.MaterialError as exc:
        op.status, op.error = "failed", {"code": "BadParameter", "message": str(exc)}
        return
    if cert.operation is not op or op.cancellation_requested:
        return
    created = int(world.clock.epoch())
    version = Version(id=uuid.uuid4().hex, key=key, certificate=certificate,
                      enabled=True if op.enabled is None else bool(op.enabled), created=created, updated=created,
                      tags=dict(op.tags), exportable=bool(key_props["exportable"]),
                      content_type=op.policy["secret_props"]["contentType"],
                      key_ops=kc.key_ops(x509_props.get("key_usage")))
    cert.versions[version.id] = version
    op.status, op.target_version = "completed", version.id


async def _active(request: web.Request, name: str, *, settle: bool = True) -> Certificate | None:
    world = request.app["world"]
    cert = _state(world)["certificates"].get(name.lower())
    if cert is not None and settle:
        await _settle(world, cert)
    return cert


async def _version_or_404(request: web.Request, name: str, version_id: str,
                          fact: str) -> tuple[Certificate, Version]:
    cert = await _active(request, name)
    version = None
    if cert is not None:
        version = cert.latest() if not version_id else cert.versions.get(version_id.lower())
    if cert is None or version is None:
        raise _kv_error(fact, name=name if not version_id else f"{name}/{version_id}")
    return cert, version


def _reject_if_deleted(world, name: str) -> None:
    if name.lower() in _state(world)["deleted"]:
        raise _kv_error("certificate_deleted_but_recoverable", name=name)


def _throttle_create(world) -> None:
    """Software RSA CREATE key: 20 per 10 s per vault; 429s do not count."""
    vault = _state(world)
    now = world.clock.epoch()
    window = [t for t in vault["create_times"] if now - t < CREATE_WINDOW]
    vault["create_times"] = window
    if len(window) >= CREATE_LIMIT:
        retry_after = max(1, math.ceil(window[0] + CREATE_WINDOW - now))
        raise _kv_error("throttled", headers={"Retry-After": str(retry_after)},
                        reason=f"the vault's limit of {CREATE_LIMIT} software RSA key creations per "
                               f"{int(CREATE_WINDOW)} seconds is exceeded.")
    window.append(now)


# -- certificates --------------------------------------------------------------------------------------

routes = web.RouteTableDef()

# Data actions of Azure RBAC (role-based-access-control/permissions/security#microsoftkeyvault).
A_CERT_READ = "Microsoft.KeyVault/vaults/certificates/read"
A_CERT_CREATE = "Microsoft.KeyVault/vaults/certificates/create/action"
A_CERT_IMPORT = "Microsoft.KeyVault/vaults/certificates/import/action"
A_CERT_UPDATE = "Microsoft.KeyVault/vaults/certificates/update/action"
A_CERT_DELETE = "Microsoft.KeyVault/vaults/certificates/delete"
A_CERT_RECOVER = "Microsoft.KeyVault/vaults/certificates/recover/action"
A_CERT_PURGE = "Microsoft.KeyVault/vaults/certificates/purge/action"
A_KEY_READ = "Microsoft.KeyVault/vaults/keys/read"
A_KEY_SIGN = "Microsoft.KeyVault/vaults/keys/sign/action"
A_SECRET_GET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"


def _page(request: web.Request, items: list[dict], path: str) -> dict:
    """Key Vault paging: `maxresults` (≤ 25, the service default) and a nextLink with $skiptoken."""
    try:
        size = int(request.query.get("maxresults", "25"))
        start = int(request.query.get("$skiptoken", "0"))
    except ValueError as exc:
        raise _kv_error("bad_parameter", detail="maxresults and $skiptoken must be integers.") from exc
    if not 1 <= size <= 25:
        raise _kv_error("bad_parameter", detail="Invalid value for maxresults: it must be between 1 and 25.")
    chunk = items[start:start + size]
    next_link = None
    if start + size < len(items):
        next_link = (f"{_base(request)}{path}?api-version={request.query['api-version']}"
                     f"&maxresults={size}&$skiptoken={start + size}")
    return {"value": chunk, "nextLink": next_link}


@routes.get("/certificates")
@_operation(A_CERT_READ)
async def list_certificates(request: web.Request) -> web.Response:
    """GET /certificates (certificates/get-certificates): the latest version of each certificate."""
    world, base = request.app["world"], _base(request)
    items = []
    for cert in sorted(_state(world)["certificates"].values(), key=lambda c: c.name.lower()):
        await _settle(world, cert)
        version = cert.latest()
        if version is None:
            continue
        items.append({"id": f"{base}/certificates/{cert.name}", "x5t": kc.x5t(version.certificate),
                      "attributes": _attributes(version, _state(world)), "tags": dict(version.tags)})
    return _json(_page(request, items, "/certificates"))


@routes.post("/certificates/{name}/create")
@_operation(A_CERT_CREATE)
async def create_certificate(request: web.Request) -> web.Response:
    """POST /certificates/{name}/create (certificates/create-certificate): 202 + the operation."""
    world, base, name = request.app["world"], _base(request), request.match_info["name"]
    body = await _body(request)
    _reject_if_deleted(world, name)
    cert = await _active(request, name)
    if cert is not None and cert.operation is not None and cert.operation.status == "inProgress":
        raise _kv_error("pending_create_conflict", id=f"{_base(request)}/certificates/{cert.name}/pending")
    raw_policy = body.get("policy")
    if not isinstance(raw_policy, dict):
        raise _kv_error("bad_parameter", detail="Property policy is required.")
    policy = _normalise_policy(raw_policy)  # the create request's policy becomes the certificate's
    x509_props = policy["x509_props"]
    sans = x509_props.get("sans") or {}
    if not x509_props.get("subject") and not any(sans.get(k) for k in ("dns_names", "emails", "upns", "uris",
                                                                        "ipAddresses")):
        raise _kv_error("bad_parameter", detail="Subject or subject alternative names are required.")
    if x509_props.get("subject"):
        try:
            kc.parse_subject(x509_props["subject"])
        except kc.MaterialError as exc:
            raise _kv_error("bad_parameter", detail=str(exc)) from exc
    issuer = policy["issuer"].get("name", "Self")
    if issuer not in SUPPORTED_ISSUERS:
        raise _kv_error("bad_parameter", detail=f"Issuer {issuer} is not supported by the sandbox vault "
                                                "(self-signed certificates only).")
    _throttle_create(world)
    # The key exists from the create on: the pending operation carries its CSR (CertificateOperation.csr).
    loop = asyncio.get_running_loop()
    previous = cert.latest() if cert is not None else None
    if policy["key_props"].get("reuse_key") and previous is not None:
        key = previous.key
    else:
        key = await loop.run_in_executor(None, kc.generate_key, int(policy["key_props"]["key_size"]))
    try:
        csr = await loop.run_in_executor(None, kc.certificate_request, key, x509_props)
    except kc.MaterialError as exc:
        raise _kv_error("bad_parameter", detail=str(exc)) from exc
    now = world.clock.epoch()
    attributes = body.get("attributes") or {}
    tags = body.get("tags") or {}
    cert = _state(world)["certificates"].get(name.lower())  # another request may have made it meanwhile
    if cert is None:
        cert = Certificate(name=name, policy=policy, policy_created=int(now), policy_updated=int(now))
        _state(world)["certificates"][name.lower()] = cert
    elif cert.operation is not None and cert.operation.status == "inProgress":
        raise _kv_error("pending_create_conflict", id=f"{_base(request)}/certificates/{cert.name}/pending")
    else:
        cert.policy, cert.policy_updated = policy, int(now)
    cert.operation = Operation(request_id=uuid.uuid4().hex, requested_at=now, policy=policy,
                               enabled=attributes.get("enabled"), tags=dict(tags),
                               polls_needed=_state(world)["creation_polls"], key=key, csr=csr)
    location = (f"{base}/certificates/{cert.name}/pending?api-version={request.query['api-version']}"
                f"&request_id={cert.operation.request_id}")
    return _json(_operation_json(base, cert), status=202, headers={"Location": location, "Retry-After": "10"})


@routes.get("/certificates/{name}/pending")
@_operation(A_CERT_READ)
async def get_operation(request: web.Request) -> web.Response:
    """GET /certificates/{name}/pending (certificates/get-certificate-operation)."""
    name = request.match_info["name"]
    cert = _state(request.app["world"])["certificates"].get(name.lower())
    if cert is not None and cert.operation is not None:
        cert.operation.polls += 1
    cert = await _active(request, name)
    if cert is None or cert.operation is None:
        raise _kv_error("pending_operation_not_found", name=name)
    return _json(_operation_json(_base(request), cert))


@routes.patch("/certificates/{name}/pending")
@_operation(A_CERT_UPDATE)
async def cancel_operation(request: web.Request) -> web.Response:
    """PATCH /certificates/{name}/pending {cancellation_requested: true} (update-certificate-operation)."""
    name = request.match_info["name"]
    body = await _body(request)
    cert = await _active(request, name, settle=False)
    if cert is None or cert.operation is None:
        raise _kv_error("pending_operation_not_found", name=name)
    if cert.operation.status != "inProgress":
        raise _kv_error("pending_not_in_progress")
    if body.get("cancellation_requested"):
        cert.operation.cancellation_requested = True
        cert.operation.status = "cancelled"
    return _json(_operation_json(_base(request), cert))


@routes.delete("/certificates/{name}/pending")
@_operation(A_CERT_UPDATE)
async def delete_operation(request: web.Request) -> web.Response:
    """DELETE /certificates/{name}/pending (delete-certificate-operation)."""
    name = request.match_info["name"]
    cert = await _active(request, name, settle=False)
    if cert is None or cert.operation is None:
        raise _kv_error("pending_operation_not_found", name=name)
    body = _operation_json(_base(request), cert)
    cert.operation.cancellation_requested = True
    cert.operation = None
    if not cert.versions:
        del _state(request.app["world"])["certificates"][name.lower()]
    return _json(body)


@routes.post("/certificates/{name}/pending/merge")
@_operation(A_CERT_CREATE)
async def merge_certificate(request: web.Request) -> web.Response:
    """POST /certificates/{name}/pending/merge {x5c, attributes?, tags?} (certificates/merge-certificate): the
    certificate a CA signed for the pending key becomes the new version; 201 with the certificate."""
    world, base, name = request.app["world"], _base(request), request.match_info["name"]
    body = await _body(request)
    cert = await _active(request, name, settle=False)
    if cert is None or cert.operation is None:
        raise _kv_error("pending_operation_not_found", name=name)
    op = cert.operation
    if op.status != "inProgress" or op.key is None:
        raise _kv_error("merge_not_pending")
    try:
        chain = await asyncio.get_running_loop().run_in_executor(None, kc.load_x5c, body.get("x5c"))
    except kc.MaterialError as exc:
        raise _kv_error("merge_x5c_invalid") from exc
    leaf = chain[0]
    if not kc.matches_key(leaf, op.key):
        raise _kv_error("merge_key_mismatch", name=cert.name)
    now = int(world.clock.epoch())
    attributes = body.get("attributes") or {}
    enabled = attributes.get("enabled", op.enabled)
    tags = body.get("tags") if isinstance(body.get("tags"), dict) else op.tags
    version = Version(id=uuid.uuid4().hex, key=op.key, certificate=leaf, enabled=enabled is not False,
                      created=now, updated=now, tags=dict(tags), exportable=bool(op.policy["key_props"]["exportable"]),
                      content_type=op.policy["secret_props"]["contentType"],
                      key_ops=kc.key_ops(kc.key_usage_of(leaf) or op.policy["x509_props"].get("key_usage")))
    cert.versions[version.id] = version
    op.status, op.target_version = "completed", version.id
    return _json(_certificate_json(base, cert, version, _state(world)), status=201)


@routes.post("/certificates/{name}/import")
@_operation(A_CERT_IMPORT)
async def import_certificate(request: web.Request) -> web.Response:
    """POST /certificates/{name}/import (certificates/import-certificate): PFX or PEM, with `pwd`."""
    world, base, name = request.app["world"], _base(request), request.match_info["name"]
    body = await _body(request)
    _reject_if_deleted(world, name)
    if not isinstance(body.get("value"), str) or not body["value"]:
        raise _kv_error("bad_parameter", detail="Property value is required.")
    cert = await _active(request, name)
    if cert is not None and cert.operation is not None and cert.operation.status == "inProgress":
        raise _kv_error("pending_create_conflict", id=f"{_base(request)}/certificates/{cert.name}/pending")
    try:
        material = await asyncio.get_running_loop().run_in_executor(None, kc.load_import, body["value"],
                                                                    body.get("pwd"))
    except kc.MaterialError as exc:
        raise _kv_error("bad_parameter", detail=str(exc)) from exc
    raw_policy = body.get("policy") if isinstance(body.get("policy"), dict) else {}
    declared = ((raw_policy.get("secret_props") or {}).get("contentType"))
    if declared and declared != material.content_type:
        raise _kv_error("bad_parameter", detail=f"The content type of the imported certificate "
                                                f"({material.content_type}) does not match the policy "
                                                f"({declared}).")
    leaf = material.certificate
    derived = {
        "key_props": {"kty": "RSA", "key_size": material.key.key_size},
        "secret_props": {"contentType": material.content_type},
        "x509_props": {"subject": leaf.subject.rfc4514_string(), "ekus": kc.ekus_of(leaf),
                       "key_usage": kc.key_usage_of(leaf), "validity_months": kc.validity_months_of(leaf)},
        "issuer": {"name": "Unknown"},  # what Key Vault reports for an imported certificate's issuer
    }
    policy = _normalise_policy(raw_policy, _normalise_policy(derived, cert.policy if cert else None))
    policy["key_props"]["key_size"] = material.key.key_size
    now = int(world.clock.epoch())
    attributes = body.get("attributes") or {}
    if cert is None:
        cert = Certificate(name=name, policy=policy, policy_created=now, policy_updated=now)
        _state(world)["certificates"][name.lower()] = cert
    else:
        cert.policy, cert.policy_updated = policy, now
    version = Version(id=uuid.uuid4().hex, key=material.key, certificate=leaf,
                      enabled=attributes.get("enabled", True) is not False, created=now, updated=now,
                      tags=dict(body.get("tags") or {}), exportable=bool(policy["key_props"]["exportable"]),
                      content_type=material.content_type, key_ops=kc.key_ops(kc.key_usage_of(leaf) or None))
    cert.versions[version.id] = version
    return _json(_certificate_json(base, cert, version, _state(world)))


@routes.get("/certificates/{name}/versions")
@_operation(A_CERT_READ)
async def list_versions(request: web.Request) -> web.Response:
    """GET /certificates/{name}/versions (get-certificate-versions)."""
    name, base = request.match_info["name"], _base(request)
    cert = await _active(request, name)
    if cert is None or not cert.versions:
        raise _kv_error("certificate_not_found", name=name)
    vault = _state(request.app["world"])
    items = [{"id": f"{base}/certificates/{cert.name}/{v.id}", "x5t": kc.x5t(v.certificate),
              "attributes": _attributes(v, vault), "tags": dict(v.tags)} for v in cert.versions.values()]
    return _json(_page(request, items, f"/certificates/{cert.name}/versions"))


@routes.get("/certificates/{name}/policy")
@_operation(A_CERT_READ)
async def get_policy(request: web.Request) -> web.Response:
    """GET /certificates/{name}/policy (get-certificate-policy)."""
    name = request.match_info["name"]
    cert = await _active(request, name)
    if cert is None:
        raise _kv_error("certificate_not_found", name=name)
    return _json(_policy_json(_base(request), cert))


@routes.patch("/certificates/{name}/policy")
@_operation(A_CERT_UPDATE)
async def update_policy(request: web.Request) -> web.Response:
    """PATCH /certificates/{name}/policy (update-certificate-policy): applies to later versions."""
    name = request.match_info["name"]
    body = await _body(request)
    cert = await _active(request, name)
    if cert is None:
        raise _kv_error("certificate_not_found", name=name)
    cert.policy = _normalise_policy(body, cert.policy)
    cert.policy_updated = int(request.app["world"].clock.epoch())
    return _json(_policy_json(_base(request), cert))


@routes.get(r"/certificates/{name}/{version:[0-9a-zA-Z]*}")
@routes.get("/certificates/{name}")
@_operation(A_CERT_READ)
async def get_certificate(request: web.Request) -> web.Response:
    """GET /certificates/{name}/ (latest; the SDK sends the trailing slash) or /{name}/{version}."""
    name = request.match_info["name"]
    cert, version = await _version_or_404(request, name, request.match_info.get("version", ""),
                                          "certificate_not_found")
    return _json(_certificate_json(_base(request), cert, version, _state(request.app["world"])))


@routes.patch(r"/certificates/{name}/{version:[0-9a-zA-Z]*}")
@_operation(A_CERT_UPDATE)
async def update_certificate(request: web.Request) -> web.Response:
    """PATCH /certificates/{name}/{version} (update-certificate): enabled, tags; the key and the secret
    of the version follow (they are managed by the certificate)."""
    name = request.match_info["name"]
    body = await _body(request)
    cert, version = await _version_or_404(request, name, request.match_info.get("version", ""),
                                          "certificate_not_found")
    attributes = body.get("attributes") or {}
    if "enabled" in attributes and attributes["enabled"] is not None:
        version.enabled = bool(attributes["enabled"])
    if isinstance(body.get("tags"), dict):
        version.tags = dict(body["tags"])
    if isinstance(body.get("policy"), dict):
        cert.policy = _normalise_policy(body["policy"], cert.policy)
    version.updated = int(request.app["world"].clock.epoch())
    return _json(_certificate_json(_base(request), cert, version, _state(request.app["world"])))


@routes.delete("/certificates/{name}")
@_operation(A_CERT_DELETE)
async def delete_certificate(request: web.Request) -> web.Response:
    """DELETE /certificates/{name} (delete-certificate): soft delete of the certificate, its key and secret."""
    world, name = request.app["world"], request.match_info["name"]
    vault = _state(world)
    cert = await _active(request, name, settle=False)
    if cert is None:
        raise _kv_error("certificate_not_found", name=name)
    now = int(world.clock.epoch())
    del vault["certificates"][name.lower()]
    if cert.operation is not None and cert.operation.status == "inProgress":
        cert.operation.cancellation_requested = True
    cert.operation = None
    cert.deleted_date, cert.scheduled_purge_date = now, now + vault["retention_days"] * 86400
    vault["deleted"][name.lower()] = cert
    return _json(_deleted_json(_base(request), cert, vault))


@routes.get("/deletedcertificates")
@_operation(A_CERT_READ)
async def list_deleted(request: web.Request) -> web.Response:
    """GET /deletedcertificates (get-deleted-certificates)."""
    base = _base(request)
    items = []
    for cert in sorted(_state(request.app["world"])["deleted"].values(), key=lambda c: c.name.lower()):
        body = _deleted_json(base, cert, _state(request.app["world"]))
        items.append({k: body[k] for k in ("id", "x5t", "attributes", "tags", "recoveryId", "deletedDate",
                                           "scheduledPurgeDate") if k in body})
        items[-1]["id"] = f"{base}/certificates/{cert.name}"
    return _json(_page(request, items, "/deletedcertificates"))


def _deleted_or_404(request: web.Request, name: str) -> Certificate:
    cert = _state(request.app["world"])["deleted"].get(name.lower())
    if cert is None:
        raise _kv_error("certificate_not_found", name=name)
    return cert


@routes.get("/deletedcertificates/{name}")
@_operation(A_CERT_READ)
async def get_deleted(request: web.Request) -> web.Response:
    """GET /deletedcertificates/{name} (get-deleted-certificate)."""
    return _json(_deleted_json(_base(request), _deleted_or_404(request, request.match_info["name"]),
                               _state(request.app["world"])))


@routes.post("/deletedcertificates/{name}/recover")
@_operation(A_CERT_RECOVER)
async def recover_deleted(request: web.Request) -> web.Response:
    """POST /deletedcertificates/{name}/recover (recover-deleted-certificate): back with all versions."""
    world, name = request.app["world"], request.match_info["name"]
    vault = _state(world)
    cert = _deleted_or_404(request, name)
    del vault["deleted"][name.lower()]
    cert.deleted_date = cert.scheduled_purge_date = None
    vault["certificates"][name.lower()] = cert
    version = cert.latest()
    if version is None:
        return _json({"id": f"{_base(request)}/certificates/{cert.name}",
                      "policy": _policy_json(_base(request), cert)})
    return _json(_certificate_json(_base(request), cert, version, _state(request.app["world"])))


@routes.delete("/deletedcertificates/{name}")
@_operation(A_CERT_PURGE)
async def purge_deleted(request: web.Request) -> web.Response:
    """DELETE /deletedcertificates/{name} (purge-deleted-certificate): 204; 403 when the vault has purge
    protection (the object stays until its scheduledPurgeDate)."""
    name = request.match_info["name"]
    _deleted_or_404(request, name)
    vault = _state(request.app["world"])
    if vault["purge_protection"]:
        raise _kv_error("purge_protected", vault=VAULT_NAME, location=VAULT_LOCATION)
    del vault["deleted"][name.lower()]
    return web.Response(status=204, headers={"x-ms-request-id": str(uuid.uuid4())})


# -- keys ----------------------------------------------------------------------------------------------

def _key_json(base: str, cert: Certificate, version: Version, vault: dict) -> dict:
    kid = f"{base}/keys/{cert.name}/{version.id}"
    attributes = _attributes(version, vault)
    attributes["exportable"] = version.exportable
    return {"key": kc.public_jwk(version.key, kid, version.key_ops), "attributes": attributes,
            "tags": dict(version.tags), "managed": True}


def _active_versions(request: web.Request) -> list[tuple[Certificate, Version]]:
    """The latest version of every certificate that has one, by name."""
    certs = sorted(_state(request.app["world"])["certificates"].values(), key=lambda c: c.name.lower())
    return [(c, c.latest()) for c in certs if c.latest() is not None]


@routes.get("/keys")
@_operation(A_KEY_READ, "keys")
async def list_keys(request: web.Request) -> web.Response:
    """GET /keys (keys/get-keys): a KeyItem per key (the certificates' keys; managed)."""
    base, vault = _base(request), _state(request.app["world"])
    for cert in list(vault["certificates"].values()):
        await _settle(request.app["world"], cert)
    items = [{"kid": f"{base}/keys/{c.name}", "attributes": _key_json(base, c, v, vault)["attributes"],
              "tags": dict(v.tags), "managed": True} for c, v in _active_versions(request)]
    return _json(_page(request, items, "/keys"))


@routes.get("/keys/{name}/versions")
@_operation(A_KEY_READ, "keys")
async def list_key_versions(request: web.Request) -> web.Response:
    """GET /keys/{name}/versions (keys/get-key-versions)."""
    name, base, vault = request.match_info["name"], _base(request), _state(request.app["world"])
    cert = await _active(request, name)
    if cert is None or not cert.versions:
        raise _kv_error("key_not_found", name=name)
    items = [{"kid": f"{base}/keys/{cert.name}/{v.id}", "attributes": _key_json(base, cert, v, vault)["attributes"],
              "tags": dict(v.tags), "managed": True} for v in cert.versions.values()]
    return _json(_page(request, items, f"/keys/{cert.name}/versions"))


@routes.get(r"/keys/{name}/{version:[0-9a-zA-Z]*}")
@routes.get("/keys/{name}")
@_operation(A_KEY_READ, "keys")
async def get_key(request: web.Request) -> web.Response:
    """GET /keys/{name}/ or /keys/{name}/{version} (keys/get-key): the public JWK of the certificate's key."""
    cert, version = await _version_or_404(request, request.match_info["name"],
                                          request.match_info.get("version", ""), "key_not_found")
    return _json(_key_json(_base(request), cert, version, _state(request.app["world"])))


@routes.post(r"/keys/{name}/{version:[0-9a-zA-Z]*}/sign")
@_operation(A_KEY_SIGN, "keys")
async def sign(request: web.Request) -> web.Response:
    """POST /keys/{name}/{version}/sign (keys/sign): {alg, value: base64url digest} → {kid, value}."""
    world = request.app["world"]
    body = await _body(request)
    cert, version = await _version_or_404(request, request.match_info["name"],
                                          request.match_info.get("version", ""), "key_not_found")
    alg = body.get("alg")
    if alg not in kc.SIGN_ALGORITHMS:
        raise _kv_error("bad_algorithm", alg=alg)
    if not isinstance(body.get("value"), str):
        raise _kv_error("bad_parameter", detail="Property value is required.")
    try:
        digest = kc.b64url_decode(body["value"])
    except kc.MaterialError as exc:
        raise _kv_error("bad_parameter", detail="Property value is not valid base64url.") from exc
    expected = kc.SIGN_ALGORITHMS[alg][1]
    if len(digest) != expected:
        raise _kv_error("bad_digest", detail=f"Invalid digest length {len(digest)} for algorithm {alg}: "
                                             f"expected {expected} bytes.")
    if "sign" not in version.key_ops:
        raise _kv_error("key_operation_forbidden", operation="sign")
    if not version.enabled:
        raise _kv_error("key_disabled", operation="sign")
    now = world.clock.epoch()
    if now < version.nbf:
        raise _kv_error("key_not_yet_valid", operation="sign")
    if now >= version.exp:
        raise _kv_error("key_expired", operation="sign")
    signature = await asyncio.get_running_loop().run_in_executor(None, kc.sign, version.key, alg, digest)
    return _json({"kid": f"{_base(request)}/keys/{cert.name}/{version.id}", "value": kc.b64url(signature)})


@routes.post(r"/keys/{name}/{version:[0-9a-zA-Z]*}/verify")
@_operation("Microsoft.KeyVault/vaults/keys/verify/action", "keys")
async def verify(request: web.Request) -> web.Response:
    """POST /keys/{name}/{version}/verify (keys/verify): {alg, digest, value} → {value: bool}."""
    body = await _body(request)
    _, version = await _version_or_404(request, request.match_info["name"],
                                       request.match_info.get("version", ""), "key_not_found")
    alg = body.get("alg")
    if alg not in kc.SIGN_ALGORITHMS:
        raise _kv_error("bad_algorithm", alg=alg)
    try:
        digest, signature = kc.b64url_decode(body.get("digest") or ""), kc.b64url_decode(body.get("value") or "")
    except kc.MaterialError as exc:
        raise _kv_error("bad_parameter", detail="Properties digest and value must be base64url.") from exc
    if "verify" not in version.key_ops:
        raise _kv_error("key_operation_forbidden", operation="verify")
    valid = await asyncio.get_running_loop().run_in_executor(None, kc.verify, version.key, alg, digest, signature)
    return _json({"value": valid})


# -- secrets -------------------------------------------------------------------------------------------
# Two kinds share the /secrets routes: a certificate's own secret (managed: true, read-only here) and standalone
# secrets set with PUT /secrets/{name} (microsoft.KEYVAULT_SECRET_FACTS: each PUT adds a version; the latest is
# what GET /secrets/{name} returns; version lists carry no values; update-secret changes attributes only).

A_SECRET_SET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
A_SECRET_UPDATE = "Microsoft.KeyVault/vaults/secrets/update/action"
A_SECRET_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


@dataclass
class SecretVersion:
    """One version of a standalone secret."""

    id: str
    value: str
    content_type: str | None
    enabled: bool
    created: int
    updated: int
    nbf: int | None
    exp: int | None
    tags: dict


@dataclass
class Secret:
    """A standalone secret: its versions, oldest first."""

    name: str
    versions: dict[str, SecretVersion] = field(default_factory=dict)

    def latest(self) -> SecretVersion | None:
        return next(reversed(self.versions.values()), None) if self.versions else None


def _secrets(world) -> dict[str, Secret]:
    return world.vault.setdefault("secrets", {})


def _standalone_attributes(version: SecretVersion, vault: dict) -> dict:
    attributes = {"enabled": version.enabled, "created": version.created, "updated": version.updated,
                  "recoveryLevel": ms.keyvault_recovery_level(vault["purge_protection"], vault["retention_days"]),
                  "recoverableDays": vault["retention_days"]}
    attributes.update({k: v for k, v in (("nbf", version.nbf), ("exp", version.exp)) if v is not None})
    return attributes


def _standalone_item(base: str, secret: Secret, version: SecretVersion, vault: dict, versioned: bool) -> dict:
    item = {"id": f"{base}/secrets/{secret.name}" + (f"/{version.id}" if versioned else ""),
            "attributes": _standalone_attributes(version, vault), "tags": dict(version.tags)}
    if version.content_type is not None:
        item["contentType"] = version.content_type
    return item


def _standalone_bundle(base: str, secret: Secret, version: SecretVersion, vault: dict) -> dict:
    return {**_standalone_item(base, secret, version, vault, True), "value": version.value}


def _epoch_attribute(attributes: dict, name: str) -> int | None:
    value = attributes.get(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _kv_error("bad_parameter", detail=f"Property attributes.{name} has invalid value.")
    return int(value)


def _secret_item(base: str, cert: Certificate, version: Version, vault: dict, versioned: bool) -> dict:
    return {"id": f"{base}/secrets/{cert.name}" + (f"/{version.id}" if versioned else ""),
            "attributes": _attributes(version, vault), "tags": dict(version.tags),
            "contentType": version.content_type, "managed": True}


@routes.get("/secrets")
@_operation(A_SECRET_METADATA, "secrets")
async def list_secrets(request: web.Request) -> web.Response:
    """GET /secrets (secrets/get-secrets): a SecretItem per secret, the certificates' (managed) and the
    standalone ones, by name."""
    world, base, vault = request.app["world"], _base(request), _state(request.app["world"])
    for cert in list(vault["certificates"].values()):
        await _settle(world, cert)
    items = [(c.name.lower(), _secret_item(base, c, v, vault, False)) for c, v in _active_versions(request)]
    items += [(s.name.lower(), _standalone_item(base, s, s.latest(), vault, False))
              for s in _secrets(world).values() if s.latest() is not None]
    return _json(_page(request, [item for _, item in sorted(items, key=lambda pair: pair[0])], "/secrets"))


@routes.put("/secrets/{name}")
@_operation(A_SECRET_SET, "secrets")
async def set_secret(request: web.Request) -> web.Response:
    """PUT /secrets/{name} (secrets/set-secret): a new version of a standalone secret (the secret is created
    with its first version)."""
    world, name = request.app["world"], request.match_info["name"]
    body = await _body(request)
    value = body.get("value")
    if not isinstance(value, str):
        raise _kv_error("bad_parameter", detail="Property value is required and must be a string.")
    if len(value.encode()) > ms.KEYVAULT_SECRET_FACTS["max_value_bytes"]:
        raise _kv_error("bad_parameter", detail="The secret value is too large.")
    if name.lower() in _state(world)["certificates"]:
        raise _kv_error("secret_managed_by_certificate", name=name)
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _kv_error("bad_parameter", detail="Property attributes must be an object.")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise _kv_error("bad_parameter", detail="Property tags must be an object of strings.")
    content_type = body.get("contentType")
    if content_type is not None and (not isinstance(content_type, str)
                                     or len(content_type) > ms.KEYVAULT_SECRET_FACTS["max_content_type_chars"]):
        raise _kv_error("bad_parameter", detail="Property contentType must be a string of at most 255 characters.")
    now = int(world.clock.epoch())
    secret = _secrets(world).setdefault(name.lower(), Secret(name))
    version = SecretVersion(id=uuid.uuid4().hex, value=value, content_type=content_type,
                            enabled=attributes.get("enabled", True) is not False, created=now, updated=now,
                            nbf=_epoch_attribute(attributes, "nbf"), exp=_epoch_attribute(attributes, "exp"),
                            tags=dict(tags))
    secret.versions[version.id] = version
    return _json(_standalone_bundle(_base(request), secret, version, _state(world)))


@routes.get("/secrets/{name}/versions")
@_operation(A_SECRET_METADATA, "secrets")
async def list_secret_versions(request: web.Request) -> web.Response:
    """GET /secrets/{name}/versions (secrets/get-secret-versions): identifiers and attributes, no values."""
    name, base, vault = request.match_info["name"], _base(request), _state(request.app["world"])
    standalone = _secrets(request.app["world"]).get(name.lower())
    if standalone is not None and standalone.versions:
        items = [_standalone_item(base, standalone, v, vault, True) for v in standalone.versions.values()]
        return _json(_page(request, items, f"/secrets/{standalone.name}/versions"))
    cert = await _active(request, name)
    if cert is None or not cert.versions:
        raise _kv_error("secret_not_found", name=name)
    items = [_secret_item(base, cert, v, vault, True) for v in cert.versions.values()]
    return _json(_page(request, items, f"/secrets/{cert.name}/versions"))


@routes.patch(r"/secrets/{name}/{version:[0-9a-zA-Z]*}")
@_operation(A_SECRET_UPDATE, "secrets")
async def update_secret(request: web.Request) -> web.Response:
    """PATCH /secrets/{name}/{version} (secrets/update-secret): a standalone version's attributes, content type
    and tags; the value cannot change."""
    world, name, version_id = request.app["world"], request.match_info["name"], request.match_info["version"]
    secret = _secrets(world).get(name.lower())
    version = None
    if secret is not None:
        version = secret.latest() if not version_id else secret.versions.get(version_id.lower())
    if secret is None or version is None:
        raise _kv_error("secret_not_found", name=name if not version_id else f"{name}/{version_id}")
    body = await _body(request)
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _kv_error("bad_parameter", detail="Property attributes must be an object.")
    if "enabled" in attributes:
        version.enabled = attributes["enabled"] is not False
    for key in ("nbf", "exp"):
        if key in attributes:
            setattr(version, key, _epoch_attribute(attributes, key))
    if isinstance(body.get("tags"), dict):
        version.tags = {k: str(v) for k, v in body["tags"].items()}
    if isinstance(body.get("contentType"), str):
        version.content_type = body["contentType"]
    version.updated = int(world.clock.epoch())
    return _json(_standalone_item(_base(request), secret, version, _state(world), True))


@routes.get(r"/secrets/{name}/{version:[0-9a-zA-Z]*}")
@routes.get("/secrets/{name}")
@_operation(A_SECRET_GET, "secrets")
async def get_secret(request: web.Request) -> web.Response:
    """GET /secrets/{name}/ or /{name}/{version} (secrets/get-secret): a standalone secret's value, or the
    certificate as PFX or PEM, with the private key only when the certificate's key is exportable."""
    world, name, version_id = request.app["world"], request.match_info["name"], request.match_info.get("version", "")
    standalone = _secrets(world).get(name.lower())
    if standalone is not None:
        version = standalone.latest() if not version_id else standalone.versions.get(version_id.lower())
        if version is None:
            raise _kv_error("secret_not_found", name=name if not version_id else f"{name}/{version_id}")
        if not version.enabled:
            raise _kv_error("secret_disabled")
        return _json(_standalone_bundle(_base(request), standalone, version, _state(world)))
    cert, version = await _version_or_404(request, name, version_id, "secret_not_found")
    if not version.enabled:
        raise _kv_error("secret_disabled")
    value = await asyncio.get_running_loop().run_in_executor(
        None, kc.secret_value, version.key, version.certificate, version.content_type, version.exportable)
    base = _base(request)
    attributes = _attributes(version, _state(request.app["world"]))
    return _json({"value": value, "contentType": version.content_type,
                  "id": f"{base}/secrets/{cert.name}/{version.id}", "kid": f"{base}/keys/{cert.name}/{version.id}",
                  "managed": True, "attributes": attributes, "tags": dict(version.tags)})


# -- admin (served on the login origin under /_sandbox by the lead's server.py) -------------------------

admin_routes = web.RouteTableDef()


@admin_routes.get("/_sandbox/vault")
async def admin_get_vault(request: web.Request) -> web.Response:
    """The vault's access list, creation delay and object names."""
    await run_lifetime_actions(request.app["world"])
    return web.json_response(describe(request.app["world"]))


@admin_routes.get("/_sandbox/vault/notifications")
async def admin_notifications(request: web.Request) -> web.Response:
    """What the vault would have mailed its certificate contacts (EmailContacts lifetime actions, renewals),
    oldest first; ?certificate=name filters. Lifetime actions that are due are taken first."""
    world = request.app["world"]
    await run_lifetime_actions(world)
    wanted = request.query.get("certificate", "").lower()
    return web.json_response({"value": [n for n in _state(world)["notifications"]
                                        if not wanted or n["certificate"].lower() == wanted]})


@admin_routes.put("/_sandbox/vault")
async def admin_put_vault(request: web.Request) -> web.Response:
    """Configure the vault: {"access": [object id | "provisioner" | "managedIdentity"] | null,
    "creationDelaySeconds": N, "creationPolls": N, "failNextCreations": N, "enablePurgeProtection": bool,
    "softDeleteRetentionInDays": 7-90}. Seeded names refer to the home tenant's identities; null restores the
    default access."""
    world = request.app["world"]
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "a JSON object is required"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "a JSON object is required"}, status=400)
    if "creationDelaySeconds" in body:
        delay = body["creationDelaySeconds"]
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            return web.json_response({"error": "creationDelaySeconds: a number >= 0"}, status=400)
        set_creation_delay(world, delay)
    if "creationPolls" in body:
        try:
            set_creation_polls(world, body["creationPolls"])
        except ValueError as exc:
            return web.json_response({"error": f"creationPolls: {exc}"}, status=400)
    if "enablePurgeProtection" in body or "softDeleteRetentionInDays" in body:
        protection = body.get("enablePurgeProtection")
        if protection is not None and not isinstance(protection, bool):
            return web.json_response({"error": "enablePurgeProtection: true or false"}, status=400)
        try:
            set_soft_delete(world, protection, body.get("softDeleteRetentionInDays"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
    if "failNextCreations" in body:
        count = body["failNextCreations"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return web.json_response({"error": "failNextCreations: an integer >= 0"}, status=400)
        _state(world)["fail_creations"] = count
    if "access" in body:
        access = body["access"]
        if access is None:
            set_access(world, None)
        elif isinstance(access, list) and all(isinstance(a, str) for a in access):
            home = world.tenants.get(world.home_tenant_id)
            refs = {"provisioner": home.seeded["provisioner"]["servicePrincipalId"],
                    "managedIdentity": home.seeded["managedIdentity"]["principalId"]} if home else {}
            set_access(world, [refs.get(a, a) for a in access])
        else:
            return web.json_response({"error": "access: a list of object ids (or 'provisioner' / "
                                               "'managedIdentity'), or null"}, status=400)
    return web.json_response(describe(world))


async def unknown_route(request: web.Request) -> web.Response:
    """Any path or method the vault does not serve: the 401 challenge first (as for every request without a
    token), then the 404 HTML page Key Vault's front end answers (microsoft.KEYVAULT_UNKNOWN_ROUTE_HTML)."""
    _authenticate(request)
    return web.Response(status=ms.KEYVAULT_UNKNOWN_ROUTE_STATUS, text=ms.KEYVAULT_UNKNOWN_ROUTE_HTML,
                        content_type="text/html", headers={"x-ms-request-id": str(uuid.uuid4())})


def setup(app: web.Application) -> None:
    """Register the Key Vault routes on the vault origin's application, then the catch-all for the rest."""
    app.add_routes(routes)
    app.router.add_route("*", "/{tail:.*}", unknown_route)
    _state(app["world"])["urls"] = app["urls"]  # filled once the origins are bound


__all__ = [
    "admin_routes",
    "allowed_principals",
    "default_access",
    "describe",
    "routes",
    "run_lifetime_actions",
    "set_access",
    "set_creation_delay",
    "set_creation_polls",
    "set_soft_delete",
    "setup",
]
