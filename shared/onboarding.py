"""The steps of automatic onboarding (DESIGN.md 1-7) as plain functions over JSON-safe dicts.

Each step is idempotent: it reads what exists and writes only what is missing, so an activity that
runs twice (at-least-once delivery, a host restart, a durable retry) creates nothing the second time.
A step never raises: it returns ``{"ok": True, ...}``; ``{"ok": False, "retry": True, "error": {...}}``
for a transient failure (directory replication, consent still propagating, throttling or 5xx that
outlasted the SDK's retries), which the orchestration retries after a durable timer; or
``{"ok": False, "error": {...}}`` for a permanent one (a refused permission, an invalid request,
anything unexpected), which ends the onboarding at once and names the step and the error.

Nothing here returns or logs key material or tokens: results carry ids, names, thumbprints, dates and
the decoded `roles` of the proof token.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import inspect
import json
import logging
from datetime import UTC, datetime, timedelta

from . import catalog
from .credentials import keyvault_signed_assertion, onboarded_app_credential
from .graph import Directory, GraphError, directory_for
from .keyvault import CertificateInfo, CertificateVault, CreationPending, certificate_name, vault_for
from .settings import Settings
from .state import StateStore, state_store

log = logging.getLogger(__name__)

STEPS = ("certificate", "application", "servicePrincipal", "consent", "directoryRole", "proof", "record")
# How long after creating an app a 403 on its service principal counts as replication, not a refusal:
# with Application.ReadWrite.OwnedBy Graph answers 403 until the new app is visible to the ownership check
# (hashicorp/terraform-provider-azuread#611, #992).
OWNED_BY_REPLICATION_WINDOW = timedelta(minutes=10)
# Graph's answer to a keyCredential longer than the tenant's app management policy allows (REFERENCE.md, "Tenant
# app management policies").
LIFETIME_POLICY_CODE = "CredentialInvalidLifetimeAsPerAppPolicy"


class RetryableStepError(Exception):
    """A transient failure: the orchestration runs the step again after a durable timer."""


# Entra answers these while a new consent, service principal or credential propagates, or while it is
# briefly unavailable (learn.microsoft.com/entra/identity-platform/reference-error-codes): worth retrying.
TRANSIENT_AADSTS = ("AADSTS700016", "AADSTS7000229", "AADSTS500011", "AADSTS50196", "AADSTS90033",
                    "AADSTS500014")


def _is_transient(error: Exception) -> bool:
    """Connection failures, timeouts and service unavailability that outlasted the SDKs' own retries."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    if isinstance(error, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with msgraph-sdk
        return False
    return isinstance(error, httpx.TransportError)


def _outcome(step: str, error: Exception) -> dict:
    """What a step returns when it raised: a retry for transient failures, else a permanent failure."""
    if isinstance(error, RetryableStepError) or _is_transient(error):
        log.warning("step %s will be retried: %s", step, error)
        return {"ok": False, "retry": True,
                "error": {"step": step, "status": 0, "code": "Transient", "message": str(error)[:1000]}}
    log.error("step %s failed: %s: %s", step, type(error).__name__, error)
    return failure(step, 0, type(error).__name__, str(error)[:1000])


def step_outcome(step: str):
    """Make a step return its outcome instead of raising (activities must not raise: an exception would
    be retried blindly or fail the orchestration without naming the step)."""

    def decorate(method):
        if inspect.iscoroutinefunction(method):
            @functools.wraps(method)
            async def run_async(*args, **kwargs):
                try:
                    return await method(*args, **kwargs)
                except Exception as error:
                    return _outcome(step, error)

            return run_async

        @functools.wraps(method)
        def run(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except Exception as error:
                return _outcome(step, error)

        return run

    return decorate


def parse_time(value: str) -> datetime:
    """ISO-8601 (with Z) → aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def application_unique_name(onboarding_id: str) -> str:
    """The app registration's immutable key in the tenant (deterministic per tenant and mailbox)."""
    return "certauth-" + hashlib.sha256(onboarding_id.encode()).hexdigest()[:32]


def application_display_name(settings: Settings, mailbox: str) -> str:
    """`<prefix> (<service mailbox>)`, the naming convention admins see in Entra."""
    return f"{settings.app_display_name_prefix} ({mailbox})"


def certificate_subject(settings: Settings, mailbox: str) -> str:
    """`CN=<app display name>` as an RFC 4514 string (escaped), within X.520's 64-character CN limit."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = application_display_name(settings, mailbox)
    if len(name.encode()) > 64:  # the limit counts UTF-8 bytes; the prefix's dashes take three each
        name = f"certauth ({mailbox})"[:64]  # the mailbox is ASCII (validated)
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]).rfc4514_string()


def failure(step: str, status: int, code: str, message: str) -> dict:
    """A permanent failure result (JSON-safe)."""
    return {"ok": False, "error": {"step": step, "status": status, "code": code, "message": message}}


def _graph_outcome(step: str, error: GraphError) -> dict:
    if error.is_transient:
        raise RetryableStepError(f"{step}: {error}")
    return failure(step, error.status, error.code, error.message)


class Onboarding:
    """Runs the steps for one onboarding request (the orchestration input)."""

    def __init__(self, settings: Settings, request: dict, store: StateStore | None = None) -> None:
        self.settings = settings
        self.request = request
        self.id = request["onboardingId"]
        self.tenant_id = request["tenantId"]
        self.mailbox = request["serviceMailbox"]
        self.profile = catalog.profile(request["permissionProfile"])
        self._store = store

    @property
    def store(self) -> StateStore:
        """Table Storage (built on first use)."""
        if self._store is None:
            self._store = state_store(self.settings)
        return self._store

    def progress(self, step: str, fields: dict, event: str, details: dict | None = None) -> None:
        """Record a step's result on the onboarding record and in the audit trail (idempotent), at the time
        it happened (the wall clock: a record, not an orchestration decision)."""
        at = datetime.now(UTC)
        # A blind merge: these fields are this step's own, so no read (and no ETag race) is needed.
        self.store.merge_onboarding(self.id, {"Step": step, "UpdatedAt": at, **fields})
        self.store.audit(self.id, event, at, details or {}, key=self._audit_key(step))

    async def aprogress(self, *args, **kwargs) -> None:
        """progress() from async steps: Table Storage's client is sync, so it runs off the event loop."""
        await asyncio.to_thread(self.progress, *args, **kwargs)

    def _audit_key(self, step: str) -> str:
        """One audit entry per step per run: a retried activity overwrites its own entry, while a later run
        of the same onboarding adds its own (the run is the orchestration's start time)."""
        run = self.request.get("runStartedAt", "")
        return f"{run.replace(':', '').replace('+', 'p')}-{step}"

    def _vault(self) -> CertificateVault:
        return vault_for(self.settings)

    # -- 1. certificate -------------------------------------------------------------------------------------
    @step_outcome("certificate")
    def ensure_certificate(self, now: datetime) -> dict:
        """Create (or reuse) the Key Vault certificate; returns its public facts."""
        from azure.core.exceptions import HttpResponseError

        options = self.request["certificate"]
        vault = self._vault()
        try:
            info, created = vault.ensure(
                certificate_name(self.id), certificate_subject(self.settings, self.mailbox),
                options["validityMonths"], options["keySize"], options["exportable"], now)
        except CreationPending as pending:
            raise RetryableStepError(f"certificate: {pending}") from None
        except HttpResponseError as error:
            status = error.status_code or 0
            if status in (0, 429) or status >= 500:
                raise RetryableStepError(f"certificate: {status} {error.message}") from None
            code = getattr(error.error, "code", None) or "KeyVaultError"
            return failure("certificate", status, code, error.message or str(error))
        self.store.upsert_certificate(self.id, {
            "TenantId": self.tenant_id, "ServiceMailbox": self.mailbox, "CertificateName": info.name,
            "Version": info.version, "Thumbprint": info.thumbprint, "NotBefore": parse_time(info.not_before),
            "NotAfter": parse_time(info.not_after), "Exportable": info.exportable})
        self.progress("certificate", {"CertificateName": info.name, "Thumbprint": info.thumbprint,
                                           "NotAfter": parse_time(info.not_after)},
                      "certificate.created" if created else "certificate.reused", {"Thumbprint": info.thumbprint})
        return {"ok": True, "certificate": info.to_json(), "created": created}

    # -- Graph steps (async: msgraph-sdk is async only) ------------------------------------------------------
    async def _with_directory(self, step: str, work):
        directory = directory_for(self.settings, self.tenant_id)
        try:
            return await work(directory)
        except GraphError as error:
            return _graph_outcome(step, error)
        except Exception as error:
            from azure.core.exceptions import ClientAuthenticationError

            if isinstance(error, ClientAuthenticationError):
                message = str(error.message).split(" Trace ID")[0]
                if any(code in message for code in TRANSIENT_AADSTS) or "AADSTS" not in message:
                    # Consent or the app still propagating, or the identity endpoint briefly unavailable.
                    raise RetryableStepError(f"{step}: {message}") from None
                return failure(step, 401, "AuthenticationFailed", message)
            raise

    @step_outcome("application")
    async def ensure_application(self, certificate: dict) -> dict:
        """Upsert the app registration and merge the certificate into its keyCredentials."""
        info = CertificateInfo(**certificate)
        required = {resource: [p.app_role_id for p in permissions]
                    for resource, permissions in self.profile.by_resource().items()}
        display_name = application_display_name(self.settings, self.mailbox)

        async def work(directory: Directory) -> dict:
            app = await directory.upsert_application(application_unique_name(self.id), display_name, required)
            try:
                key_added = await directory.ensure_certificate_key(
                    app["id"], base64.b64decode(info.cer), parse_time(info.not_before), parse_time(info.not_after),
                    f"certauth {info.thumbprint}")
            except GraphError as error:
                if error.code != LIFETIME_POLICY_CODE:
                    raise
                # Graph names the policy, not its limit: say what the product asked for and how to fit it.
                days = (parse_time(info.not_after) - parse_time(info.not_before)).days
                raise GraphError(error.status, error.code, (
                    f"{error.message} The certificate is valid {days} days "
                    f"({self.request['certificate']['validityMonths']} months): onboard with a smaller "
                    "certificate.validityMonths, or grant the onboarding app Policy.Read.All so that certauth "
                    "fits the certificate to the tenant's policy.")) from None
            await self.aprogress("application", {"AppId": app["appId"], "ApplicationObjectId": app["id"]},
                          "application.created" if app["created"] else "application.updated",
                          {"AppId": app["appId"], "KeyAdded": key_added})
            return {"ok": True, "appId": app["appId"], "applicationObjectId": app["id"], "created": app["created"],
                    "keyAdded": key_added, "createdAt": app["createdDateTime"] or datetime.now(UTC).isoformat()}

        return await self._with_directory("application", work)

    @step_outcome("servicePrincipal")
    async def ensure_service_principal(self, application: dict, now: datetime) -> dict:
        """Upsert the app's service principal, through replication delay."""

        async def work(directory: Directory) -> dict:
            try:
                sp = await directory.upsert_service_principal(application["appId"])
            except GraphError as error:
                # Graph's own createdDateTime decides "new", whichever attempt created the app.
                recent = now - parse_time(application["createdAt"]) < OWNED_BY_REPLICATION_WINDOW
                if error.status == 403 and recent:
                    raise RetryableStepError(f"servicePrincipal: {error} (new app, not replicated yet)") from None
                raise
            await self.aprogress("servicePrincipal", {"ServicePrincipalId": sp["id"]},
                          "servicePrincipal.created" if sp["created"] else "servicePrincipal.exists",
                          {"ServicePrincipalId": sp["id"]})
            return {"ok": True, "servicePrincipalId": sp["id"], "created": sp["created"]}

        return await self._with_directory("servicePrincipal", work)

    @step_outcome("consent")
    async def grant_permissions(self, service_principal_id: str) -> dict:
        """Admin consent: one app role assignment per permission, posted only when missing."""

        async def work(directory: Directory) -> dict:
            # The reads are independent of each other, and so are the grants: each group goes at once.
            by_resource = self.profile.by_resource()
            have, *resources = await asyncio.gather(
                directory.granted_roles(service_principal_id),
                *(directory.resource_roles(resource) for resource in by_resource))
            missing: list[tuple[str, str, str]] = []   # (resource SP, app role id, permission)
            granted: list[str] = []
            for (resource_sp, roles), permissions in zip(resources, by_resource.values(), strict=True):
                for permission in permissions:
                    role_id = roles.get(permission.value)
                    if role_id is None:
                        return failure("consent", 400, "UnknownPermission",
                                       f"{permission.resource_name} has no application permission "
                                       f"{permission.value} in this tenant")
                    if role_id != permission.app_role_id:
                        # The app requests the catalog's id (requiredResourceAccess): granting another
                        # one would leave requested and granted apart. Never silently grant.
                        return failure("consent", 409, "CatalogMismatch",
                                       f"{permission.resource_name} has {permission.value} as app role {role_id}, "
                                       f"the catalog says {permission.app_role_id}")
                    if (resource_sp, role_id) not in have:
                        missing.append((resource_sp, role_id, permission.value))
                    granted.append(permission.value)
            posted = await asyncio.gather(*(directory.grant_role(resource_sp, service_principal_id, role_id)
                                            for resource_sp, role_id, _ in missing))
            added = [value for (_, _, value), new in zip(missing, posted, strict=True) if new]
            await self.aprogress("consent", {"Permissions": json.dumps(granted)},
                          "consent.granted" if added else "consent.exists", {"Added": json.dumps(added)})
            return {"ok": True, "granted": granted, "added": added}

        return await self._with_directory("consent", work)

    @step_outcome("directoryRole")
    async def ensure_directory_role(self, service_principal_id: str) -> dict:
        """Assign the directory role (if the request asks for one), read first."""
        role_key = self.request.get("directoryRole")
        if not role_key:
            await self.aprogress("directoryRole", {"DirectoryRole": ""}, "directoryRole.none")
            return {"ok": True, "role": None, "added": False}
        role = catalog.directory_role(role_key)

        async def work(directory: Directory) -> dict:
            added = False
            if not await directory.has_directory_role(service_principal_id, role.template_id):
                added = await directory.assign_directory_role(service_principal_id, role.template_id)
            await self.aprogress("directoryRole", {"DirectoryRole": role.display_name},
                          "directoryRole.assigned" if added else "directoryRole.exists",
                          {"RoleTemplateId": role.template_id})
            return {"ok": True, "role": role.display_name, "roleTemplateId": role.template_id, "added": added}

        return await self._with_directory("directoryRole", work)

    # -- 6. proof ------------------------------------------------------------------------------------------
    @step_outcome("proof")
    def prove(self, application: dict, certificate: dict) -> dict:
        """Get app-only tokens with the new certificate (signed in Key Vault) and check their roles."""
        import jwt
        from azure.core.exceptions import ClientAuthenticationError

        info = CertificateInfo(**certificate)
        vault = self._vault()
        assertion = keyvault_signed_assertion(
            self.settings, self.tenant_id, application["appId"], base64.b64decode(info.cer),
            lambda digest: vault.sign(info.key_id, "RS256", digest))
        credential = onboarded_app_credential(self.settings, self.tenant_id, application["appId"], assertion)
        roles: dict[str, list[str]] = {}
        missing: list[str] = []
        for resource, permissions in self.profile.by_resource().items():
            scope = f"{_resource_uri(self.settings, resource)}/.default"
            try:
                token = credential.get_token(scope).token
            except ClientAuthenticationError as error:
                # New credentials and consent take a while to reach every token-issuing replica.
                raise RetryableStepError(f"proof: {str(error.message).split(' Trace ID')[0]}") from None
            # Only the claims are read (and never stored): the token itself stays in this frame.
            claims = jwt.decode(token, options={"verify_signature": False})
            del token
            roles[catalog.RESOURCE_NAMES.get(resource, resource)] = sorted(claims.get("roles", []))
            missing += [p.value for p in permissions if p.value not in claims.get("roles", [])]
        if missing:
            raise RetryableStepError(f"proof: token roles do not include {sorted(missing)} yet")
        self.progress("proof", {"ProofRoles": json.dumps(roles)}, "proof.succeeded", {"Roles": json.dumps(roles)})
        return {"ok": True, "roles": roles}

    @step_outcome("record")
    def complete(self, summary: dict) -> dict:
        """Mark the onboarding completed."""
        now = datetime.now(UTC)
        self.store.update_onboarding(self.id, lambda _: {"Status": "completed", "Step": "record", "UpdatedAt": now,
                                                         "CompletedAt": now, "Error": ""})
        self.store.audit(self.id, "onboarding.completed", now, {"Summary": json.dumps(summary)},
                         key=self._audit_key("record"))
        return {"ok": True}

    def fail(self, error: dict, created: dict) -> dict:
        """Mark the onboarding failed, naming the step, Graph's error and what exists."""
        now = datetime.now(UTC)
        self.store.update_onboarding(self.id, lambda _: {"Status": "failed", "UpdatedAt": now,
                                                         "Error": json.dumps(error), "Created": json.dumps(created)})
        self.store.audit(self.id, "onboarding.failed", now, {"Error": json.dumps(error)}, key=self._audit_key("failed"))
        return {"ok": True}


def _resource_uri(settings: Settings, resource_app_id: str) -> str:
    """The token audience of a resource in this cloud (the appId itself for resources we do not name)."""
    return {catalog.MICROSOFT_GRAPH: settings.graph_resource,
            catalog.EXCHANGE_ONLINE: settings.exchange_resource}.get(resource_app_id, resource_app_id)
