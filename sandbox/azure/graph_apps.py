"""Graph /applications: upsert by uniqueName, create, get, list, update, delete, owners, keyCredentials,
addKey / removeKey.

Sources (learn.microsoft.com/graph/api/…):
  application-upsert            PATCH /applications(uniqueName='…') + Prefer: create-if-missing → 201 + body
                                when created, 204 when updated, 404 without the header for a missing app;
                                displayName required in the body.
  application-post-applications POST /applications → 201.
  application-get / -list / -update / -delete / -list-owners.
  application-addkey            POST …/addKey → 200 + keyCredential; proof of possession; apps without a
                                valid certificate cannot use it ("use Update application instead").
  application-removekey         POST …/removeKey {keyId, proof} → 204.
  resources/keycredential       key "Returned only on $select for a single object … otherwise, it is always
                                null"; customKeyIdentifier defaults to the certificate thumbprint.
  ../application-rollkey-prooftoken  proof claims aud 00000002-0000-0000-c000-000000000000, iss = object id
                                of the application, nbf, exp = nbf + 10 min; '=' padding in header/payload
                                → Authentication_MissingOrMalformed. The sample signs with
                                X509SigningCredentials (RS256, header x5t / kid = certificate thumbprint).
  permissions-reference#applicationreadwriteownedby  OwnedBy: create apps (caller becomes owner) and
                                manage only the apps it owns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime

import jwt
from aiohttp import web
from cryptography import x509

from sandbox.clock import isoformat_z

from . import microsoft as ms
from .errors import ServiceError
from .graph_base import (
    APP_REF,
    Ctx,
    check_guid,
    check_properties,
    entity_response,
    graph_error,
    guid_property,
    is_guid,
    list_response,
    not_found,
    public,
    respond,
    route,
    unquote_literal,
)
from .graph_odata import EntityType
from .graph_policies import added_keys, enforce_key_lifetime
from .tokens import b64url_nopad
from .world import Tenant, new_id

# -- the application type ------------------------------------------------------------------------------

# Properties of microsoft.graph.application (v1.0 resource page, learn.microsoft.com/graph/api/resources/application).
APPLICATION_PROPERTIES = frozenset({
    "addIns", "api", "appId", "applicationTemplateId", "appRoles", "authenticationBehaviors", "certification",
    "createdDateTime", "defaultRedirectUri", "deletedDateTime", "description", "disabledByMicrosoftStatus",
    "displayName", "groupMembershipClaims", "id", "identifierUris", "info", "isDeviceOnlyAuthSupported",
    "isFallbackPublicClient", "keyCredentials", "logo", "nativeAuthenticationApisEnabled", "notes",
    "oauth2RequirePostResponse", "optionalClaims", "parentalControlSettings", "passwordCredentials",
    "publicClient", "publisherDomain", "requestSignatureVerification", "requiredResourceAccess",
    "samlMetadataUrl", "serviceManagementReference", "servicePrincipalLockConfiguration", "signInAudience",
    "spa", "tags", "tokenEncryptionKeyId", "uniqueName", "verifiedPublisher", "web",
})
APPLICATION_READ_ONLY = frozenset({"id", "appId", "applicationTemplateId", "certification", "createdDateTime",
                                   "deletedDateTime", "disabledByMicrosoftStatus", "publisherDomain",
                                   "verifiedPublisher"})
APPLICATION = EntityType(
    name="application", resource="Application", properties=APPLICATION_PROPERTIES,
    # Filterable without advanced query headers (application resource page, "Supports $filter (eq …)").
    eq=frozenset({"id", "appId", "displayName", "uniqueName", "signInAudience", "publisherDomain"}),
    startswith=frozenset({"displayName", "uniqueName"}),
    # identifierUris, tags: "Supports $filter (eq, not, ge, le, startsWith)" (resources/application), through any().
    collections=frozenset({"identifierUris", "tags"}),
)
# learn.microsoft.com/graph/api/resources/application#properties (signInAudience values).
SIGN_IN_AUDIENCES = {"AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount",
                     "PersonalMicrosoftAccount"}
KEY_CREDENTIAL_PROPERTIES = frozenset({"customKeyIdentifier", "displayName", "endDateTime", "key", "keyId",
                                       "startDateTime", "type", "usage"})
# customKeyIdentifier limit: REFERENCE.md (≤ 32 bytes; the same 32-byte limit Entra applies to password
# credentials' customKeyIdentifier). The keyCredential page calls it "a 40-character binary type": a 40-char
# hex thumbprint sent as text; its SHA-1 digest form is 20 bytes. UNCONFIRMED exact limit.
CUSTOM_KEY_IDENTIFIER_MAX = 32
_STANDARD_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_BASE64_WHITESPACE = re.compile(r"[ \t\r\n]+")

# Messages used here that microsoft.py does not list (tell the lead if they should move there).
APP_ERRORS = {
    # learn.microsoft.com/graph/application-saml-sso-configure-api: "Using the wrong format can result in the
    # error 'Invalid certificate: Key value is invalid certificate' when using Microsoft Graph to PATCH …
    # keyCredentials". Code UNCONFIRMED (KeyCredentialsInvalidValue, as for empty keys).
    "invalid_certificate": (400, "KeyCredentialsInvalidValue", "Invalid certificate: Key value is invalid certificate"),
    # OBSERVED (AAD Graph, Azure/azure-powershell#6784 and #6855): re-sending an existing keyId with other key bytes.
    "key_id_update": (400, "Request_BadRequest", "Update to existing credential with KeyId is not allowed"),
    # uniqueName is an immutable alternate key (application-upsert; resources/application "uniqueName …
    # Immutable"). Wording UNCONFIRMED.
    "unique_name_immutable": (400, "Request_BadRequest", "Property 'uniqueName' is read-only and cannot be set."),
    # Duplicate alternate keys: Graph answers 409 Request_MultipleObjectsWithSameKeyValue "Another object with
    # the same value for property X already exists." (observed for servicePrincipalNames / userPrincipalName).
    "unique_name_conflict": (409, "Request_MultipleObjectsWithSameKeyValue",
                             "Another object with the same value for property uniqueName already exists."),
    # application-upsert: "Using PATCH to set passwordCredential is not supported. Use addPassword".
    # Wording UNCONFIRMED.
    "password_patch": (400, "Request_BadRequest", "Property 'passwordCredentials' cannot be set with PATCH; use "
                                                  "addPassword and removePassword."),
}


def app_error(key: str, **fields) -> ServiceError:
    status, code, message = APP_ERRORS[key]
    return ServiceError(status, code, message.format(**fields))


# -- serialisation -----------------------------------------------------------------------------------

def serialize_key(credential: dict, with_key: bool = False) -> dict:
    """A keyCredential as Graph returns it: `key` only when asked for with $select on one object."""
    out = public(credential)
    out["key"] = base64.b64encode(credential["_der"]).decode() if with_key and credential.get("_der") else None
    return out


def serialize_app(app: dict, with_keys: bool = False) -> dict:
    """An application as Graph returns it (private fields dropped; key bytes hidden)."""
    out = public(app)
    out["keyCredentials"] = [serialize_key(k, with_keys) for k in app.get("keyCredentials", [])]
    out["passwordCredentials"] = [{**public(p), "secretText": None} for p in app.get("passwordCredentials", [])]
    return out


# -- lookups -------------------------------------------------------------------------------------------

def resolve_app(ctx: Ctx) -> dict:
    """The application named by the URL: /{id}, (appId='…') or (uniqueName='…'); 404 otherwise."""
    tenant = ctx.tenant
    if "id" in ctx.match:
        object_id = check_guid(ctx.match["id"])
        app = tenant.applications.get(object_id)
        if app is None:
            raise not_found(object_id)
        return app
    if "appId" in ctx.match:
        app_id = unquote_literal(ctx.match["appId"])
        app = tenant.application_by_app_id(check_guid(app_id))
        if app is None:
            raise not_found(app_id)
        return app
    unique_name = unquote_literal(ctx.match["uniqueName"])
    app = tenant.application_by_unique_name(unique_name)
    if app is None:
        raise graph_error("upsert_missing_without_prefer", uniqueName=unique_name)
    return app


# -- keyCredentials -------------------------------------------------------------------------------------

def parse_binary(value) -> bytes:
    """An Edm.Binary property: standard base64 with padding, read like .NET's Convert.FromBase64String, which
    ignores tab, line feed, carriage return and space (microsoft.KEY_CREDENTIAL_FACTS["binary_whitespace"])."""
    if not isinstance(value, str):
        raise graph_error("binary_literal_invalid", literal=value)
    compact = _BASE64_WHITESPACE.sub("", value)
    if len(compact) % 4 or not _STANDARD_BASE64.match(compact):
        raise graph_error("binary_literal_invalid", literal=value)
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as exc:
        raise graph_error("binary_literal_invalid", literal=value) from exc


def parse_datetime(value) -> datetime:
    """An Edm.DateTimeOffset property (ISO 8601; a missing offset is read as UTC)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if isinstance(value, str) else value)
    except (TypeError, ValueError) as exc:
        raise graph_error("literal_invalid", literal=value, edm="Edm.DateTimeOffset") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def thumbprint_sha1(der: bytes) -> bytes:
    return hashlib.sha1(der).digest()


def new_key_credential(data: dict, key_id: str | None = None) -> dict:
    """Validate a keyCredential being added and return it as stored (with `_der`)."""
    if not isinstance(data, dict):
        raise graph_error("literal_invalid", literal=data, edm="microsoft.graph.keyCredential")
    check_properties(data, KEY_CREDENTIAL_PROPERTIES, "keyCredential")
    raw_key = data.get("key")
    if raw_key is None or raw_key == "":
        raise graph_error("key_value_empty")
    der = parse_binary(raw_key)
    if not der:
        raise graph_error("key_value_empty")
    kind, usage = data.get("type"), data.get("usage")
    # addKey page: "AsymmetricX509Cert: The usage must be Verify" (the sandbox models certificate credentials
    # for client assertions only; X509CertAndPassword/Sign is for SAML token signing).
    if kind != "AsymmetricX509Cert":
        raise graph_error("invalid_value", name="type", resource="KeyCredential")
    if usage != "Verify":
        raise graph_error("invalid_value", name="usage", resource="KeyCredential")
    try:
        certificate = x509.load_der_x509_certificate(der)
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    except ValueError as exc:
        raise app_error("invalid_certificate") from exc
    # Dates lie inside the certificate's validity: notBefore <= start < end <= notAfter, compared to the second
    # (microsoft.KEY_CREDENTIAL_FACTS["dates"]: the Azure CLI sends notBefore + 1 s and notAfter - 1 s). Entra
    # infers them from the certificate when absent (Azure-Samples/active-directory-dotnet-daemon-certificate-
    # credential#30 "the dates are inferred by the content of the certificate").
    not_before, not_after = not_before.replace(microsecond=0), not_after.replace(microsecond=0)
    start, end = not_before, not_after
    if data.get("startDateTime") is not None:
        start = parse_datetime(data["startDateTime"]).replace(microsecond=0)
        if start < not_before:
            raise graph_error("key_start_date_invalid")
    if data.get("endDateTime") is not None:
        end = parse_datetime(data["endDateTime"]).replace(microsecond=0)
        if end > not_after:
            raise graph_error("key_end_date_invalid")
    if start >= end:
        raise graph_error("key_end_date_invalid")
    custom = data.get("customKeyIdentifier")
    if custom is not None:
        custom_bytes = parse_binary(custom)
        if not custom_bytes or len(custom_bytes) > CUSTOM_KEY_IDENTIFIER_MAX:
            raise graph_error("invalid_value", name="customKeyIdentifier", resource="KeyCredential")
    else:
        custom_bytes = thumbprint_sha1(der)  # "defaults to the thumbprint of the certificate"
    display_name = data.get("displayName")
    if display_name is None:
        display_name = certificate.subject.rfc4514_string() or None
    return {
        "customKeyIdentifier": base64.b64encode(custom_bytes).decode(),
        "displayName": display_name,
        "endDateTime": isoformat_z(end),
        "key": None,
        "keyId": key_id or new_id(),
        "startDateTime": isoformat_z(start),
        "type": kind,
        "usage": usage,
        "_der": der,
    }


def replace_key_credentials(existing: list[dict], incoming) -> list[dict]:
    """PATCH semantics: the collection is replaced by `incoming`.

    A keyCredential whose keyId matches a stored one keeps that stored key. Clients re-send existing keys
    with `key: null` (lists and plain GETs return key null), and Graph keeps them: "to retain the old one(s)
    you need to supply the prior keyId (not null) and value (null)" (microsoftgraph/microsoft-graph-docs#3579).
    Re-sending a keyId with different key bytes fails ("Update to existing credential with KeyId is not
    allowed", Azure/azure-powershell#6784). A new keyCredential with a client-chosen keyId keeps it
    (hashicorp/terraform-provider-azuread generates the keyId of the certificates it adds); without one, Graph
    assigns it.
    """
    if not isinstance(incoming, list):
        raise graph_error("literal_invalid", literal=incoming, edm="Collection(microsoft.graph.keyCredential)")
    by_id = {k["keyId"].lower(): k for k in existing}
    result: list[dict] = []
    for data in incoming:
        if not isinstance(data, dict):
            raise graph_error("literal_invalid", literal=data, edm="microsoft.graph.keyCredential")
        check_properties(data, KEY_CREDENTIAL_PROPERTIES, "keyCredential")
        key_id = data.get("keyId")
        if key_id is not None:
            key_id = guid_property(key_id)
        stored = by_id.get(key_id) if key_id else None
        if stored is not None:
            if data.get("key") not in (None, "") and parse_binary(data["key"]) != stored.get("_der"):
                raise app_error("key_id_update")
            result.append(stored)
            continue
        result.append(new_key_credential(data, key_id))
    ids = [k["keyId"].lower() for k in result]
    if len(ids) != len(set(ids)):
        raise app_error("key_id_update")
    return result


def key_is_valid(credential: dict, now: float) -> bool:
    """Whether a certificate keyCredential is valid at sandbox time `now`."""
    if credential.get("type") != "AsymmetricX509Cert" or not credential.get("_der"):
        return False
    start = parse_datetime(credential["startDateTime"]).timestamp()
    end = parse_datetime(credential["endDateTime"]).timestamp()
    return start <= now < end


# -- application bodies --------------------------------------------------------------------------------

def _validate_required_resource_access(value) -> list:
    if not isinstance(value, list):
        raise graph_error("literal_invalid", literal=value, edm="Collection(microsoft.graph.requiredResourceAccess)")
    for item in value:
        if not isinstance(item, dict):
            raise graph_error("literal_invalid", literal=item, edm="microsoft.graph.requiredResourceAccess")
        check_properties(item, frozenset({"resourceAppId", "resourceAccess"}), "requiredResourceAccess")
        guid_property(item.get("resourceAppId"))
        for access in item.get("resourceAccess") or []:
            if not isinstance(access, dict):
                raise graph_error("literal_invalid", literal=access, edm="microsoft.graph.resourceAccess")
            check_properties(access, frozenset({"id", "type"}), "resourceAccess")
            guid_property(access.get("id"))
            if access.get("type") not in ("Role", "Scope"):
                raise graph_error("invalid_value", name="type", resource="ResourceAccess")
    return value


def apply_changes(tenant: Tenant, app: dict, body: dict, creating: bool) -> dict:
    """Validate `body` against `app` and return the updated copy (the caller stores it)."""
    check_properties(body, APPLICATION_PROPERTIES, "application")
    updated = dict(app)
    for name, value in body.items():
        if name.startswith("@") or "@odata." in name:
            continue
        if name in APPLICATION_READ_ONLY:
            if value != app.get(name):
                raise graph_error("read_only", name=name)
            continue
        if name == "uniqueName":
            if value is None or (app.get("uniqueName") or "").lower() == str(value).lower():
                continue
            if app.get("uniqueName") and not creating:
                raise app_error("unique_name_immutable")
            if not isinstance(value, str) or not value.strip():
                raise graph_error("invalid_value", name="uniqueName", resource="Application")
            other = tenant.application_by_unique_name(value)
            if other is not None and other["id"] != app.get("id"):
                raise app_error("unique_name_conflict")
            updated["uniqueName"] = value
        elif name == "displayName":
            # Entra limits displayName to 256 characters (resources/application "displayName").
            if not isinstance(value, str) or not value.strip() or len(value) > 256:
                raise graph_error("invalid_value", name="displayName", resource="Application")
            updated["displayName"] = value
        elif name == "signInAudience":
            if value not in SIGN_IN_AUDIENCES:
                raise graph_error("invalid_value", name="signInAudience", resource="Application")
            updated["signInAudience"] = value
        elif name == "keyCredentials":
            updated["keyCredentials"] = replace_key_credentials(app.get("keyCredentials", []), value)
        elif name == "passwordCredentials":
            current = [public(p) for p in app.get("passwordCredentials", [])]
            if value not in (None, []) and value != current:
                raise app_error("password_patch")
        elif name == "requiredResourceAccess":
            updated["requiredResourceAccess"] = _validate_required_resource_access(value)
        elif name in ("tags", "identifierUris") and not isinstance(value, list):
            raise graph_error("literal_invalid", literal=value, edm="Collection(Edm.String)")
        else:
            updated[name] = value
    return updated


def create_app(ctx: Ctx, body: dict, unique_name: str | None = None) -> dict:
    """Create an application from a POST/upsert body; the calling service principal becomes its owner."""
    tenant = ctx.tenant
    if unique_name is not None:
        if body.get("uniqueName") not in (None,) and str(body["uniqueName"]).lower() != unique_name.lower():
            raise app_error("unique_name_immutable")
        body = {**body, "uniqueName": unique_name}
    from .graph_deleted import unique_name_held
    if body.get("uniqueName") is not None and unique_name_held(ctx.world, tenant, str(body["uniqueName"])):
        raise graph_error("unique_name_held_by_deleted_app")  # microsoft.SOFT_DELETE_FACTS["unique_name"]
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        # application-upsert: "The request body must contain displayName, which is a required property."
        raise graph_error("invalid_value", name="displayName", resource="Application")
    template = {"id": None, "uniqueName": None, "keyCredentials": [], "passwordCredentials": []}
    updated = apply_changes(tenant, template, body, creating=True)
    enforce_key_lifetime(ctx, None, updated.get("keyCredentials", []))  # the tenant's app management policy
    fields = {k: v for k, v in updated.items() if k not in ("id",)}
    app = ctx.world.new_application(tenant, fields, owner_id=ctx.caller.object_id)
    return app


def _location(ctx: Ctx, app: dict) -> dict[str, str]:
    return {"Location": f"{ctx.base}/directoryObjects/{app['id']}/Microsoft.DirectoryServices.Application"}


# -- routes -------------------------------------------------------------------------------------------

@route("GET", r"/applications")
async def list_applications(ctx: Ctx) -> web.StreamResponse:
    """List applications. OwnedBy lists every application of the tenant (GRAPH_PERMISSIONS
    application.list note; techcommunity "Application.ReadWrite.OwnedBy: List all applications…")."""
    ctx.require("application.list")
    return list_response(ctx, list(ctx.tenant.applications.values()), APPLICATION, "applications",
                         serialize=serialize_app)


@route("POST", r"/applications")
async def create_application(ctx: Ctx) -> web.StreamResponse:
    """POST /applications → 201 (application-post-applications)."""
    ctx.require("application.create")
    body = await ctx.body()
    if body.get("uniqueName") is not None and ctx.tenant.application_by_unique_name(str(body["uniqueName"])):
        raise app_error("unique_name_conflict")
    app = create_app(ctx, body)
    return entity_response(ctx, app, APPLICATION, "applications", status=201, serialize=serialize_app,
                           headers=_location(ctx, app))


@route("GET", r"/applications" + APP_REF)
async def get_application(ctx: Ctx) -> web.StreamResponse:
    """GET one application; `key` bytes only with $select=keyCredentials (resources/keycredential)."""
    ctx.require("application.get")
    app = resolve_app(ctx)
    select = (ctx.query.get("select") or "").split(",")
    with_keys = "keyCredentials" in [s.strip() for s in select]
    return entity_response(ctx, app, APPLICATION, "applications",
                           serialize=lambda a: serialize_app(a, with_keys=with_keys))


@route("PATCH", r"/applications" + APP_REF)
async def patch_application(ctx: Ctx) -> web.StreamResponse:
    """Update (204), or upsert by uniqueName with Prefer: create-if-missing (201 created / 204 updated)."""
    body = await ctx.body()
    unique_name = unquote_literal(ctx.match.get("uniqueName"))
    prefer = [p.strip().lower() for p in ctx.request.headers.get("Prefer", "").split(",")]
    if unique_name is not None and ctx.tenant.application_by_unique_name(unique_name) is None:
        ctx.require("application.upsert")
        if "create-if-missing" not in prefer:
            raise graph_error("upsert_missing_without_prefer", uniqueName=unique_name)
        app = create_app(ctx, body, unique_name=unique_name)
        return entity_response(ctx, app, APPLICATION, "applications", status=201, serialize=serialize_app,
                               headers=_location(ctx, app))
    app = resolve_app(ctx)
    ctx.require("application.upsert" if unique_name is not None else "application.update",
                owned=ctx.owns(app["id"]))
    updated = apply_changes(ctx.tenant, app, body, creating=False)
    enforce_key_lifetime(ctx, app.get("createdDateTime"),
                         added_keys(app.get("keyCredentials", []), updated.get("keyCredentials", [])))
    app.clear()
    app.update(updated)
    return respond(ctx, None, status=204)


@route("DELETE", r"/applications" + APP_REF)
async def delete_application(ctx: Ctx) -> web.StreamResponse:
    """Soft-delete an application: it and its home-tenant service principal (with their assignments) move to
    /directory/deletedItems for 30 days (application-delete; graph_deleted)."""
    app = resolve_app(ctx)
    ctx.require("application.delete", owned=ctx.owns(app["id"]))
    from .graph_deleted import soft_delete_application
    soft_delete_application(ctx.world, ctx.tenant, app)
    return respond(ctx, None, status=204)


@route("GET", r"/applications" + APP_REF + r"/owners")
async def list_owners(ctx: Ctx) -> web.StreamResponse:
    """Owners as directoryObjects (application-list-owners)."""
    ctx.require("application.owners.list")
    app = resolve_app(ctx)
    owners = []
    for owner_id in sorted(ctx.tenant.owners.get(app["id"], set())):
        sp = ctx.tenant.service_principals.get(owner_id)
        if sp is not None:
            owners.append({"@odata.type": "#microsoft.graph.servicePrincipal", **public(sp)})
    from .graph_sps import SERVICE_PRINCIPAL
    return list_response(ctx, owners, SERVICE_PRINCIPAL, "directoryObjects")


# -- addKey / removeKey -------------------------------------------------------------------------------

def _proof_error(key: str = "proof_invalid") -> ServiceError:
    return graph_error(key)


def verify_proof(ctx: Ctx, app: dict, proof) -> dict:
    """Check a proof-of-possession JWT (application-rollkey-prooftoken); return the key that signed it."""
    if not isinstance(proof, str) or proof.count(".") != 2:
        raise _proof_error("proof_malformed")
    header_b64, payload_b64, _ = proof.split(".")
    if "=" in header_b64 or "=" in payload_b64:
        raise _proof_error("proof_malformed")  # "padding character '=' must not be included"
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.PyJWTError as exc:
        raise _proof_error("proof_malformed") from exc
    if header.get("alg") != "RS256":  # the documented sample (X509SigningCredentials) signs RS256
        raise _proof_error()
    now = ctx.world.clock.epoch()
    valid = [k for k in app.get("keyCredentials", []) if key_is_valid(k, now)]
    hints = {str(header.get(h, "")).rstrip("=").lower() for h in ("x5t", "x5t#S256", "kid") if header.get(h)}
    if hints:
        def names(k: dict) -> set[str]:
            sha1 = hashlib.sha1(k["_der"]).digest()
            sha256 = hashlib.sha256(k["_der"]).digest()
            return {b64url_nopad(sha1).lower(), b64url_nopad(sha256).lower(), sha1.hex(), k["keyId"].lower(),
                    (k.get("customKeyIdentifier") or "").rstrip("=").lower()}
        candidates = [k for k in valid if names(k) & hints]
    else:
        candidates = valid
    claims = None
    signer = None
    for credential in candidates:
        certificate = x509.load_der_x509_certificate(credential["_der"])
        try:
            claims = jwt.decode(proof, certificate.public_key(), algorithms=["RS256"],
                                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                         "verify_aud": False, "verify_iss": False})
            signer = credential
            break
        except jwt.PyJWTError:
            continue
    if claims is None or signer is None:
        raise _proof_error()
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if ms.ADDKEY_PROOF_AUDIENCE not in audiences:
        raise _proof_error()
    if str(claims.get("iss", "")).lower() != app["id"].lower():
        raise _proof_error()
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, (int, float)) or not isinstance(exp, (int, float)):
        raise _proof_error()
    if exp - nbf > ms.ADDKEY_PROOF_MAX_LIFETIME_SECONDS or exp <= nbf:
        raise _proof_error()
    # Five minutes of skew on nbf, as Entra allows on client assertions; none on exp.
    if now + 300 < nbf or now >= exp:
        raise _proof_error()
    return signer


def _authorise_key_roll(ctx: Ctx, app: dict, operation: str) -> None:
    """"An application does not need any specific permission to roll its own keys." Others need the
    operation's permissions (OwnedBy only on apps they own)."""
    self_call = ctx.caller.app_id.lower() == app["appId"].lower()
    ctx.require(operation, owned=ctx.owns(app["id"]), self_service=self_call)


@route("POST", r"/applications" + APP_REF + r"/addKey")
async def add_key(ctx: Ctx) -> web.StreamResponse:
    """addKey: 200 + the new keyCredential (application-addkey)."""
    app = resolve_app(ctx)
    _authorise_key_roll(ctx, app, "application.addKey")
    body = await ctx.body()
    check_properties(body, frozenset({"keyCredential", "passwordCredential", "proof"}), "addKeyRequestBody")
    now = ctx.world.clock.epoch()
    if not any(key_is_valid(k, now) for k in app.get("keyCredentials", [])):
        raise graph_error("no_valid_certificate_for_proof")
    verify_proof(ctx, app, body.get("proof"))
    if body.get("keyCredential") is None:
        raise graph_error("key_value_empty")
    password = body.get("passwordCredential")
    # "Only secretText is required … required only for keys of type X509CertAndPassword. Set it to null
    # otherwise." (application-addkey). The sandbox accepts AsymmetricX509Cert only, so it must be null.
    if password not in (None, {}) and (not isinstance(password, dict) or password.get("secretText")):
        raise graph_error("invalid_value", name="passwordCredential", resource="Application")
    data = dict(body["keyCredential"]) if isinstance(body["keyCredential"], dict) else body["keyCredential"]
    if isinstance(data, dict):
        data.pop("keyId", None)  # a new key always gets a new keyId
    credential = new_key_credential(data)
    enforce_key_lifetime(ctx, app.get("createdDateTime"), [credential])
    app["keyCredentials"] = [*app.get("keyCredentials", []), credential]
    out = {"@odata.context": ctx.context_url("microsoft.graph.keyCredential"), **serialize_key(credential)}
    return respond(ctx, out, status=200)


@route("POST", r"/applications" + APP_REF + r"/removeKey")
async def remove_key(ctx: Ctx) -> web.StreamResponse:
    """removeKey: 204 (application-removekey). The docs do not forbid removing the key that signed the proof."""
    app = resolve_app(ctx)
    _authorise_key_roll(ctx, app, "application.removeKey")
    body = await ctx.body()
    check_properties(body, frozenset({"keyId", "proof"}), "removeKeyRequestBody")
    key_id = guid_property(body.get("keyId"))
    now = ctx.world.clock.epoch()
    if not any(key_is_valid(k, now) for k in app.get("keyCredentials", [])):
        raise graph_error("no_valid_certificate_for_proof")
    verify_proof(ctx, app, body.get("proof"))
    keys = app.get("keyCredentials", [])
    remaining = [k for k in keys if k["keyId"].lower() != key_id]
    if len(remaining) == len(keys):
        raise not_found(key_id)
    app["keyCredentials"] = remaining
    return respond(ctx, None, status=204)


__all__ = ["APPLICATION", "is_guid", "key_is_valid", "resolve_app", "serialize_app"]
