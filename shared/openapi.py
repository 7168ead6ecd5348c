"""Both API descriptions, generated from one route table and the pydantic models (nothing written twice):

- :func:`openapi_document`: OpenAPI 3.1 (JSON Schema 2020-12, as pydantic writes it) for people and tools;
- :func:`swagger_document`: OpenAPI 2.0 for a Logic Apps / Power Platform custom connector, which imports 2.0 only
  ("OpenAPI definitions that are in OpenAPI 3.0 format are not supported"; microsoft/powerplatform-developerhub
  docs/custom-connectors/define-openapi-definition.md, faq.md): `x-ms-summary` / `x-ms-visibility` for the designer
  (openapi-extensions.md), one `apiKey` security definition (the function key header), no `anyOf` / `oneOf`
  (a nullable field is `x-nullable`), no body on a GET, a unique `operationId` on every operation.

:data:`OPERATIONS` is the route table: one entry per HTTP operation the app registers (a test compares it with
function_app.app's routes, methods and auth levels). Request bodies are the models the routes validate with
(shared/models.py, shared/links.py) or, for a route that parses by hand, the model in shared/contracts.py that
describes it; response bodies are shared/contracts.py's. Regenerate the connector file with
``python -m shared.openapi swagger > infra/logic-apps/certauth.connector.swagger.json`` (the placeholder host the
checked-in file carries; ``--base-url https://<app>.azurewebsites.net`` names yours).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import contracts
from .contracts import LIFECYCLE, ONBOARDING_ID_PATTERN
from .models import GUID_PATTERN, OnboardingRequest
from .rules import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE  # the list routes' paging (functions/operators.py reads them)

TITLE = "certauth"
API_VERSION = "1.0"
DESCRIPTION = ("Certificate-based authorization for Microsoft 365: onboard a tenant's app registration with a Key "
               "Vault certificate, follow it as a long-running operation, list onboardings and tracked "
               "certificates, rotate and offboard.")
# The host the checked-in connector file names (the README says to set your own before or after importing).
PLACEHOLDER_BASE_URL = "https://your-function-app.azurewebsites.net"
ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix (the default)

JSON = "application/json"
HTML = "text/html"
TEXT = "text/plain"
PKCS10 = "application/pkcs10"
PEM = "application/x-pem-file"
DER = "application/pkix-cert"
OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Body:
    """A request or response body: a model (JSON), or text / bytes of the media types."""

    model: type | None = None
    media: tuple[str, ...] = (JSON,)
    binary: bool = False
    description: str = ""


@dataclass(frozen=True)
class Answer:
    """One documented response."""

    description: str
    body: Body | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter; `schema` is JSON Schema of a scalar."""

    name: str
    where: str
    summary: str
    description: str = ""
    required: bool = False
    schema: dict = field(default_factory=lambda: {"type": "string"})
    visibility: str | None = None


@dataclass(frozen=True)
class Operation:
    """One HTTP operation: `route` as the blueprint registers it (no /api prefix)."""

    method: str
    route: str
    operation_id: str
    summary: str
    description: str
    tag: str
    auth: str  # "function" (x-functions-key) or "anonymous" (its own token or signature, or none)
    answers: dict[int, Answer]
    params: tuple[Param, ...] = ()
    body: Body | None = None
    body_required: bool = True
    visibility: str = "important"
    pageable: bool = False
    starts_work: bool = False  # starts, joins or signals an orchestration (the contract tests cap its examples)


HEADERS = {
    "Location": ({"type": "string", "format": "uri"}, "where to poll: the tokenised status URL (no header needed)"),
    "Retry-After": ({"type": "integer"}, "seconds to wait before polling Location again"),
    "x-ms-error-code": ({"type": "string"}, "the error code, as in the body's error.code"),
}


def _error(description: str) -> Answer:
    return Answer(description, Body(contracts.AzureError), ("x-ms-error-code",))


def _page(description: str) -> Answer:
    return Answer(description, Body(media=(HTML,)))


UNAUTHORIZED = Answer("no function key, or not a valid one (the Functions host answers, without a body)")
BAD_ID = _error("the id is not an onboarding id, or a parameter or the body breaks a rule (one detail per problem)")
NOT_FOUND = _error("no such onboarding")
FORBIDDEN_TOKEN = _error("the status token is missing, expired or not for this onboarding (AuthorizationFailed)")
ID = Param("id", "path", "Onboarding id", "the onboarding id (tenant id, a dot, 20 hex digits)", required=True,
           schema={"type": "string", "pattern": ONBOARDING_ID_PATTERN})
TOKEN = Param("token", "query", "Status token", "the read-only token of the status URL a 202 returned",
              required=True, visibility="internal")
# Durable's switch: "true" (any case) turns it on; any other value leaves it off, as the extension reads it.
FAIL_SWITCH = Param("returnInternalServerErrorOnFailure", "query", "500 on failure",
                    "true: a failed or expired onboarding answers 500 in Azure's error shape (Durable's switch; any "
                    "other value: off)", visibility="advanced")
TOP = Param("top", "query", "Page size", f"how many per page (default {DEFAULT_PAGE_SIZE})",
            schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}, visibility="advanced")
CONTINUATION = Param("continuationToken", "query", "Continuation token", "from a nextLink", visibility="internal")
STATUS_HEADERS = ("Location", "Retry-After")
PERMANENT = Param("permanent", "query", "Permanently", "true: also empty Graph's deleted items and purge the "
                  "certificate where the vault allows it", schema={"type": "string", "enum": ["true", "false"]},
                  visibility="advanced")


def _status_answers(anonymous: bool) -> dict[int, Answer]:
    status = Body(contracts.OnboardingStatus)
    answers = {
        200: Answer("the onboarding ended: completed, retired, failed or expired (see status)", status),
        202: Answer("the onboarding can still progress: poll Location after Retry-After seconds", status,
                    STATUS_HEADERS),
        404: NOT_FOUND,
        500: _error("with returnInternalServerErrorOnFailure=true: the onboarding failed or expired (OnboardingFailed,"
                    " the status body in error.innererror.onboarding)"),
    }
    answers.update({403: FORBIDDEN_TOKEN} if anonymous else {400: BAD_ID, 401: UNAUTHORIZED})
    return dict(sorted(answers.items()))


ONBOARDINGS, MANUAL, CUSTOMER_CA, ROTATION, MONITOR, LINKS, OFFBOARDING, DESCRIPTIONS = (
    "Onboarding", "Manual method", "Customer CA", "Rotation", "Expiry monitor", "Onboarding links", "Offboarding",
    "API descriptions")

# The route table: one entry per operation. Add a route here when a blueprint registers it (the route test says
# which are missing).
OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "onboardings", "StartOnboarding", "Start an onboarding",
              "Starts (or joins) the onboarding of a tenant and service mailbox: certificate, app registration, "
              "service principal, admin consent, directory role, token proof. Answers 202 with the status URL "
              "(Location) that Logic Apps' HTTP action polls until the onboarding ends.", ONBOARDINGS, "function",
              {202: Answer("accepted: poll Location (or statusQueryGetUri)", Body(contracts.OnboardingAccepted),
                           STATUS_HEADERS),
               400: _error("the body breaks a rule: one detail per field, target the field, message the rule"),
               401: UNAUTHORIZED,
               409: _error("a run with other options is active, the other method holds the pair, a rotation runs, "
                           "or certificate options need a rotation")},
              params=(FAIL_SWITCH,), body=Body(OnboardingRequest), starts_work=True),
    Operation("GET", "onboardings", "ListOnboardings", "List onboardings",
              "The onboardings, optionally of one tenant and in one recorded status, a page at a time.", ONBOARDINGS,
              "function",
              {200: Answer("a page of onboardings", Body(contracts.OnboardingsPage)), 400: BAD_ID,
               401: UNAUTHORIZED},
              params=(Param("tenantId", "query", "Tenant id", "only this tenant's onboardings",
                            schema={"type": "string", "pattern": GUID_PATTERN}),
                      Param("status", "query", "Status", "only onboardings recorded in this lifecycle status",
                            schema={"type": "string", "enum": list(LIFECYCLE)}),
                      TOP, CONTINUATION),
              pageable=True),
    Operation("GET", "onboardings/{id}", "GetOnboarding", "Get an onboarding's status",
              "The status of one onboarding for operators: lifecycle and runtime status, steps, what exists, the "
              "error and what to do.", ONBOARDINGS, "function", _status_answers(anonymous=False),
              params=(ID, FAIL_SWITCH)),
    Operation("GET", "onboardings/{id}/status", "GetOnboardingStatusByToken", "Poll an onboarding (status URL)",
              "The status URL every 202 returns: anonymous, authorised by its read-only token. Logic Apps' HTTP "
              "action polls it by itself.", ONBOARDINGS, "anonymous", _status_answers(anonymous=True),
              params=(ID, TOKEN, FAIL_SWITCH), visibility="internal"),
    Operation("GET", "onboardings/{id}/audit", "GetOnboardingAudit", "Get an onboarding's audit trail",
              "What happened to one onboarding, oldest first: each step's outcome, alerts, rotations.", ONBOARDINGS,
              "function", {200: Answer("the audit trail", Body(contracts.AuditTrail)), 400: BAD_ID,
                           401: UNAUTHORIZED, 404: NOT_FOUND},
              params=(ID,), visibility="advanced"),
    Operation("GET", "onboardings/{id}/script", "GetOnboardingScript", "Get the manual method's script",
              "The PowerShell script the tenant's Global Administrator runs (UTF-8 with a BOM).", MANUAL, "function",
              {200: Answer("the script", Body(media=(TEXT,))), 400: BAD_ID, 401: UNAUTHORIZED, 404: NOT_FOUND,
               409: _error("not a manual onboarding, or its certificate is not ready yet")},
              params=(ID,), visibility="advanced"),
    Operation("POST", "onboardings/{id}/verify", "VerifyOnboarding", "Verify a manual onboarding now",
              "The administrator ran the script: verify now (read-only). Answers 202 with the status URL.", MANUAL,
              "function",
              {202: Answer("verification requested: poll Location", Body(contracts.OnboardingAccepted),
                           STATUS_HEADERS),
               400: BAD_ID, 401: UNAUTHORIZED, 404: NOT_FOUND,
               409: _error("not a manual onboarding, or it is not waiting for the administrator")},
              params=(ID,), visibility="advanced", starts_work=True),
    Operation("GET", "onboardings/{id}/csr", "GetOnboardingCsr", "Get the CSR for the customer's CA",
              "The certificate signing request of Key Vault's key, as PEM.", CUSTOMER_CA, "function",
              {200: Answer("the CSR (PEM)", Body(media=(PKCS10,))), 400: BAD_ID, 401: UNAUTHORIZED,
               409: _error("no CSR waits for a certificate (NoCertificateExpected)")},
              params=(ID,), visibility="advanced"),
    Operation("POST", "onboardings/{id}/certificate", "UploadOnboardingCertificate",
              "Upload the certificate the customer's CA signed",
              "PEM (optionally with its chain) or DER; its public key must be the CSR's. Answers 202 with the "
              "status URL.", CUSTOMER_CA, "function",
              {202: Answer("merged: the onboarding goes on; poll Location", Body(contracts.CertificateMerged),
                           STATUS_HEADERS),
               400: _error("not a certificate, too large, or not for the CSR's key"), 401: UNAUTHORIZED,
               409: _error("no CSR waits for a certificate (NoCertificateExpected)")},
              params=(ID,), body=Body(media=(PEM, DER, OCTETS), binary=True,
                                      description="the signed certificate: PEM or DER"),
              visibility="advanced", starts_work=True),
    Operation("POST", "onboardings/{id}/rotate", "RotateOnboardingCertificate", "Rotate the certificate now",
              "Starts (or joins) the rotation of a completed onboarding's certificate, optionally with new "
              "certificate options. Answers 202 with the rotation's own status URL.", ROTATION, "function",
              {202: Answer("rotation started: poll Location", Body(contracts.RotationAccepted), STATUS_HEADERS),
               400: _error("an option breaks a rule"), 401: UNAUTHORIZED,
               404: _error("no such onboarding (OnboardingNotFound)"),
               409: _error("the onboarding is running or not completed, or a rotation is running")},
              params=(ID,), body=Body(contracts.RotationRequest), body_required=False, visibility="advanced",
              starts_work=True),
    Operation("GET", "onboardings/{id}/rotation", "GetRotationStatus", "Poll a rotation (status URL)",
              "The rotation's status URL: anonymous, authorised by its read-only token.", ROTATION, "anonymous",
              {200: Answer("the rotation ended", Body(contracts.RotationStatus)),
               202: Answer("the rotation runs: poll Location after Retry-After seconds",
                           Body(contracts.RotationStatus), STATUS_HEADERS),
               403: FORBIDDEN_TOKEN, 404: _error("this onboarding has no rotation (RotationNotFound)")},
              params=(ID, TOKEN), visibility="internal"),
    Operation("GET", "onboardings/{id}/view", "ViewOnboarding", "The progress page",
              "The progress page for people (anonymous, authorised by the status token): the steps, the manual "
              "method's script and verify button, the result or what to do.", ONBOARDINGS, "anonymous",
              {200: Answer("the page", Body(media=(HTML,))), 403: _page("the token is not valid for this onboarding"),
               404: _page("no such onboarding")},
              params=(ID, TOKEN), visibility="internal"),
    Operation("GET", "onboardings/{id}/view/script", "ViewOnboardingScript", "The script, from the progress page",
              "The manual method's script for the administrator (anonymous, authorised by the status token).",
              MANUAL, "anonymous",
              {200: Answer("the script", Body(media=(TEXT,))),
               403: _page("the token is not valid for this onboarding"), 404: _page("no such onboarding"),
               409: _page("not a manual onboarding, or the script is not ready yet")},
              params=(ID, TOKEN), visibility="internal"),
    Operation("POST", "onboardings/{id}/view/verify", "ViewOnboardingVerify", "Verify, from the progress page",
              "The progress page's verify button (anonymous, authorised by the status token): back to the page.",
              MANUAL, "anonymous",
              {303: Answer("verification requested: back to the progress page", headers=("Location",)),
               403: _page("the token is not valid for this onboarding"), 404: _page("no such onboarding"),
               409: _page("not a manual onboarding, or it is not waiting for the administrator")},
              params=(ID, TOKEN), visibility="internal", starts_work=True),
    Operation("DELETE", "onboardings/{id}", "OffboardOnboarding", "Offboard",
              "Removes what the onboarding set up (directory role, app role assignments, service principal, "
              "application, Key Vault certificate: soft-deleted) and retires the records. Answers 202 with the "
              "offboarding's own status URL; a second DELETE reports the earlier result.", OFFBOARDING, "function",
              {200: Answer("already offboarded: the earlier result", Body(contracts.OffboardingStatus)),
               202: Answer("offboarding started: poll Location", Body(contracts.OffboardingAccepted),
                           STATUS_HEADERS),
               400: BAD_ID, 401: UNAUTHORIZED, 404: _error("no such onboarding (OnboardingNotFound)"),
               409: _error("an onboarding, rotation or other offboarding of the pair is active")},
              params=(ID, PERMANENT), visibility="advanced", starts_work=True),
    Operation("GET", "onboardings/{id}/offboarding", "GetOffboardingStatus", "Poll an offboarding (status URL)",
              "The offboarding's status URL: anonymous, authorised by its read-only token.", OFFBOARDING,
              "anonymous",
              {200: Answer("the offboarding ended", Body(contracts.OffboardingStatus)),
               202: Answer("the offboarding runs or waits for the administrator: poll Location",
                           Body(contracts.OffboardingStatus), STATUS_HEADERS),
               403: FORBIDDEN_TOKEN, 404: _error("this onboarding has no offboarding (OffboardingNotFound)"),
               500: _error("with returnInternalServerErrorOnFailure=true: the offboarding failed or expired")},
              params=(ID, TOKEN, FAIL_SWITCH), visibility="internal"),
    Operation("GET", "onboardings/{id}/removal-script", "GetRemovalScript", "Get the manual method's removal script",
              "The PowerShell script that removes a manual onboarding's app (UTF-8 with a BOM).", OFFBOARDING,
              "function",
              {200: Answer("the script", Body(media=(TEXT,))), 400: BAD_ID, 401: UNAUTHORIZED,
               404: _error("no such onboarding (OnboardingNotFound)"), 409: _error("not a manual onboarding")},
              params=(ID, PERMANENT), visibility="advanced"),
    Operation("POST", "onboardings/{id}/verify-removal", "VerifyRemoval", "Verify a manual removal now",
              "The administrator ran the removal script: verify now (read-only). Answers 202 with the "
              "offboarding's status URL.", OFFBOARDING, "function",
              {202: Answer("verification requested: poll Location", Body(contracts.OffboardingAccepted),
                           STATUS_HEADERS),
               400: BAD_ID, 401: UNAUTHORIZED, 404: _error("no such onboarding (OnboardingNotFound)"),
               409: _error("not a manual onboarding, or its offboarding is not waiting for the administrator")},
              params=(ID,), visibility="advanced", starts_work=True),
    Operation("GET", "expiry-runs/latest", "GetLatestExpiryRun", "Get the latest expiry run",
              "When the expiry monitor last ran and what it sent and started.", MONITOR, "function",
              {200: Answer("the latest run", Body(contracts.ExpiryRun)), 401: UNAUTHORIZED,
               404: _error("the expiry monitor has not run yet")}),
    Operation("GET", "certificates", "ListCertificates", "List tracked certificates",
              "The certificates certauth tracks, optionally only those expiring within N days, a page at a time.",
              MONITOR, "function",
              {200: Answer("a page of certificates", Body(contracts.CertificatesPage)), 400: BAD_ID,
               401: UNAUTHORIZED},
              params=(Param("expiringWithinDays", "query", "Expiring within (days)",
                            "only certificates whose notAfter is within this many days",
                            schema={"type": "integer", "minimum": 0, "maximum": 3650}),
                      TOP, CONTINUATION),
              pageable=True),
    Operation("POST", "onboarding-links", "CreateOnboardingLink", "Create an onboarding link",
              "A signed, expiring link for a tenant's administrator: it leads to Microsoft's admin-consent page, "
              "then starts the onboarding. Needs CERTAUTH_PUBLIC_BASE_URL.", LINKS, "function",
              {201: Answer("the link", Body(contracts.OnboardingLinkCreated)),
               400: _error("the body breaks a rule (a PFX or password is never allowed in a link)"),
               401: UNAUTHORIZED},
              body=Body(contracts.OnboardingLinkRequest)),
    Operation("GET", "onboard", "OpenOnboardingLink", "Open an onboarding link",
              "The link itself (anonymous, protected by its signature): redirects to Microsoft's admin-consent "
              "page with a signed, single-use state.", LINKS, "anonymous",
              {302: Answer("to Microsoft's admin-consent page", Body(media=(HTML,)), ("Location",)),
               400: _page("the link asks for something this deployment does not accept"),
               403: _page("forged, altered or expired: nothing was started")},
              params=(*(Param(name, "query", name, "as the link was signed") for name in (
                  "tenantId", "serviceMailbox", "method", "permissionProfile", "directoryRole", "validityMonths",
                  "keySize", "exportable", "issuer")),
                      Param("sig", "query", "Signature", "the link's signature", required=True)),
              visibility="internal"),
    Operation("GET", "onboard/callback", "CompleteOnboardingConsent", "Admin-consent landing",
              "Where Microsoft's admin consent returns (anonymous, protected by the signed single-use state): "
              "checks the consent with an app-only token in the tenant, starts the onboarding and redirects to "
              "the progress page.", LINKS, "anonymous",
              {200: _page("the verifier's consent is recorded"),
               303: Answer("the onboarding started: to the progress page", Body(media=(HTML,)), ("Location",)),
               400: _page("not an answer from Microsoft, or one that cannot be used"),
               403: _page("consent declined, from another tenant, not visible yet, or a state that is not ours"),
               409: _page("this state was used already: links to the progress page")},
              params=tuple(Param(name, "query", name, "as Microsoft's admin consent redirects") for name in (
                  "admin_consent", "tenant", "scope", "state", "error", "error_description")),
              visibility="internal"),
    Operation("GET", "openapi.json", "GetOpenApiDescription", "This API in OpenAPI 3.1",
              "This description (anonymous: it holds no secret, and importers fetch it without headers).",
              DESCRIPTIONS, "anonymous", {200: Answer("OpenAPI 3.1", Body(dict))}, visibility="internal"),
    Operation("GET", "swagger.json", "GetSwaggerDescription", "This API in OpenAPI 2.0 (custom connector)",
              "This API in OpenAPI 2.0, for a Logic Apps / Power Platform custom connector (anonymous, as "
              "import from URL fetches it without headers).", DESCRIPTIONS, "anonymous",
              {200: Answer("OpenAPI 2.0", Body(dict))}, visibility="internal"),
)


# -- JSON Schema from the models ---------------------------------------------------------------------------------

def _models() -> list[tuple[type, str]]:
    """(model, mode) of every body: requests validate, responses serialize."""
    seen: dict[tuple[type, str], None] = {}
    for operation in OPERATIONS:
        if operation.body is not None and _is_model(operation.body.model):
            seen[(operation.body.model, "validation")] = None
        for answer in operation.answers.values():
            if answer.body is not None and _is_model(answer.body.model):
                seen[(answer.body.model, "serialization")] = None
    return list(seen)


def _is_model(model) -> bool:
    return isinstance(model, type) and hasattr(model, "model_json_schema")


@functools.lru_cache(maxsize=2)
def _schemas(ref_prefix: str) -> tuple[dict, dict]:
    """The models' JSON Schema: ({(model, mode): schema of the body}, {name: definition})."""
    from pydantic.json_schema import models_json_schema

    models = _models()
    keys, document = models_json_schema(models, ref_template=ref_prefix + "{model}", by_alias=True)
    definitions = document.get("$defs", {})
    return {key: keys[key] for key in models}, definitions


def _described(model, mode: str, ref_prefix: str) -> dict:
    if model is dict:
        return {"type": "object"}
    return _schemas(ref_prefix)[0][(model, mode)]


def _tidy(schema):
    """Drop pydantic's mechanical titles of properties (the field's name again); recurse."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "properties":
                out[key] = {name: {k: _tidy(v) for k, v in prop.items() if k != "title"}
                            for name, prop in value.items()}
            else:
                out[key] = _tidy(value)
        return out
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema


# -- OpenAPI 3.1 -------------------------------------------------------------------------------------------------

def _api_base(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{ROUTE_PREFIX}"


def _path(route: str) -> str:
    return "/" + route.strip("/")


def _media_schema(body: Body, ref_prefix: str, mode: str) -> dict:
    if body.model is not None:
        return _described(body.model, mode, ref_prefix)
    return {"type": "string", **({"format": "binary"} if body.binary else {})}


def _extensions(operation: Operation) -> dict:
    out = {"x-ms-visibility": operation.visibility}
    if operation.pageable:
        out["x-ms-pageable"] = {"nextLinkName": "nextLink"}
    return out


def openapi_document(base_url: str = PLACEHOLDER_BASE_URL) -> dict:
    """OpenAPI 3.1 of every route, served under `base_url`."""
    ref = "#/components/schemas/"
    paths: dict[str, dict] = {}
    for operation in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": operation.operation_id, "summary": operation.summary,
            "description": operation.description, "tags": [operation.tag], **_extensions(operation),
        }
        if operation.params:
            entry["parameters"] = [{
                "name": p.name, "in": p.where, "required": p.required or p.where == "path",
                "description": p.description or p.summary, "schema": dict(p.schema),
                **({"x-ms-visibility": p.visibility} if p.visibility else {}),
            } for p in operation.params]
        if operation.body is not None:
            entry["requestBody"] = {
                "required": operation.body_required,
                "content": {media: {"schema": _media_schema(operation.body, ref, "validation")}
                            for media in operation.body.media},
                **({"description": operation.body.description} if operation.body.description else {}),
            }
        responses = {}
        for code, answer in operation.answers.items():
            response: dict[str, Any] = {"description": answer.description}
            if answer.headers:
                response["headers"] = {name: {"description": HEADERS[name][1], "schema": dict(HEADERS[name][0])}
                                       for name in answer.headers}
            if answer.body is not None:
                response["content"] = {media: {"schema": _media_schema(answer.body, ref, "serialization")}
                                       for media in answer.body.media}
            responses[str(code)] = response
        entry["responses"] = responses
        entry["security"] = [] if operation.auth == "anonymous" else [{"functionKey": []}, {"functionKeyQuery": []}]
        paths.setdefault(_path(operation.route), {})[operation.method.lower()] = entry
    return _tidy({
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": API_VERSION, "description": DESCRIPTION},
        "servers": [{"url": _api_base(base_url)}],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(_schemas(ref)[1]),
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                "description": "a function key of the Function App"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code",
                                     "description": "the same key as the code query parameter"},
            },
        },
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
    })


# -- OpenAPI 2.0 (custom connectors) -----------------------------------------------------------------------------

class NotForConnectors(ValueError):
    """A model needs something OpenAPI 2.0 / the connector designer cannot express (a union of two types)."""


def _summary(name: str) -> str:
    """x-ms-summary of a property: its camelCase name in words (serviceMailbox -> Service mailbox)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def to_swagger_schema(schema, *, nested_in: str = ""):
    """JSON Schema 2020-12 (pydantic) -> an OpenAPI 2.0 Schema Object: refs to #/definitions, nullable types as
    x-nullable, const as a one-value enum, no anyOf / oneOf; properties get x-ms-summary."""
    if isinstance(schema, list):
        return [to_swagger_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    nullable = False
    for union in ("anyOf", "oneOf"):
        if union in schema:
            every = schema.pop(union)
            branches = [branch for branch in every if branch != {"type": "null"}]
            nullable = nullable or len(branches) < len(every)
            if len(branches) != 1:
                raise NotForConnectors(f"{nested_in or 'a schema'}: a union of {len(branches)} types")
            schema = {**branches[0], **schema}
    if isinstance(schema.get("type"), list):
        types = [t for t in schema["type"] if t != "null"]
        nullable = nullable or len(types) < len(schema["type"])
        if len(types) != 1:
            raise NotForConnectors(f"{nested_in or 'a schema'}: several types {schema['type']}")
        schema["type"] = types[0]
    if "$ref" in schema:
        # AutoRest's form: a nullable reference is the $ref with x-nullable beside it.
        return {"$ref": schema["$ref"].replace("#/$defs/", "#/definitions/"), **({"x-nullable": True} if nullable
                                                                                  else {})}
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "examples" in schema:
        examples = schema.pop("examples")
        if examples:
            schema["example"] = examples[0]
    if isinstance(schema.get("exclusiveMinimum"), int | float) and not isinstance(schema["exclusiveMinimum"], bool):
        schema["minimum"], schema["exclusiveMinimum"] = schema["exclusiveMinimum"], True
    if isinstance(schema.get("exclusiveMaximum"), int | float) and not isinstance(schema["exclusiveMaximum"], bool):
        schema["maximum"], schema["exclusiveMaximum"] = schema["exclusiveMaximum"], True
    if schema.get("default", 0) is None:
        del schema["default"]
    if "enum" in schema:
        schema["enum"] = [value for value in schema["enum"] if value is not None]
    if "properties" in schema:
        schema["properties"] = {name: {**to_swagger_schema(prop, nested_in=name), "x-ms-summary": _summary(name)}
                                if "$ref" not in prop else to_swagger_schema(prop, nested_in=name)
                                for name, prop in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = to_swagger_schema(schema[key], nested_in=nested_in)
    for key in ("$defs", "prefixItems", "contentMediaType", "discriminator", "$schema"):
        schema.pop(key, None)
    if nullable:
        schema["x-nullable"] = True
    return schema


def _swagger_param(param: Param) -> dict:
    out = {"name": param.name, "in": param.where, "required": param.required or param.where == "path",
           "description": param.description or param.summary, "x-ms-summary": param.summary}
    out.update({k: v for k, v in param.schema.items() if k in ("type", "format", "enum", "pattern", "minimum",
                                                                 "maximum", "default")})
    if param.visibility:
        out["x-ms-visibility"] = param.visibility
    return out


def _swagger_body_schema(body: Body) -> dict:
    if body.model is not None:
        return to_swagger_schema(_described(body.model, "serialization", "#/$defs/"))
    return {"type": "string", **({"format": "binary"} if body.binary else {})}


def swagger_document(base_url: str = PLACEHOLDER_BASE_URL) -> dict:
    """OpenAPI 2.0 of every route, served under `base_url`, following the custom connector rules."""
    parts = urlsplit(base_url.rstrip("/"))
    paths: dict[str, dict] = {}
    for operation in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": operation.operation_id, "summary": operation.summary,
            "description": operation.description, "tags": [operation.tag], **_extensions(operation),
        }
        parameters = [_swagger_param(p) for p in operation.params]
        if operation.body is not None:
            if operation.method == "GET":
                raise NotForConnectors(f"{operation.operation_id}: a GET carries no body")
            model_body = operation.body.model is not None
            parameters.append({
                "name": "body", "in": "body", "required": operation.body_required,
                "description": operation.body.description or "the request", "x-ms-summary": "Body",
                "schema": (to_swagger_schema(_described(operation.body.model, "validation", "#/$defs/"))
                           if model_body else _swagger_body_schema(operation.body)),
            })
            entry["consumes"] = list(operation.body.media)
        elif operation.method in ("POST", "PUT", "PATCH"):
            entry["consumes"] = [JSON]  # no body needed; one sent is JSON
        if parameters:
            entry["parameters"] = parameters
        produces: list[str] = []
        responses = {}
        for code, answer in operation.answers.items():
            response: dict[str, Any] = {"description": answer.description}
            if answer.headers:
                response["headers"] = {name: {**HEADERS[name][0], "description": HEADERS[name][1]}
                                       for name in answer.headers}
            if answer.body is not None:
                response["schema"] = _swagger_body_schema(answer.body)
                produces.extend(m for m in answer.body.media if m not in produces)
            responses[str(code)] = response
        if produces:
            entry["produces"] = produces
        entry["responses"] = responses
        entry["security"] = [] if operation.auth == "anonymous" else [{"functionKey": []}]
        paths.setdefault(_path(operation.route), {})[operation.method.lower()] = entry
    definitions = {name: to_swagger_schema(schema, nested_in=name)
                   for name, schema in _schemas("#/$defs/")[1].items()}
    return _tidy({
        "swagger": "2.0",
        "info": {"title": TITLE, "version": API_VERSION, "description": DESCRIPTION},
        "host": parts.netloc,
        "basePath": (parts.path.rstrip("/") + "/" + ROUTE_PREFIX),
        "schemes": [parts.scheme or "https"],
        "consumes": [JSON],
        "produces": [JSON],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                                "description": "a function key of the Function App"}},
        "security": [{"functionKey": []}],
        # checkov reads the connector file (infra/): what it flags here is by design, said where it reads it.
        "x-checkov-skips": [
            "checkov:skip=CKV_OPENAPI_5:the anonymous operations (onboarding link, consent callback, progress page, "
            "status URLs, the descriptions) are protected by their own signature or token, not the function key",
            "checkov:skip=CKV_OPENAPI_21:an audit trail is one onboarding's events; the lists that grow page "
            "(top, nextLink)",
        ],
    })


def dumps(document: dict) -> str:
    """The file form: sorted keys off (the table's order reads best), two-space indent, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """python -m shared.openapi {swagger|openapi} [--base-url URL]: print a description."""
    parser = argparse.ArgumentParser(prog="python -m shared.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("swagger", "openapi"))
    parser.add_argument("--base-url", default=PLACEHOLDER_BASE_URL,
                        help=f"the Function App's public root (default: {PLACEHOLDER_BASE_URL})")
    args = parser.parse_args(argv)
    build = swagger_document if args.kind == "swagger" else openapi_document
    sys.stdout.write(dumps(build(args.base_url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
