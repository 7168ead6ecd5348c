"""What the HTTP API answers (and the bodies of routes that parse by hand), as pydantic models, defined once.

The routes build these bodies as plain dicts (functions/*.py); the models here describe them, and shared/openapi.py
turns them into both API descriptions. The contract tests (tests/contract) check every answer against the
descriptions, so a body and its model cannot drift apart silently. Response models allow extra properties (a new
field is not a breaking change for a client); request models forbid them, as the routes do.

Field names are the wire's camelCase (aliases); ``populate_by_name`` lets tests build them either way.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .links import MAX_LINK_HOURS, SECRET_FIELDS
from .models import MAX_VALIDITY_MONTHS, CertificateOptions, LinkRequest
from .rules import LIFECYCLE, ONBOARDING_ID_PATTERN  # noqa: F401  (re-exported)

# rules.LIFECYCLE as a type: the product's lifecycle word (`status`).
Lifecycle = Literal["pending", "running", "waitingForAdmin", "waitingForCertificate", "needsAttention", "completed",
                    "failed", "expired", "retired"]
# Durable Functions' runtime status (OrchestrationRuntimeStatus), null when the instance is unknown (purged).
RuntimeStatus = Literal["Pending", "Running", "Suspended", "ContinuedAsNew", "Completed", "Failed", "Terminated",
                        "Canceled"]


class _Answer(BaseModel):
    """A response body: open to new properties."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- Azure's error shape (functions/api.py azure_error, validation_error) ------------------------------------------

class ErrorDetail(_Answer):
    """One problem: for a 400, `target` is the field (camelCase path) and `message` the rule it broke."""

    code: str
    target: str | None = None
    message: str


class ErrorBody(_Answer):
    """Azure's error object (Microsoft REST API guidelines): the code is also in the x-ms-error-code header."""

    code: str = Field(description="machine-readable error code, e.g. InvalidRequest, NotFound, OnboardingInProgress")
    message: str = Field(description="what went wrong and what to do")
    target: str | None = Field(None, description="the field, step or resource the error is about")
    details: list[ErrorDetail] = Field(default_factory=list)
    innererror: dict[str, Any] | None = Field(
        None, description="more about the error: the running onboarding of a 409, the status body of an "
                          "OnboardingFailed 500, the correlationId of an unexpected failure")


class AzureError(_Answer):
    """An error answer."""

    error: ErrorBody


# -- onboardings -----------------------------------------------------------------------------------------------

class OnboardingAccepted(_Answer):
    """202 of POST /api/onboardings and POST …/verify: poll `statusQueryGetUri` (also the Location header)."""

    id: str = Field(description="the onboarding id, deterministic per (tenant, mailbox)")
    runtime_status: RuntimeStatus | None = Field(None, alias="runtimeStatus")
    status: Lifecycle
    status_query_get_uri: str = Field(alias="statusQueryGetUri",
                                      description="the anonymous status URL (read-only token for this onboarding)")
    view_url: str = Field(alias="viewUrl", description="the progress page for people, with the same token")


class ApplicationIds(_Answer):
    app_id: str | None = Field(None, alias="appId")
    object_id: str | None = Field(None, alias="objectId")


class CertificateFacts(_Answer):
    name: str | None = None
    thumbprint: str | None = Field(None, description="SHA-1 thumbprint, upper-case hex")
    not_after: str | None = Field(None, alias="notAfter")


class StepError(_Answer):
    """Why a step failed for good (or why the onboarding expired)."""

    step: str | None = None
    status: int | None = Field(None, description="the service's HTTP status (0: not an HTTP failure)")
    code: str | None = None
    message: str | None = None
    fix: str | None = Field(None, description="what to do, where it is known")


class Verification(_Answer):
    """The manual method's read-only verification."""

    verified: list[str] = Field(default_factory=list)
    not_verified: list[str] = Field(default_factory=list, alias="notVerified")
    missing: list[str] = Field(default_factory=list)


class OnboardingStatus(_Answer):
    """The status of one onboarding (GET /api/onboardings/{id} and the status URL; functions/onboarding.py
    onboarding_status_body)."""

    id: str
    runtime_status: RuntimeStatus | None = Field(None, alias="runtimeStatus")
    status: Lifecycle | None = Field(None, description="the lifecycle status; 202 while it can progress, 200 once "
                                                       "terminal")
    step: str | None = Field(None, description="the step in progress, or the one that failed")
    steps: list[str] = Field(default_factory=list)
    tenant_id: str | None = Field(None, alias="tenantId")
    service_mailbox: str | None = Field(None, alias="serviceMailbox")
    method: Literal["automatic", "manual"] | None = None
    application: ApplicationIds | None = None
    service_principal_id: str | None = Field(None, alias="servicePrincipalId")
    certificate: CertificateFacts | None = None
    permissions: list[str] = Field(default_factory=list)
    directory_role: str | None = Field(None, alias="directoryRole")
    proof_roles: dict[str, list[str]] = Field(default_factory=dict, alias="proofRoles",
                                              description="the roles of the proof token, per resource")
    created: dict[str, Any] = Field(default_factory=dict, description="what the latest run created so far")
    changes: dict[str, Any] | None = Field(None, description="what the latest run added and removed")
    error: StepError | None = None
    warnings: list[dict[str, Any]] = Field(default_factory=list)
    output: dict[str, Any] | None = None
    exchange_proof: dict[str, Any] | None = Field(None, alias="exchangeProof")
    verification: Verification | None = None
    script_url: str | None = Field(None, alias="scriptUrl", description="manual method: the PowerShell script")
    admin_consent_url: str | None = Field(None, alias="adminConsentUrl",
                                          description="manual method: the verifier's admin-consent page")
    csr_url: str | None = Field(None, alias="csrUrl", description="customer CA: the CSR to sign")
    certificate_upload_url: str | None = Field(None, alias="certificateUploadUrl",
                                               description="customer CA: where the signed certificate goes")


class MergedCertificate(_Answer):
    name: str
    thumbprint: str
    not_before: str | None = Field(None, alias="notBefore")
    not_after: str | None = Field(None, alias="notAfter")


class CertificateMerged(_Answer):
    """202 of POST …/certificate: the signed certificate is merged, the onboarding goes on."""

    id: str
    status: Lifecycle
    status_query_get_uri: str = Field(alias="statusQueryGetUri")
    certificate: MergedCertificate


class OnboardingSummary(_Answer):
    """One onboarding in a list: its record (the recorded lifecycle status; GET /api/onboardings/{id} reconciles it
    with the durable runtime)."""

    id: str
    tenant_id: str = Field(alias="tenantId")
    service_mailbox: str | None = Field(None, alias="serviceMailbox")
    method: str | None = None
    status: str | None = None
    step: str | None = None
    permission_profile: str | None = Field(None, alias="permissionProfile")
    directory_role: str | None = Field(None, alias="directoryRole")
    app_id: str | None = Field(None, alias="appId")
    service_principal_id: str | None = Field(None, alias="servicePrincipalId")
    thumbprint: str | None = None
    not_after: str | None = Field(None, alias="notAfter")
    updated_at: str | None = Field(None, alias="updatedAt")
    error: StepError | None = None


class OnboardingsPage(_Answer):
    """A page of onboardings (Logic Apps' x-ms-pageable: follow nextLink, with the function key in a header)."""

    value: list[OnboardingSummary]
    next_link: str | None = Field(None, alias="nextLink", description="the next page (absolute URL), null at the end")


class AuditEntry(_Answer):
    event: str = Field(description="e.g. certificate.created, consent.granted, onboarding.completed")
    at: str = Field(description="when (ISO 8601, UTC)")
    details: dict[str, Any] = Field(default_factory=dict, description="ids, names, thumbprints and dates only")


class AuditTrail(_Answer):
    """The audit trail of one onboarding, oldest first."""

    onboarding_id: str = Field(alias="onboardingId")
    value: list[AuditEntry]


# -- rotation (functions/rotation.py) ----------------------------------------------------------------------------

class RotationCertificate(BaseModel):
    """New certificate options for a rotation (a certificate Key Vault makes)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key_size: Literal[2048, 3072, 4096] | None = Field(None, alias="keySize")
    validity_months: int | None = Field(None, alias="validityMonths", ge=1, le=MAX_VALIDITY_MONTHS)
    exportable: bool | None = None


class RotationRequest(RotationCertificate):
    """Body of POST /api/onboardings/{id}/rotate (optional; functions/rotation.py _parse_options reads it): new
    certificate options, at the top level or under `certificate`; or, for a PFX-imported certificate, the new PFX
    and its password; or, for a customer-CA certificate, the certificate the CA signed for the rotation's CSR."""

    pfx: str | None = Field(None, description="the new PFX in base64 (a PFX-imported certificate)")
    password: str | None = Field(None, description="the new PFX's password", json_schema_extra={"format": "password"})
    signed_certificate: str | None = Field(None, alias="signedCertificate",
                                           description="the certificate the customer's CA signed: PEM, or DER in "
                                                       "base64")
    certificate: RotationCertificate | None = None


class RotationAccepted(_Answer):
    """202 of POST …/rotate: poll `statusQueryGetUri` (the Location header)."""

    id: str = Field(description="the rotation's instance id, rotation-{onboardingId}")
    onboarding_id: str = Field(alias="onboardingId")
    status: str
    status_query_get_uri: str = Field(alias="statusQueryGetUri")


class RotationStatus(_Answer):
    """The rotation's status (202 while it runs, 200 once it ended)."""

    id: str
    onboarding_id: str = Field(alias="onboardingId")
    runtime_status: RuntimeStatus | None = Field(None, alias="runtimeStatus")
    status: Literal["running", "completed", "failed", "manualActionNeeded"]
    rotation: dict[str, Any] = Field(default_factory=dict, description="the record's Rotation: state, step, "
                                                                       "oldThumbprint, newThumbprint, graceUntil, …")
    custom_status: Any = Field(None, alias="customStatus")


# -- offboarding (functions/offboarding.py) -----------------------------------------------------------------------

OffboardingLifecycle = Literal["running", "waitingForAdmin", "retired", "failed", "expired"]


class OffboardingAccepted(_Answer):
    """202 of DELETE /api/onboardings/{id} and POST …/verify-removal: poll `statusQueryGetUri` (Location)."""

    id: str = Field(description="the offboarding's instance id, offboarding-{onboardingId}")
    onboarding_id: str = Field(alias="onboardingId")
    status: OffboardingLifecycle
    permanent: bool = Field(description="deleted items emptied and the certificate purged where the vault allows it")
    status_query_get_uri: str = Field(alias="statusQueryGetUri")


class OffboardingStatus(_Answer):
    """The offboarding's status (its status URL; also a second DELETE's 200, with statusQueryGetUri)."""

    id: str
    onboarding_id: str = Field(alias="onboardingId")
    runtime_status: RuntimeStatus | None = Field(None, alias="runtimeStatus")
    status: OffboardingLifecycle | None = None
    step: str | None = None
    method: Literal["automatic", "manual"] | None = None
    permanent: bool = False
    onboarding_status: str | None = Field(None, alias="onboardingStatus")
    removed: dict[str, Any] = Field(default_factory=dict, description="what was removed, by step")
    certificate: dict[str, Any] | None = Field(None, description="what became of the Key Vault certificate")
    remaining: list[Any] = Field(default_factory=list, description="manual method: what the verifier still sees")
    deadline: str | None = None
    started_at: str | None = Field(None, alias="startedAt")
    retired_at: str | None = Field(None, alias="retiredAt")
    error: StepError | None = None
    removal_script_url: str | None = Field(None, alias="removalScriptUrl")
    verify_removal_url: str | None = Field(None, alias="verifyRemovalUrl")
    status_query_get_uri: str | None = Field(None, alias="statusQueryGetUri")


# -- the expiry monitor (functions/expiry.py) --------------------------------------------------------------------

class LastAlert(_Answer):
    id: str
    type: str | None = None
    at: str | None = None


class TrackedCertificate(_Answer):
    onboarding_id: str = Field(alias="onboardingId")
    tenant_id: str | None = Field(None, alias="tenantId")
    service_mailbox: str | None = Field(None, alias="serviceMailbox")
    app_id: str | None = Field(None, alias="appId")
    thumbprint: str | None = None
    not_after: str | None = Field(None, alias="notAfter")
    days_left: int | None = Field(None, alias="daysLeft")
    last_alert: LastAlert | None = Field(None, alias="lastAlert")
    rotation: str | None = Field(None, description="the rotation's state, if one ran")


class CertificatesPage(_Answer):
    """A page of tracked certificates (x-ms-pageable)."""

    value: list[TrackedCertificate]
    next_link: str | None = Field(None, alias="nextLink")


class ExpiryRun(_Answer):
    """The latest run of the expiry monitor."""

    run_id: str | None = Field(None, alias="runId")
    status: str | None = Field(None, description="running, completed or failed")
    past_due: bool = Field(False, alias="pastDue")
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    scanned: int | None = None
    alert_count: int | None = Field(None, alias="alertCount")
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    rotation_count: int | None = Field(None, alias="rotationCount")
    rotations: list[Any] = Field(default_factory=list)
    rotations_deferred: int | None = Field(None, alias="rotationsDeferred")
    failure_count: int | None = Field(None, alias="failureCount")
    failures: list[dict[str, Any]] = Field(default_factory=list)
    history_purged: int | None = Field(None, alias="historyPurged")
    audit_purged: int | None = Field(None, alias="auditPurged")
    consent_states_purged: int | None = Field(None, alias="consentStatesPurged")


# -- onboarding links (functions/links.py, shared/links.py) -------------------------------------------------------

def _without_secrets(schema: dict) -> None:
    for name in SECRET_FIELDS:
        schema.get("properties", {}).pop(name, None)


class LinkCertificateOptions(CertificateOptions):
    """The certificate options a link may carry: no PFX or password (a secret never goes into a URL)."""

    model_config = ConfigDict(json_schema_extra=_without_secrets)


class OnboardingLinkRequest(LinkRequest):
    """Body of POST /api/onboarding-links (shared/links.py parse_link_request): an onboarding request whose tenantId
    is optional (the consenting tenant is then the one onboarded), without secrets, and the link's lifetime."""

    certificate: LinkCertificateOptions = Field(default_factory=LinkCertificateOptions)
    expires_in_hours: int = Field(alias="expiresInHours", ge=1, le=MAX_LINK_HOURS)


class OnboardingLinkCreated(_Answer):
    """201 of POST /api/onboarding-links: the signed link to send to the tenant's administrator."""

    url: str
    expires_at: str = Field(alias="expiresAt")
