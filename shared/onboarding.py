"""The steps of automatic onboarding (DESIGN.md 1-7) as plain functions over JSON-safe dicts.

Each step is idempotent: it reads what exists and writes only what is missing, so an activity that
runs twice (at-least-once delivery, a host restart, a durable retry) creates nothing the second time.
Its Table Storage writes (the progress record, the audit entry) are part of that retry: they are
idempotent too, and a write that fails is a failure of the step like any other.
A step never raises: whatever it raised is judged by the one classifier (shared/failures.py) and it
returns ``{"ok": True, ...}``; ``{"ok": False, "retry": True, "error": {...}}`` for a transient failure
(directory replication, consent or credentials still propagating, throttling or 5xx that outlasted the
SDK's retries, the network), which the orchestration retries after a durable timer; or
``{"ok": False, "retry": False, "error": {...}}`` for a permanent one (a refused permission, an invalid
request, anything unexpected), which ends the onboarding at once and names the step and the error.

A re-run reconciles the tenant to the request (the request is the desired state): grants and directory
roles of the onboarded app's service principal that the request no longer asks for are removed, and the
record's `Changes` says what this run added and removed.

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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from . import catalog, exchange
from .credentials import keyvault_signed_assertion, onboarded_app_credential
from .failures import REPLICATION, Permanent, Transient, classify
from .graph import Directory, GraphError, directory_for
from .keyvault import CertificateInfo, CertificateVault, CreationPending, certificate_name, vault_for
from .settings import Settings
from .state import StateStore, state_store

log = logging.getLogger(__name__)

# The steps in the order the status and the progress page list them. The orchestrator runs what is independent at
# once (functions/onboarding.py ONBOARDING_PLAN): the certificate beside the application, the service principal,
# consent and directory role; the key goes onto the app once both the certificate and the app exist.
STEPS = ("certificate", "application", "servicePrincipal", "consent", "directoryRole", "keyCredential", "proof",
         "record")
# How long after creating an app a 403 on its service principal counts as replication, not a refusal:
# with Application.ReadWrite.OwnedBy Graph answers 403 until the new app is visible to the ownership check
# (hashicorp/terraform-provider-azuread#611, #992).
OWNED_BY_REPLICATION_WINDOW = timedelta(minutes=10)
# Graph's answer to a keyCredential longer than the tenant's app management policy allows (REFERENCE.md, "Tenant
# app management policies").
LIFETIME_POLICY_CODE = "CredentialInvalidLifetimeAsPerAppPolicy"
# Graph's limit on an application's displayName (learn.microsoft.com/graph/api/resources/application, displayName).
DISPLAY_NAME_MAX_LENGTH = 256


# The policy validity of a CSR's certificate (the customer's CA decides the real one; Key Vault's lifetime action
# counts from it).
DEFAULT_CSR_VALIDITY_MONTHS = 12

# What Changes says when a run changed nothing (the record's `Changes`, the status body's `changes`).
NO_CHANGES = {"permissionsAdded": [], "permissionsRemoved": [], "directoryRoleAdded": None,
              "directoryRolesRemoved": []}


def _outcome(step: str, error: Exception) -> dict:
    """What a step returns when it raised: the classifier's verdict, logged."""
    verdict = classify(step, error)
    error_json = verdict.error
    if verdict.transient:
        log.warning("step %s will be retried (%s): %s %s: %s", step, error_json.get("waitingFor"),
                    error_json["status"], error_json["code"], error_json["message"])
    else:
        log.error("step %s failed: %s %s: %s", step, error_json["status"], error_json["code"], error_json["message"])
    return verdict.outcome()


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
    """`<prefix> (<service mailbox>)`, the naming convention admins see in Entra, within Graph's limit of
    DISPLAY_NAME_MAX_LENGTH: a long prefix is shortened, never the mailbox (it tells the apps apart)."""
    suffix = f" ({mailbox})"
    prefix = settings.app_display_name_prefix[:max(0, DISPLAY_NAME_MAX_LENGTH - len(suffix))].rstrip()
    return f"{prefix}{suffix}".strip()


def certificate_subject(settings: Settings, mailbox: str) -> str:
    """`CN="<app display name>"`, within X.520's 64-character CN limit, in the syntax Key Vault parses.

    An Exchange address may hold `+ = # / ?` (and the prefix is a setting). Key Vault documents only "a valid X509
    distinguished name"; its tooling's rule for special characters is to quote the value (learn.microsoft.com/
    powershell/module/az.keyvault/new-azkeyvaultcertificatepolicy, -SubjectName: O="Contoso, Ltd."), and an
    unquoted comma is refused ("Invalid X.500 distinguished name", MicrosoftDocs/azure-docs#62463). That is the
    syntax of Windows' X.500 strings (learn.microsoft.com/windows/win32/api/wincrypt/nf-wincrypt-certstrtonamew):
    `,` `;` separate RDNs, `+` the values of one RDN, a leading `#` means hex, RFC 4514's backslash escapes are not
    part of it, and a quoted value holds anything, `"` written `""`. So the CN is always quoted: RFC 4514's
    `\\+` could reach Key Vault as a second RDN value."""
    name = application_display_name(settings, mailbox)
    if len(name.encode()) > 64:  # the limit counts UTF-8 bytes; the prefix's dashes take three each
        name = f"certauth ({mailbox})"[:64]  # the mailbox is ASCII (validated)
    # Control characters have no place in a name (a prefix could carry one): drop them.
    name = "".join(c for c in name if c.isprintable())
    return 'CN="' + name.replace('"', '""') + '"'


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

    def progress(self, step: str, fields: dict, event: str, details: dict | None = None,
                 changes: dict | None = None) -> None:
        """Record a step's result on the onboarding record and in the audit trail (idempotent), at the time
        it happened (the wall clock: a record, not an orchestration decision). `changes` is the step's part of
        the run's Changes (consent and directory role run at once: each merges its own keys)."""
        at = datetime.now(UTC)
        if changes is None:
            # A blind merge: these fields are this step's own, so no read (and no ETag race) is needed.
            self.store.merge_onboarding(self.id, {"Step": step, "UpdatedAt": at, **fields})
        else:
            self._merge_changes({"Step": step, "UpdatedAt": at, **fields}, changes)
        self.store.audit(self.id, event, at, details or {}, key=self._audit_key(step))

    def _merge_changes(self, fields: dict, changes: dict) -> None:
        """`fields` and the run's Changes with `changes` merged in: read-modify-write with the record's ETag, since
        another step writes its own part of the same JSON at the same time. The POST of a run resets Changes."""
        from azure.core.exceptions import ResourceNotFoundError

        def change(entity: dict) -> dict:
            known = _loads_dict(entity.get("Changes"))
            merged = {**NO_CHANGES, **{k: v for k, v in known.items() if k in NO_CHANGES}, **changes}
            return {**fields, "Changes": json.dumps(merged)}

        try:
            self.store.update_onboarding(self.id, change)
        except ResourceNotFoundError:  # no record (a step run on its own): nothing to merge with
            self.store.merge_onboarding(self.id, change({}))

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
        """Create (or reuse) the Key Vault certificate, reuse the PFX the HTTP trigger imported, or, for the
        customer's CA, the certificate merged into Key Vault's CSR; returns its public facts. While a CSR waits
        for its certificate: {"ok": True, "pending": "certificate", "csr": True} and Status waitingForCertificate."""
        options = self.request["certificate"]
        vault = self._vault()
        name = certificate_name(self.id)
        source = "imported" if options.get("imported") else "customerCa" if options.get("issuer") else "keyVault"
        extra: dict = {"CertificateSource": source}
        try:
            if source == "imported":
                info, created = vault.current(name), False
                if info is None:
                    raise Permanent(404, "ImportedCertificateNotFound", f"the imported certificate {name} is not in "
                                    "Key Vault", fix="POST the onboarding again with certificate.pfx")
            elif source == "customerCa":
                state = vault.csr_state(name)
                info = vault.current(name) if state.status == "merged" else None
                created = False
                if info is None:
                    if state.status != "pending":
                        vault.request_csr(name, certificate_subject(self.settings, self.mailbox),
                                          options.get("validityMonths") or DEFAULT_CSR_VALIDITY_MONTHS,
                                          options.get("keySize") or 2048)
                    self.progress("certificate", {"Status": "waitingForCertificate", "CertificateName": name,
                                                  **extra}, "certificate.csrRequested", {"CertificateName": name})
                    return {"ok": True, "pending": "certificate", "csr": True}
                extra["Status"] = "running"  # the merged certificate ends the wait
            else:
                info, created = vault.ensure(
                    name, certificate_subject(self.settings, self.mailbox),
                    options["validityMonths"], options["keySize"], options["exportable"], now)
        except CreationPending as pending:
            raise Transient(str(pending), code="CertificateCreationPending") from None
        self.store.upsert_certificate(self.id, {
            "TenantId": self.tenant_id, "ServiceMailbox": self.mailbox, "CertificateName": info.name,
            "Version": info.version, "Thumbprint": info.thumbprint, "NotBefore": parse_time(info.not_before),
            "NotAfter": parse_time(info.not_after), "Exportable": info.exportable})
        self.progress("certificate", {"CertificateName": info.name, "Thumbprint": info.thumbprint,
                                           "NotAfter": parse_time(info.not_after), **extra},
                      "certificate.created" if created else "certificate.reused", {"Thumbprint": info.thumbprint})
        return {"ok": True, "certificate": info.to_json(), "created": created}

    # -- Graph steps (async: msgraph-sdk is async only) ------------------------------------------------------
    async def _with_directory(self, step: str, work):
        """Run `work` with Graph in the customer's tenant; what it raises goes to the classifier."""
        return await work(directory_for(self.settings, self.tenant_id))

    @step_outcome("application")
    async def ensure_application(self) -> dict:
        """Upsert the app registration: its name and requested permissions (its key is the keyCredential step's,
        which runs once the certificate exists: the two do not wait for each other)."""
        required = {resource: [p.app_role_id for p in permissions]
                    for resource, permissions in self.profile.by_resource().items()}
        display_name = application_display_name(self.settings, self.mailbox)

        async def work(directory: Directory) -> dict:
            # After certauth's own offboarding the soft-deleted app holds the uniqueName: restored (shared/offboarding).
            from .offboarding import upsert_after_offboarding

            app = await upsert_after_offboarding(directory, self.store, self.id, application_unique_name(self.id),
                                                 display_name, required)
            await self.aprogress("application", {"AppId": app["appId"], "ApplicationObjectId": app["id"]},
                                 "application.created" if app["created"] else "application.updated",
                                 {"AppId": app["appId"]})
            return {"ok": True, "appId": app["appId"], "applicationObjectId": app["id"], "created": app["created"],
                    "createdAt": app["createdDateTime"] or datetime.now(UTC).isoformat()}

        return await self._with_directory("application", work)

    @step_outcome("keyCredential")
    async def ensure_key_credential(self, application: dict, certificate: dict, now: datetime | None = None) -> dict:
        """Merge the certificate into the app's keyCredentials: added unless it is there, every other key kept
        (shared/graph.py ensure_certificate_key reads the keys and sends them back with the new one). `now` is the
        orchestration's time of this attempt (a new app's 403 within OWNED_BY_REPLICATION_WINDOW is replication)."""
        info = CertificateInfo(**certificate)

        async def work(directory: Directory) -> dict:
            try:
                key_added = await directory.ensure_certificate_key(
                    application["applicationObjectId"], base64.b64decode(info.cer), parse_time(info.not_before),
                    parse_time(info.not_after), f"certauth {info.thumbprint}")
            except GraphError as error:
                recent = (now is not None and application.get("createdAt")
                          and now - parse_time(application["createdAt"]) < OWNED_BY_REPLICATION_WINDOW)
                if error.status == 403 and recent:  # as for the service principal: ownership not replicated yet
                    raise Transient(f"{error.message} (new app, not replicated yet)", REPLICATION, error.code,
                                    error.status) from None
                if error.code != LIFETIME_POLICY_CODE:
                    raise
                # Graph names the policy, not its limit: say what the product asked for and how to fit it.
                days = (parse_time(info.not_after) - parse_time(info.not_before)).days
                raise GraphError(error.status, error.code, (
                    f"{error.message} The certificate is valid {days} days "
                    f"({self.request['certificate']['validityMonths']} months): onboard with a smaller "
                    "certificate.validityMonths, or grant the onboarding app Policy.Read.All so that certauth "
                    "fits the certificate to the tenant's policy.")) from None
            await self.aprogress("keyCredential", {}, "keyCredential.added" if key_added else "keyCredential.exists",
                                 {"AppId": application["appId"], "Thumbprint": info.thumbprint})
            return {"ok": True, "keyAdded": key_added, "thumbprint": info.thumbprint}

        return await self._with_directory("keyCredential", work)

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
                    raise Transient(f"{error.message} (new app, not replicated yet)", REPLICATION, error.code,
                                    error.status) from None
                raise
            await self.aprogress("servicePrincipal", {"ServicePrincipalId": sp["id"]},
                          "servicePrincipal.created" if sp["created"] else "servicePrincipal.exists",
                          {"ServicePrincipalId": sp["id"]})
            return {"ok": True, "servicePrincipalId": sp["id"], "created": sp["created"]}

        return await self._with_directory("servicePrincipal", work)

    @step_outcome("consent")
    async def grant_permissions(self, service_principal_id: str) -> dict:
        """Admin consent, reconciled to the profile: one app role assignment per permission, posted only when
        missing, and every grant of this app's service principal that the profile does not list removed
        (DELETE …/appRoleAssignments/{id}, AppRoleAssignment.ReadWrite.All: the permission that grants them).

        Every grant of our own service principal counts, whoever made it: the app registration requests exactly
        the profile (requiredResourceAccess), so a grant outside it is privilege that nothing asked for and that
        the record would not show."""

        async def work(directory: Directory) -> dict:
            # The reads are independent of each other, and so are the writes: each group goes at once.
            by_resource = self.profile.by_resource()
            have, *resources = await asyncio.gather(
                directory.app_role_assignments(service_principal_id),
                *(directory.resource_roles(resource) for resource in by_resource))
            held = {(a["resourceId"], a["appRoleId"].lower()) for a in have}
            wanted: set[tuple[str, str]] = set()
            missing: list[tuple[str, str, str]] = []   # (resource SP, app role id, permission)
            granted: list[str] = []
            names: dict[tuple[str, str], str] = {}
            for (resource_sp, roles), permissions in zip(resources, by_resource.values(), strict=True):
                names |= {(resource_sp, role_id.lower()): value for value, role_id in roles.items()}
                for permission in permissions:
                    role_id = roles.get(permission.value)
                    if role_id is None:
                        raise Permanent(400, "UnknownPermission", f"{permission.resource_name} has no application "
                                        f"permission {permission.value} in this tenant")
                    if role_id != permission.app_role_id:
                        # The app requests the catalog's id (requiredResourceAccess): granting another
                        # one would leave requested and granted apart. Never silently grant.
                        raise Permanent(409, "CatalogMismatch", f"{permission.resource_name} has {permission.value} "
                                        f"as app role {role_id}, the catalog says {permission.app_role_id}")
                    wanted.add((resource_sp, role_id.lower()))
                    if (resource_sp, role_id.lower()) not in held:
                        missing.append((resource_sp, role_id, permission.value))
                    granted.append(permission.value)
            extra = [a for a in have if (a["resourceId"], a["appRoleId"].lower()) not in wanted]
            posted, _ = await asyncio.gather(
                asyncio.gather(*(directory.grant_role(resource_sp, service_principal_id, role_id)
                                 for resource_sp, role_id, _ in missing)),
                asyncio.gather(*(directory.revoke_role(service_principal_id, a["id"]) for a in extra)))
            added = [value for (_, _, value), new in zip(missing, posted, strict=True) if new]
            # A grant gone already (404) was removed by an earlier attempt of this run: still this run's change.
            removed = sorted(await self._permission_names(directory, extra, names))
            changes = {**NO_CHANGES, "permissionsAdded": added, "permissionsRemoved": removed}
            event = "consent.granted" if added else "consent.revoked" if removed else "consent.exists"
            await self.aprogress("consent", {"Permissions": json.dumps(granted)}, event,
                                 {"Added": json.dumps(added), "Removed": json.dumps(removed)},
                                 changes={"permissionsAdded": added, "permissionsRemoved": removed})
            return {"ok": True, "granted": granted, "added": added, "removed": removed, "changes": changes}

        return await self._with_directory("consent", work)

    @staticmethod
    async def _permission_names(directory: Directory, assignments: list[dict],
                                names: dict[tuple[str, str], str]) -> list[str]:
        """The permission values of app role assignments (read from resources outside the profile if needed)."""
        unknown = {a["resourceId"] for a in assignments if (a["resourceId"], a["appRoleId"].lower()) not in names}
        for resource_sp, roles in zip(unknown, await asyncio.gather(*(directory.app_roles_of(r) for r in unknown)),
                                      strict=True):
            names |= {(resource_sp, role_id.lower()): value for role_id, value in roles.items()}
        return [names.get((a["resourceId"], a["appRoleId"].lower()), a["appRoleId"]) for a in assignments]

    @step_outcome("directoryRole")
    async def ensure_directory_role(self, service_principal_id: str, permission_changes: dict | None = None) -> dict:
        """The directory roles of our service principal, reconciled to the request: the requested role assigned
        at tenant scope (read first, posted only if missing), every other role assignment of it removed
        (DELETE /roleManagement/directory/roleAssignments/{id}, RoleManagement.ReadWrite.Directory).

        Any role, not only the catalog's: the service principal is certauth's own object, the request is its
        desired state, and the record must say what it holds; removing a role never widens access.
        `permission_changes`, when given, is the consent step's part of this run's Changes; the orchestrator runs
        the two steps at once instead, each merging its part into the record's Changes (merge_changes)."""
        role_key = self.request.get("directoryRole")
        role = catalog.directory_role(role_key) if role_key else None

        async def work(directory: Directory) -> dict:
            try:
                held = await directory.directory_role_assignments(service_principal_id)
            except GraphError as error:
                if role is not None or error.status != 403:
                    raise
                # No role asked for and none readable (the app was consented without RoleManagement): nothing to
                # assign, and nothing certauth could have assigned without that permission either.
                log.warning("onboarding %s: directory roles not readable (%s); none requested", self.id, error.code)
                held = []
            wanted = [a for a in held if role is not None and a["roleDefinitionId"].lower() == role.template_id
                      and a["directoryScopeId"] == "/"]
            extra = [a for a in held if a not in wanted]
            added = False
            if role is not None and not wanted:
                added = await directory.assign_directory_role(service_principal_id, role.template_id)
            await asyncio.gather(*(directory.unassign_directory_role(a["id"]) for a in extra))
            removed = sorted({await self._role_name(directory, a["roleDefinitionId"]) for a in extra})
            own = {"directoryRoleAdded": role.display_name if added else None, "directoryRolesRemoved": removed}
            changes = {**NO_CHANGES, **(permission_changes or {}), **own}
            if role is None:
                event = "directoryRole.removed" if removed else "directoryRole.none"
            else:
                event = "directoryRole.assigned" if added else "directoryRole.exists"
            details = {"RoleTemplateId": role.template_id} if role else {}
            await self.aprogress("directoryRole", {"DirectoryRole": role.display_name if role else ""},
                                 event, {**details, "Removed": json.dumps(removed)},
                                 changes={**(permission_changes or {}), **own})
            return {"ok": True, "role": role.display_name if role else None,
                    "roleTemplateId": role.template_id if role else None, "added": added, "removed": removed,
                    "changes": changes}

        return await self._with_directory("directoryRole", work)

    @staticmethod
    async def _role_name(directory: Directory, role_definition_id: str) -> str:
        """A directory role's display name: the catalog's, else the tenant's role definition."""
        known = next((r for r in catalog.DIRECTORY_ROLES.values() if r.template_id == role_definition_id.lower()),
                     None)
        return known.display_name if known else await directory.role_display_name(role_definition_id)

    # -- 6. proof ------------------------------------------------------------------------------------------
    @step_outcome("proof")
    def prove(self, application: dict, certificate: dict, now: datetime | None = None) -> dict:
        """Get app-only tokens with the new certificate (signed in Key Vault) and check their roles; then the
        Exchange proof (shared/exchange.py) of the directory role. `now` is the orchestration's time of this attempt
        (the role-propagation window is measured on that clock). The result's `exchange` says what Exchange proved;
        a role Exchange still refuses after the window gives {"ok": False, "needsAttention": [...], "error"}."""
        import jwt

        info = CertificateInfo(**certificate)
        vault = self._vault()
        der = base64.b64decode(info.cer)
        assertion = keyvault_signed_assertion(
            self.settings, self.tenant_id, application["appId"], der,
            lambda digest: vault.sign(info.key_id, "RS256", digest, der))
        credential = onboarded_app_credential(self.settings, self.tenant_id, application["appId"], assertion)
        by_resource = self.profile.by_resource()

        def token_roles(resource: str) -> list[str]:
            # New credentials and consent take a while to reach every token-issuing replica: Entra's answers
            # meanwhile (AADSTS700027, AADSTS7000229) are transient for the classifier.
            token = credential.get_token(f"{_resource_uri(self.settings, resource)}/.default").token
            # Only the claims are read (and never stored): the token itself stays in this frame.
            claims = jwt.decode(token, options={"verify_signature": False})
            del token
            return claims.get("roles", [])

        # One signature serves both token requests (the assertion is reused for minutes): signed first, then the
        # resources' tokens are asked for at once, each needing nothing from the other.
        assertion()
        with ThreadPoolExecutor(max_workers=len(by_resource), thread_name_prefix="proof") as pool:
            granted = list(pool.map(token_roles, by_resource))
        roles: dict[str, list[str]] = {}
        missing: list[str] = []
        for (resource, permissions), held in zip(by_resource.items(), granted, strict=True):
            roles[catalog.RESOURCE_NAMES.get(resource, resource)] = sorted(held)
            missing += [p.value for p in permissions if p.value not in held]
        if missing:
            raise Transient(f"token roles do not include {sorted(missing)} yet", REPLICATION, "RolesNotInTokenYet")
        proof = self._exchange_proof(credential, now or datetime.now(UTC))
        if not proof.get("ok", True):
            return proof
        self.progress("proof", {"ProofRoles": json.dumps(roles), "ExchangeProof": json.dumps(proof),
                                "ExchangeRoleRefusedSince": ""},
                      "proof.succeeded", {"Roles": json.dumps(roles), "ExchangeProof": proof["outcome"]})
        return {"ok": True, "roles": roles, "exchange": proof}

    def _exchange_proof(self, credential, now: datetime) -> dict:
        """The Exchange proof's outcome {"outcome", "detail"}, or the needs-attention result once Exchange has
        refused the role for the whole role-propagation window. `credential` is this attempt's own (a new token:
        Exchange reads the role from the token). The window starts at the run's first refusal, kept in the record
        (`ExchangeRoleRefusedSince`, with the run it belongs to) so that every attempt measures from it."""
        planned = exchange.proof_plan(self.profile, self.request.get("directoryRole"))
        if planned is not None:
            return planned
        try:
            exchange.get_organization_config(self.settings, self.tenant_id, credential)
        except exchange.ExchangeAdminError as error:
            if not error.role_not_supported:
                raise
            run = self.request.get("runStartedAt", "")
            stored = self.store.get_onboarding(self.id)
            since = _loads_dict((stored.entity if stored else {}).get("ExchangeRoleRefusedSince"))
            if since.get("run") == run and since.get("at"):
                first_refused = parse_time(since["at"])
            else:
                first_refused = now
                self.store.merge_onboarding(self.id, {"ExchangeRoleRefusedSince": json.dumps(
                    {"run": run, "at": now.isoformat()})})
            if exchange.within_role_window(first_refused, now):
                error.retry_until = first_refused + exchange.ROLE_PROPAGATION_WINDOW
                raise
            result = exchange.role_needs_attention(error, first_refused, now)
            log.error("onboarding %s: %s", self.id, result["error"]["message"])
            # A later verify (or run) starts a new window: the admin may just have assigned the role.
            self.progress("proof", {"ExchangeProof": json.dumps(exchange.REFUSED), "ExchangeRoleRefusedSince": ""},
                          "proof.exchangeRoleRefused", {"Error": json.dumps(result["error"])})
            return result
        return dict(exchange.PROVEN)

    @step_outcome("record")
    def complete(self, summary: dict, fields: dict | None = None) -> dict:
        """Mark the onboarding completed, with `fields` (what the manual method's verification found) in the same
        write."""
        now = datetime.now(UTC)
        self.store.update_onboarding(self.id, lambda _: {**(fields or {}), "Status": "completed", "Step": "record",
                                                         "UpdatedAt": now, "CompletedAt": now, "Error": ""})
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


def merge_changes(consent: dict | None, role: dict | None) -> dict:
    """One run's Changes from the consent step's (permissions) and the directory role step's (roles)."""
    consent, role = consent or {}, role or {}
    return {**NO_CHANGES,
            **{key: role[key] for key in ("directoryRoleAdded", "directoryRolesRemoved") if key in role},
            **{key: consent[key] for key in ("permissionsAdded", "permissionsRemoved") if key in consent}}


def _loads_dict(text: str | None) -> dict:
    """A record's JSON field as a dict ({} when absent or unreadable)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _resource_uri(settings: Settings, resource_app_id: str) -> str:
    """The token audience of a resource in this cloud (the appId itself for resources we do not name)."""
    return {catalog.MICROSOFT_GRAPH: settings.graph_resource,
            catalog.EXCHANGE_ONLINE: settings.exchange_resource}.get(resource_app_id, resource_app_id)
