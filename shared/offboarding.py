"""Offboarding: undo an onboarding (DESIGN.md, "Offboarding") as plain steps over JSON-safe dicts.

Automatic method, in this order, each step idempotent (Graph's 404 on a DELETE means an earlier attempt did it):
1. the directory role assignments of the app's service principal (DELETE /roleManagement/directory/roleAssignments/
   {id}: RoleManagement.ReadWrite.Directory);
2. its app role assignments, the admin consent (DELETE /servicePrincipals/{id}/appRoleAssignments/{id}:
   AppRoleAssignment.ReadWrite.All);
3. the service principal, and 4. the application (DELETE /servicePrincipals/{id}, DELETE /applications/{id}:
   Application.ReadWrite.OwnedBy covers both, the onboarding app owns what its upserts created). Graph moves both to
   /directory/deletedItems, restorable for 30 days; with `permanent` they are then deleted from there too
   (DELETE /directory/deletedItems/{id}: Application.ReadWrite.OwnedBy, learn.microsoft.com/graph/api/
   directory-deleteditems-delete);
5. the Key Vault certificate: soft-deleted (recoverable for the vault's retention); with `permanent` purged where
   the vault allows it (a vault with purge protection keeps it until its retention ends: reported, not failed);
then the records say `retired` (kept for audit) and the certificate leaves the expiry index.

The manual method: certauth has no write permission in the tenant. The admin runs the removal script
(shared/powershell.py removal_script); the verifier (GETs only, like shared/verify.py) then confirms that the app and
its service principal are gone (and, with `permanent`, not in deleted items either); then step 5 and the records.

Re-onboarding after an offboarding: the soft-deleted app keeps its uniqueName for 30 days (Graph refuses the upsert:
400 "Another object with the same value for property uniqueName already exists."), so the application step restores
the app that certauth's own offboarding deleted (:func:`upsert_after_offboarding`), and goes on with it (same appId;
Graph does not restore its service principal with it: the next step makes a new one). An app an administrator
deleted by hand is not brought back: the record names no offboarding of it.

Nothing here returns or logs key material or tokens: ids, names, dates only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

from .graph import Directory, GraphError, directory_for
from .keyvault import certificate_name, vault_for
from .onboarding import application_display_name, application_unique_name, step_outcome
from .settings import Settings
from .state import StateStore, state_store

log = logging.getLogger(__name__)

OFFBOARDING_PREFIX = "offboarding-"
# The offboarding's lifecycle (the record's Offboarding.state, the status URL's `status`).
RUNNING, WAITING, RETIRED, FAILED, EXPIRED = "running", "waitingForAdmin", "retired", "failed", "expired"
ACTIVE_STATES = (RUNNING, WAITING)
STEPS = ("directoryRoles", "appRoleAssignments", "servicePrincipal", "application", "deletedItems", "certificate",
         "record")


def offboarding_instance_id(onboarding_id: str) -> str:
    """The offboarding's deterministic Durable instance id: one offboarding per onboarding at a time."""
    return f"{OFFBOARDING_PREFIX}{onboarding_id}"


def offboarding_of(record: dict | None) -> dict:
    """The record's Offboarding field ({} when none or unreadable)."""
    try:
        value = json.loads((record or {}).get("Offboarding") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def offboarding_request(onboarding_id: str, record: dict, permanent: bool, run_started_at: str) -> dict:
    """The orchestration's request: what identifies the pair and its objects (no secrets)."""
    return {"onboardingId": onboarding_id, "tenantId": record["TenantId"], "serviceMailbox": record["ServiceMailbox"],
            "method": record.get("Method") or "automatic", "permanent": bool(permanent),
            "appId": record.get("AppId") or None, "applicationObjectId": record.get("ApplicationObjectId") or None,
            "directoryRole": record.get("DirectoryRole") or None,
            "certificateName": record.get("CertificateName") or certificate_name(onboarding_id),
            "runStartedAt": run_started_at}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Offboarding:
    """Runs the offboarding steps of one onboarding (the orchestration's request)."""

    def __init__(self, settings: Settings, request: dict, store: StateStore | None = None) -> None:
        self.settings = settings
        self.request = request
        self.id = request["onboardingId"]
        self.tenant_id = request["tenantId"]
        self.permanent = bool(request.get("permanent"))
        self.unique_name = application_unique_name(self.id)
        self._store = store

    @property
    def store(self) -> StateStore:
        """Table Storage (built on first use)."""
        if self._store is None:
            self._store = state_store(self.settings)
        return self._store

    def _audit_key(self, step: str) -> str:
        """One audit entry per step per offboarding run (a retried activity overwrites its own)."""
        run = self.request.get("runStartedAt", "")
        return f"offboarding-{run.replace(':', '').replace('+', 'p')}-{step}"

    def audit(self, step: str, event: str, details: dict | None = None) -> None:
        """An audit entry of this run's step (idempotent)."""
        self.store.audit(self.id, event, datetime.now(UTC), details or {}, key=self._audit_key(step))

    def write_state(self, state: dict, event: str | None = None, details: dict | None = None,
                    fields: dict | None = None) -> dict:
        """The record's Offboarding field (and other fields), with an audit entry when `event` is given."""
        self.store.merge_onboarding(self.id, {"Offboarding": json.dumps(state), "UpdatedAt": datetime.now(UTC),
                                              **(fields or {})})
        if event:
            self.audit(event.split(".", 1)[-1], event, details)
        return {"ok": True}

    async def _directory(self) -> Directory:
        return directory_for(self.settings, self.tenant_id)

    # -- locate ----------------------------------------------------------------------------------------
    @step_outcome("locate")
    async def locate(self) -> dict:
        """What exists of the onboarding in Graph: the live app (by uniqueName, else the recorded object id's
        appId), its live service principal (by appId), and, for a permanent offboarding, the soft-deleted ones."""
        directory = await self._directory()
        app = await directory.application_by_unique_name(self.unique_name)
        app_id = (app or {}).get("appId") or self.request.get("appId")
        sp = await directory.service_principal_by_app_id(app_id) if app_id else None
        found = {"ok": True, "application": app, "appId": app_id, "servicePrincipal": sp}
        log.info("offboarding %s: application %s, service principal %s", self.id, (app or {}).get("id"),
                 (sp or {}).get("id"))
        return found

    # -- 1. directory role assignments -----------------------------------------------------------------------
    @step_outcome("directoryRoles")
    async def remove_directory_roles(self, service_principal_id: str | None) -> dict:
        """Every directory role assignment of the service principal, any role and scope, removed."""
        if not service_principal_id:
            return {"ok": True, "removed": []}
        directory = await self._directory()
        try:
            held = await directory.directory_role_assignments(service_principal_id)
        except GraphError as error:
            if error.status != 403 or self.request.get("directoryRole"):
                raise
            # None recorded and none readable (consented without RoleManagement): none certauth could have made.
            log.warning("offboarding %s: directory roles not readable (%s); none recorded", self.id, error.code)
            held = []
        await asyncio.gather(*(directory.unassign_directory_role(a["id"]) for a in held))
        removed = sorted(a["roleDefinitionId"] for a in held)
        await asyncio.to_thread(self.audit, "directoryRoles", "offboarding.directoryRolesRemoved",
                                {"Removed": json.dumps(removed)})
        return {"ok": True, "removed": removed}

    # -- 2. app role assignments -----------------------------------------------------------------------------
    @step_outcome("appRoleAssignments")
    async def remove_app_role_assignments(self, service_principal_id: str | None) -> dict:
        """Every app role assignment granted to the service principal (the admin consent), removed."""
        if not service_principal_id:
            return {"ok": True, "removed": []}
        directory = await self._directory()
        held = await directory.app_role_assignments(service_principal_id)
        await asyncio.gather(*(directory.revoke_role(service_principal_id, a["id"]) for a in held))
        removed = sorted(a["appRoleId"] for a in held)
        await asyncio.to_thread(self.audit, "appRoleAssignments", "offboarding.appRoleAssignmentsRemoved",
                                {"Removed": json.dumps(removed)})
        return {"ok": True, "removed": removed}

    # -- 3. service principal, 4. application -----------------------------------------------------------------
    @step_outcome("servicePrincipal")
    async def remove_service_principal(self, service_principal_id: str | None) -> dict:
        """The service principal, to Graph's deleted items."""
        if not service_principal_id:
            return {"ok": True, "deleted": None}
        deleted = await (await self._directory()).delete_service_principal(service_principal_id)
        await asyncio.to_thread(self.audit, "servicePrincipal", "offboarding.servicePrincipalDeleted",
                                {"ServicePrincipalId": service_principal_id, "DeletedNow": deleted})
        return {"ok": True, "deleted": service_principal_id}

    @step_outcome("application")
    async def remove_application(self, application_object_id: str | None) -> dict:
        """The app registration, to Graph's deleted items (restorable for 30 days)."""
        if not application_object_id:
            return {"ok": True, "deleted": None}
        deleted = await (await self._directory()).delete_application(application_object_id)
        await asyncio.to_thread(self.audit, "application", "offboarding.applicationDeleted",
                                {"ApplicationObjectId": application_object_id, "DeletedNow": deleted})
        return {"ok": True, "deleted": application_object_id}

    @step_outcome("deletedItems")
    async def delete_permanently(self, app_id: str | None) -> dict:
        """`permanent`: the app (by uniqueName) and its service principals (by appId) out of deleted items too."""
        directory = await self._directory()
        apps = await directory.deleted_applications(self.unique_name)
        app_ids = {a["appId"] for a in apps} | ({app_id} if app_id else set())
        sps = [s for found in await asyncio.gather(*(directory.deleted_service_principals(a) for a in sorted(app_ids)))
               for s in found]
        # The service principals first: an app's deletion must not wait on them, and they reference it.
        for sp in sps:
            await directory.delete_permanently(sp["id"])
        for app in apps:
            await directory.delete_permanently(app["id"])
        gone = [s["id"] for s in sps] + [a["id"] for a in apps]
        await asyncio.to_thread(self.audit, "deletedItems", "offboarding.deletedPermanently",
                                {"ObjectIds": json.dumps(gone)})
        return {"ok": True, "deletedPermanently": gone}

    # -- 5. the certificate ------------------------------------------------------------------------------------
    @step_outcome("certificate")
    def remove_certificate(self) -> dict:
        """The Key Vault certificate soft-deleted; with `permanent`, purged where the vault allows it."""
        name = self.request.get("certificateName") or certificate_name(self.id)
        vault = vault_for(self.settings)
        result = vault.delete(name)
        if self.permanent and result["state"] != "absent":
            result = vault.purge(name)
        result = {"name": name, **result}
        self.audit("certificate", "offboarding.certificate" + result["state"][:1].upper() + result["state"][1:],
                   {"CertificateName": name, "State": result["state"], "Note": result.get("note") or ""})
        return {"ok": True, "certificate": result}

    # -- the records -------------------------------------------------------------------------------------------
    @step_outcome("record")
    def retire(self, state: dict) -> dict:
        """The records say retired (kept for audit); the certificate leaves the expiry index."""
        now = datetime.now(UTC)
        stored = self.store.get_onboarding(self.id)
        record = stored.entity if stored else {}
        self.store.unindex_retired_certificate(self.id, record.get("NotAfter"))
        final = {**state, "state": RETIRED, "retiredAt": _iso(now)}
        self.store.merge_onboarding(self.id, {"Status": "retired", "Step": "retired", "RetiredAt": now,
                                              "UpdatedAt": now, "Error": "", "Offboarding": json.dumps(final)})
        self.audit("record", "onboarding.retired", {"Offboarding": json.dumps(final)})
        log.info("onboarding %s retired (permanent: %s)", self.id, self.permanent)
        return {"ok": True, "offboarding": final}

    # -- manual: the read-only check ----------------------------------------------------------------------------
    @step_outcome("verification")
    async def check_removed(self) -> dict:
        """As the verifier (GETs only): what of the onboarding still exists. {"ok", "verifierConsented", "remaining":
        [sentences], "gone": [sentences]}."""
        from . import verify

        consented, reason = await asyncio.to_thread(verify.verifier_consented, self.settings, self.tenant_id)
        if not consented:
            log.info("offboarding %s: the verifier has no token in tenant %s yet: %s", self.id, self.tenant_id, reason)
            return {"ok": True, "verifierConsented": False, "remaining": [], "gone": []}
        directory = verify.verifier_directory(self.settings, self.tenant_id)
        return {"ok": True, "verifierConsented": True, **await removal_findings(
            directory, self.unique_name, application_display_name(self.settings, self.request["serviceMailbox"]),
            self.request.get("appId"), self.permanent)}


async def removal_findings(directory: Directory, unique_name: str, display_name: str, recorded_app_id: str | None,
                           permanent: bool) -> dict:
    """What of an onboarding the directory still holds, read with GETs only: {"remaining": [...], "gone": [...]}."""
    remaining: list[str] = []
    gone: list[str] = []
    app = await directory.application_by_unique_name(unique_name)
    app_ids = {a for a in ((app or {}).get("appId"), recorded_app_id) if a}
    if app is not None:
        remaining.append(f"application {unique_name} ({display_name}, appId {app['appId']}) still exists")
    elif recorded_app_id and await _live_app_by_app_id(directory, recorded_app_id):
        remaining.append(f"application with appId {recorded_app_id} ({display_name}) still exists")
    else:
        gone.append(f"application {unique_name} removed")
    live = [sp for sp in await asyncio.gather(*(directory.service_principal_by_app_id(a) for a in sorted(app_ids)))
            if sp is not None]
    remaining += [f"service principal {sp['id']} (appId {sp['appId']}) still exists" for sp in live]
    if not live:
        gone.append("service principal removed")
    if permanent:
        deleted_apps = await directory.deleted_applications(unique_name)
        app_ids |= {a["appId"] for a in deleted_apps}
        deleted_sps = [s for found in await asyncio.gather(
            *(directory.deleted_service_principals(a) for a in sorted(app_ids))) for s in found]
        remaining += [f"application {a['id']} is in deleted items (permanent removal asked)" for a in deleted_apps]
        remaining += [f"service principal {s['id']} is in deleted items (permanent removal asked)"
                      for s in deleted_sps]
        if not deleted_apps and not deleted_sps:
            gone.append("nothing in deleted items")
    return {"remaining": remaining, "gone": gone, "appIds": sorted(app_ids)}


async def _live_app_by_app_id(directory: Directory, app_id: str) -> bool:
    from .graph import _guid, _query

    found = await directory._send(directory.client.applications.to_get_request_information(_query(
        filter=f"appId eq '{_guid(app_id)}'", select=["id", "appId"])))
    return bool(found and found.value)


async def upsert_after_offboarding(directory: Directory, store: StateStore, onboarding_id: str, unique_name: str,
                                   display_name: str, required: dict[str, list[str]]) -> dict:
    """The application step's upsert, which also re-onboards after certauth's own offboarding: when the soft-deleted
    app that the record's offboarding deleted holds the uniqueName (Graph: 400 "Another object with the same
    value for property uniqueName already exists."), restore it from deleted items (POST /directory/deletedItems/{id}/
    restore, Application.ReadWrite.OwnedBy for the app it owns) and upsert again. Anything else raises as before: an
    app an administrator deleted by hand stays deleted."""
    try:
        return await directory.upsert_application(unique_name, display_name, required)
    except GraphError as error:
        if error.status != 400 or "uniquename already exists" not in error.message.lower().replace("property ", ""):
            raise
        stored = await asyncio.to_thread(store.get_onboarding, onboarding_id)
        offboarding = offboarding_of(stored.entity if stored else None)
        object_id = (offboarding.get("deleted") or {}).get("applicationObjectId")
        # Retired, or failed after its application step: either way certauth deleted this app itself.
        if offboarding.get("state") in ACTIVE_STATES or not object_id or offboarding.get("applicationRestoredAt"):
            raise
        if not await directory.restore_deleted(object_id):
            raise
        log.info("onboarding %s: restored application %s from deleted items (retired by offboarding)", onboarding_id,
                 object_id)
        at = datetime.now(UTC)
        await asyncio.to_thread(store.merge_onboarding, onboarding_id, {"Offboarding": json.dumps(
            {**offboarding, "applicationRestoredAt": _iso(at)})})
        await asyncio.to_thread(store.audit, onboarding_id, "application.restored", at,
                                {"ApplicationObjectId": object_id}, f"restored-{object_id}")
    return await directory.upsert_application(unique_name, display_name, required)

