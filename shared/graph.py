"""Microsoft Graph operations of onboarding, with msgraph-sdk (async). Every write is an upsert or a
read-then-write, so running a step twice changes nothing the second time.

msgraph-sdk is heavy (hundreds of MB, thousands of modules): it is imported inside functions, never at
module import, to keep the Function App's cold start small. Its request builders make every request; the answers
are read as shared/graph_answers.py's Answer, not msgraph's models (whose first object imports the model tree).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .settings import Settings

log = logging.getLogger(__name__)

RESOURCE_ROLES_TTL = 3600.0  # seconds a resource service principal's app roles are reused


# Errors Graph answers while a new object has not replicated yet (REFERENCE.md, "Directory replication").
_REPLICATION_MESSAGES = (
    "does not reference a valid application object",
    "not a valid reference update",
    "does not exist or one of its queried reference-property objects are not present",
)
_REPLICATION_CODES = {"NoBackingApplicationObject"}
# Graph's answer to a duplicate app role assignment (a retried POST whose first attempt landed).
_DUPLICATE_ASSIGNMENT = "permission being assigned already exists"
_DUPLICATE_OBJECT = "conflicting object"


@dataclass
class GraphError(Exception):
    """A Graph call that failed after the SDK's own retries (429/503/504 are retried there)."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    @property
    def is_replication(self) -> bool:
        """The directory has not replicated an object we just created: retry later."""
        text = self.message.lower()
        return self.code in _REPLICATION_CODES or any(m in text for m in _REPLICATION_MESSAGES)

    def to_json(self) -> dict:
        """JSON-safe (orchestration history, status): status, Graph code and message."""
        return {"status": self.status, "code": self.code, "message": self.message}


def graph_error_of(exc: BaseException) -> GraphError | None:
    """Graph's answer carried by an exception (kiota's APIError, msgraph's ODataError), or None for any other."""
    if isinstance(exc, GraphError):
        return exc
    try:
        from kiota_abstractions.api_error import APIError
    except ImportError:  # pragma: no cover - kiota comes with msgraph-sdk
        return None
    if not isinstance(exc, APIError):
        return None
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or "UnknownError"
    message = getattr(error, "message", None) or str(exc)
    return GraphError(getattr(exc, "response_status_code", None) or 0, code, message)


def _graph_error(exc: Exception) -> GraphError:
    error = graph_error_of(exc)
    if error is None:
        raise exc
    return error


def graph_client(settings: Settings, credential):
    """A GraphServiceClient on the configured Graph endpoint; tokens go only to that host."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient

    provider = AzureIdentityAuthenticationProvider(credential, scopes=[f"{settings.graph_resource}/.default"],
                                                   allowed_hosts=[settings.graph_host])
    adapter = GraphRequestAdapter(provider)
    adapter.base_url = settings.graph_base_url
    return GraphServiceClient(request_adapter=adapter)


def _prefer_create_if_missing():
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    config = RequestConfiguration()
    config.headers.add("Prefer", "create-if-missing")
    return config


@dataclass
class _ODataQuery:
    """OData system query options, in the shape kiota reads query parameters from."""

    filter: str | None = None
    select: list[str] | None = None

    def get_query_parameter(self, original_name: str) -> str:
        """kiota's hook: the wire name of a parameter ($filter, $select)."""
        return f"%24{original_name}"


def _query(filter: str | None = None, select: list[str] | None = None):
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    config = RequestConfiguration()
    config.query_parameters = _ODataQuery(filter=filter, select=select)
    return config


def _own_path(client) -> tuple:
    """The request adapter and a copy of the client's path parameters, for an alternate-key request builder.

    msgraph-sdk 1.65's `applications_with_unique_name()` / `service_principals_with_app_id()` hand the client's
    own path-parameter dict to the builder, which writes its key into it; the URL is built only when the request
    is sent. Concurrent upserts on one shared client would then send each other's key (two mailboxes, one app)."""
    return client.request_adapter, dict(client.path_parameters)


_directories: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def directory_for(settings: Settings, tenant_id: str) -> Directory:
    """Graph in one tenant through the product's identity. The msgraph client (its httpx connection pool)
    belongs to the running event loop, so it is shared per loop; the credential is shared per process."""
    from .credentials import provisioner_credential

    loop = asyncio.get_running_loop()
    per_loop = _directories.setdefault(loop, {})
    key = (settings, tenant_id)
    directory = per_loop.get(key)
    if directory is None:
        credential = OffLoopCredential(provisioner_credential(settings, tenant_id))
        directory = per_loop[key] = Directory(graph_client(settings, credential))
    return directory


class OffLoopCredential:
    """A sync TokenCredential offered to msgraph as an async one: a token request that misses the cache
    (managed identity, then the token endpoint) runs in a worker thread, not on the event loop."""

    def __init__(self, credential) -> None:
        self._credential = credential

    async def get_token(self, *scopes: str, **kwargs):
        """The wrapped credential's token, fetched off the event loop."""
        return await asyncio.to_thread(self._credential.get_token, *scopes, **kwargs)


class Directory:
    """Graph operations in one tenant, through one client (one per event loop)."""

    def __init__(self, client) -> None:
        self.client = client
        # Resource service principals (Microsoft Graph has hundreds of app roles) change rarely: read once
        # per RESOURCE_ROLES_TTL, so a long-lived worker still sees app roles Microsoft adds.
        self._resources: dict[str, tuple[float, tuple[str, dict[str, str]]]] = {}

    async def _call(self, awaitable):
        try:
            return await awaitable
        except Exception as exc:
            raise _graph_error(exc) from exc

    async def _send(self, request_information):
        """Send what a request builder's to_*_request_information made; Graph's answer as an Answer (None: no body)."""
        # Not as msgraph's model: its first Entity object imports ~1,200 model modules (shared/graph_answers.py).
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        from .graph_answers import Answer

        return await self._call(self.client.request_adapter.send_async(request_information, Answer,
                                                                       {"XXX": ODataError}))

    async def _every_item(self, first_page) -> list:
        """The items of a collection: its first page and every page its @odata.nextLink leads to (Graph pages
        directory objects, 100 by default; learn.microsoft.com/graph/paging)."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph_core import PageIterator

        if first_page is None or first_page.value is None:
            return []
        items: list = []

        def keep(item) -> bool:
            items.append(item)
            return True  # the iterator stops at the first falsy answer

        iterator = PageIterator(first_page, self.client.request_adapter, error_mapping={"XXX": ODataError})
        await self._call(iterator.iterate(keep))
        return items

    # -- application --------------------------------------------------------------------------------------
    async def upsert_application(self, unique_name: str, display_name: str,
                                 required_resource_access: dict[str, list[str]]) -> dict:
        """Create or update the app registration keyed by uniqueName; returns {id, appId, created}."""
        from msgraph.generated.models.application import Application
        from msgraph.generated.models.required_resource_access import RequiredResourceAccess
        from msgraph.generated.models.resource_access import ResourceAccess

        body = Application(
            display_name=display_name, sign_in_audience="AzureADMyOrg",
            required_resource_access=[
                RequiredResourceAccess(resource_app_id=resource,
                                       resource_access=[ResourceAccess(id=role, type="Role") for role in roles])
                for resource, roles in required_resource_access.items()],
        )
        from msgraph.generated.applications_with_unique_name.applications_with_unique_name_request_builder import (
            ApplicationsWithUniqueNameRequestBuilder,
        )

        builder = ApplicationsWithUniqueNameRequestBuilder(*_own_path(self.client), unique_name)
        created = await self._send(builder.to_patch_request_information(body, _prefer_create_if_missing()))
        app = created or await self._send(builder.to_get_request_information(
            _query(select=["id", "appId", "createdDateTime"])))
        when = app.created_date_time
        return {"id": app.id, "appId": app.app_id, "created": created is not None,
                "createdDateTime": when.astimezone(UTC).isoformat() if when else None}

    async def ensure_certificate_key(self, application_id: str, certificate_der: bytes, not_before: datetime,
                                     not_after: datetime, display_name: str) -> bool:
        """Add the certificate to the app's keyCredentials unless it is there; other keys are kept.

        PATCH replaces the whole collection, and only `$select=keyCredentials` on the app returns the
        existing keys' bytes, so they are read that way and sent back unchanged."""
        from msgraph.generated.models.application import Application
        from msgraph.generated.models.key_credential import KeyCredential

        item = self.client.applications.by_application_id(application_id)
        app = await self._send(item.to_get_request_information(_query(select=["keyCredentials"])))
        existing = list(app.key_credentials or [])
        if any(not k.key for k in existing):
            # PATCH replaces the collection; a key re-sent without its bytes would be dropped or refused.
            raise GraphError(409, "KeyCredentialsIncomplete",
                             "Graph returned an existing keyCredential without its key; not rewriting the "
                             "collection, so no key is lost")
        thumbprint = hashlib.sha1(certificate_der).digest()
        if any(k.custom_key_identifier == thumbprint or (k.key and bytes(k.key) == certificate_der)
               for k in existing):
            return False
        # msgraph-sdk drops a str `key` silently (Graph then answers KeyValue cannot be null): bytes only.
        new_key = KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=certificate_der,
                                display_name=display_name, start_date_time=not_before,
                                end_date_time=not_after, custom_key_identifier=thumbprint)
        await self._send(item.to_patch_request_information(Application(key_credentials=[*existing, new_key])))
        return True

    async def key_credentials(self, application_id: str) -> list[dict]:
        """The app's keyCredentials: {keyId, thumbprint (SHA-1 upper-case hex), startDateTime, endDateTime}.
        Only `$select=keyCredentials` returns the keys' bytes (REFERENCE.md), which give the thumbprint."""
        item = self.client.applications.by_application_id(application_id)
        app = await self._send(item.to_get_request_information(_query(select=["keyCredentials"])))
        keys = []
        for k in (app.key_credentials if app else None) or []:
            if k.key:
                thumbprint = hashlib.sha1(bytes(k.key)).hexdigest().upper()
            else:
                thumbprint = bytes(k.custom_key_identifier or b"").hex().upper()
            keys.append({"keyId": str(k.key_id), "thumbprint": thumbprint,
                         "startDateTime": k.start_date_time, "endDateTime": k.end_date_time})
        return keys

    async def add_key(self, application_id: str, certificate_der: bytes, not_before: datetime, not_after: datetime,
                      display_name: str, proof: str) -> str:
        """POST /applications/{id}/addKey as the app itself (no permission needed; learn.microsoft.com/graph/api/
        application-addkey); returns the new keyId."""
        from msgraph.generated.applications.item.add_key.add_key_post_request_body import AddKeyPostRequestBody
        from msgraph.generated.models.key_credential import KeyCredential

        key = KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=certificate_der, display_name=display_name,
                            start_date_time=not_before, end_date_time=not_after,
                            custom_key_identifier=hashlib.sha1(certificate_der).digest())
        body = AddKeyPostRequestBody(key_credential=key, password_credential=None, proof=proof)
        added = await self._call(self.client.applications.by_application_id(application_id).add_key.post(body))
        return str(added.key_id) if added is not None and added.key_id else ""

    async def remove_key(self, application_id: str, key_id: str, proof: str) -> bool:
        """POST /applications/{id}/removeKey as the app itself (application-removekey); False when the key is
        gone already."""
        from msgraph.generated.applications.item.remove_key.remove_key_post_request_body import (
            RemoveKeyPostRequestBody,
        )

        body = RemoveKeyPostRequestBody(key_id=uuid.UUID(key_id), proof=proof)
        try:
            await self._call(self.client.applications.by_application_id(application_id).remove_key.post(body))
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True

    # -- tenant app management policy ---------------------------------------------------------------------
    async def key_lifetime_cap(self, now: datetime) -> timedelta | None:
        """The longest certificate lifetime the tenant's default app management policy lets a new app's
        keyCredentials have (its enabled asymmetricKeyLifetime restrictions in force at `now`), or None.
        One GET /policies/defaultAppManagementPolicy (Policy.Read.All; learn.microsoft.com/graph/api/
        tenantappmanagementpolicy-get, resources/keycredentialconfiguration)."""
        policy = await self._send(self.client.policies.default_app_management_policy.to_get_request_information())
        if policy is None or not policy.is_enabled or policy.application_restrictions is None:
            return None
        caps = []
        for restriction in policy.application_restrictions.key_credentials or []:
            kind, state = (getattr(v, "value", v) for v in (restriction.restriction_type, restriction.state))
            since = restriction.restrict_for_apps_created_after_date_time
            if kind != "asymmetricKeyLifetime" or state == "disabled" or restriction.max_lifetime is None:
                continue
            if since is not None and (since if since.tzinfo else since.replace(tzinfo=UTC)) > now:
                continue  # binds apps created after that date only; ours is created now
            caps.append(restriction.max_lifetime)
        return min(caps, default=None)

    # -- service principals ---------------------------------------------------------------------------------
    async def upsert_service_principal(self, app_id: str) -> dict:
        """Create the app's service principal if missing; returns {id, created}."""
        from msgraph.generated.models.service_principal import ServicePrincipal
        from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
            ServicePrincipalsWithAppIdRequestBuilder,
        )

        builder = ServicePrincipalsWithAppIdRequestBuilder(*_own_path(self.client), app_id)
        created = await self._send(builder.to_patch_request_information(ServicePrincipal(),
                                                                        _prefer_create_if_missing()))
        sp = created or await self._send(builder.to_get_request_information(_query(select=["id", "appId"])))
        return {"id": sp.id, "created": created is not None}

    async def resource_roles(self, resource_app_id: str) -> tuple[str, dict[str, str]]:
        """The resource's service principal id in this tenant and its app roles (value → id)."""
        cached = self._resources.get(resource_app_id)
        if cached is not None and time.monotonic() - cached[0] < RESOURCE_ROLES_TTL:
            return cached[1]
        result = await self._send(self.client.service_principals.to_get_request_information(_query(
            filter=f"appId eq '{resource_app_id}'", select=["id", "appId", "appRoles"])))
        if not result or not result.value:
            raise GraphError(404, "ResourceNotFound", f"no service principal for resource {resource_app_id}")
        sp = result.value[0]
        roles = {role.value: str(role.id) for role in (sp.app_roles or []) if role.value}
        self._resources[resource_app_id] = (time.monotonic(), (sp.id, roles))
        return sp.id, roles

    async def app_role_assignments(self, principal_id: str) -> list[dict]:
        """The app role assignments granted to the principal: [{id, resourceId, appRoleId}]."""
        first = await self._send(self.client.service_principals.by_service_principal_id(principal_id)
                                 .app_role_assignments.to_get_request_information())
        return [{"id": a.id, "resourceId": str(a.resource_id), "appRoleId": str(a.app_role_id)}
                for a in await self._every_item(first)]

    async def granted_roles(self, principal_id: str) -> set[tuple[str, str]]:
        """(resourceId, appRoleId) pairs already granted to the principal."""
        return {(a["resourceId"], a["appRoleId"]) for a in await self.app_role_assignments(principal_id)}

    async def app_roles_of(self, resource_sp_id: str) -> dict[str, str]:
        """The app roles (id → value) of a resource service principal given by object id."""
        sp = await self._send(self.client.service_principals.by_service_principal_id(resource_sp_id)
                              .to_get_request_information(_query(select=["id", "appId", "appRoles"])))
        return {str(role.id): role.value for role in (sp.app_roles or []) if role.value}

    async def revoke_role(self, principal_id: str, assignment_id: str) -> bool:
        """Remove one app role assignment of the principal (revokes that application permission); False when it
        was gone already. DELETE /servicePrincipals/{id}/appRoleAssignments/{id}, AppRoleAssignment.ReadWrite.All
        (learn.microsoft.com/graph/api/serviceprincipal-delete-approleassignments)."""
        try:
            await self._call(self.client.service_principals.by_service_principal_id(principal_id)
                             .app_role_assignments.by_app_role_assignment_id(assignment_id).delete())
        except GraphError as error:
            if error.status == 404:
                return False  # a retried attempt whose first one removed it
            raise
        return True

    async def grant_role(self, resource_sp_id: str, principal_id: str, app_role_id: str) -> bool:
        """Admin consent for one application permission; False when it already existed."""
        from msgraph.generated.models.app_role_assignment import AppRoleAssignment

        body = AppRoleAssignment(principal_id=principal_id, resource_id=resource_sp_id, app_role_id=app_role_id)
        try:
            await self._send(self.client.service_principals.by_service_principal_id(resource_sp_id)
                             .app_role_assigned_to.to_post_request_information(body))
        except GraphError as error:
            if error.status == 400 and _DUPLICATE_ASSIGNMENT in error.message.lower():
                return False  # a retried POST whose first attempt landed
            raise
        return True

    # -- directory roles --------------------------------------------------------------------------------------
    async def directory_role_assignments(self, principal_id: str) -> list[dict]:
        """The principal's directory role assignments, any role and scope: [{id, roleDefinitionId,
        directoryScopeId}] (principalId supports $filter eq: learn.microsoft.com/graph/api/resources/
        unifiedroleassignment)."""
        first = await self._send(self.client.role_management.directory.role_assignments.to_get_request_information(
            _query(filter=f"principalId eq '{_guid(principal_id)}'")))
        return [{"id": a.id, "roleDefinitionId": str(a.role_definition_id),
                 "directoryScopeId": a.directory_scope_id or "/"} for a in await self._every_item(first)]

    async def unassign_directory_role(self, assignment_id: str) -> bool:
        """Remove one directory role assignment; False when it was gone already. DELETE
        /roleManagement/directory/roleAssignments/{id}, RoleManagement.ReadWrite.Directory
        (learn.microsoft.com/graph/api/unifiedroleassignment-delete)."""
        try:
            await self._call(self.client.role_management.directory.role_assignments
                             .by_unified_role_assignment_id(assignment_id).delete())
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def role_display_name(self, role_definition_id: str) -> str:
        """A directory role's display name (GET /roleManagement/directory/roleDefinitions/{id})."""
        definition = await self._send(self.client.role_management.directory.role_definitions
                                      .by_unified_role_definition_id(role_definition_id).to_get_request_information())
        return (definition.display_name if definition else None) or role_definition_id

    async def assign_directory_role(self, principal_id: str, role_definition_id: str) -> bool:
        """Assign the role at directory scope; False when it already existed."""
        from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment

        body = UnifiedRoleAssignment(principal_id=principal_id, role_definition_id=role_definition_id,
                                     directory_scope_id="/")
        try:
            await self._send(self.client.role_management.directory.role_assignments.to_post_request_information(body))
        except GraphError as error:
            if error.status == 400 and _DUPLICATE_OBJECT in error.message.lower():
                return False
            raise
        return True

    # -- offboarding: find, delete, restore, delete permanently -------------------------------------------
    # Every delete answers False when the object is gone already (Graph's 404): an activity re-run after its
    # write landed converges instead of failing.
    async def application_by_unique_name(self, unique_name: str) -> dict | None:
        """The live app registration with this uniqueName ({id, appId}), or None (GET /applications(uniqueName=
        '…'): Application.Read.All, or Application.ReadWrite.OwnedBy for its own; application-get)."""
        from msgraph.generated.applications_with_unique_name.applications_with_unique_name_request_builder import (
            ApplicationsWithUniqueNameRequestBuilder,
        )

        builder = ApplicationsWithUniqueNameRequestBuilder(*_own_path(self.client), unique_name)
        try:
            app = await self._send(builder.to_get_request_information(_query(select=["id", "appId"])))
        except GraphError as error:
            if error.status == 404:
                return None
            raise
        return {"id": app.id, "appId": app.app_id} if app else None

    async def service_principal_by_app_id(self, app_id: str) -> dict | None:
        """The live service principal of an appId ({id, appId}), or None (GET /servicePrincipals(appId='…'))."""
        from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
            ServicePrincipalsWithAppIdRequestBuilder,
        )

        builder = ServicePrincipalsWithAppIdRequestBuilder(*_own_path(self.client), _guid(app_id))
        try:
            sp = await self._send(builder.to_get_request_information(_query(select=["id", "appId"])))
        except GraphError as error:
            if error.status == 404:
                return None
            raise
        return {"id": sp.id, "appId": sp.app_id} if sp else None

    async def delete_service_principal(self, service_principal_id: str) -> bool:
        """DELETE /servicePrincipals/{id}: to deleted items (serviceprincipal-delete; Application.ReadWrite.OwnedBy
        for one it owns, or Application.ReadWrite.All)."""
        return await self._delete(self.client.service_principals.by_service_principal_id(service_principal_id))

    async def delete_application(self, application_id: str) -> bool:
        """DELETE /applications/{id}: to deleted items, restorable for 30 days (application-delete;
        Application.ReadWrite.OwnedBy for one it owns, or Application.ReadWrite.All)."""
        return await self._delete(self.client.applications.by_application_id(application_id))

    async def delete_permanently(self, object_id: str) -> bool:
        """DELETE /directory/deletedItems/{id}: gone for good, no restore. Application permission for an
        application or a servicePrincipal: Application.ReadWrite.OwnedBy (least privileged; learn.microsoft.com/
        graph/api/directory-deleteditems-delete, Permissions), or Application.ReadWrite.All."""
        return await self._delete(self.client.directory.deleted_items.by_directory_object_id(object_id))

    async def _delete(self, item) -> bool:
        try:
            await self._call(item.delete())
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def deleted_applications(self, unique_name: str) -> list[dict]:
        """Soft-deleted apps with this uniqueName: [{id, appId, deletedDateTime}] (GET /directory/deletedItems/
        microsoft.graph.application?$filter=uniqueName eq '…'; Application.Read.All; directory-deleteditems-list)."""
        first = await self._send(self.client.directory.deleted_items.graph_application.to_get_request_information(
            _query(filter=f"uniqueName eq {odata_string(unique_name)}",
                   select=["id", "appId", "uniqueName", "deletedDateTime"])))
        return [{"id": a.id, "appId": a.app_id, "deletedDateTime": _iso_or_none(a.deleted_date_time)}
                for a in await self._every_item(first) if (a.unique_name or "").lower() == unique_name.lower()]

    async def deleted_service_principals(self, app_id: str) -> list[dict]:
        """Soft-deleted service principals of an appId: [{id, appId, deletedDateTime}]."""
        first = await self._send(self.client.directory.deleted_items.graph_service_principal.to_get_request_information(
            _query(filter=f"appId eq '{_guid(app_id)}'", select=["id", "appId", "deletedDateTime"])))
        return [{"id": s.id, "appId": s.app_id, "deletedDateTime": _iso_or_none(s.deleted_date_time)}
                for s in await self._every_item(first)]

    async def restore_deleted(self, object_id: str) -> bool:
        """POST /directory/deletedItems/{id}/restore (directory-deleteditems-restore; Application.ReadWrite.OwnedBy
        for one it owns). Restoring an application does not restore its service principal. False when the item is
        not in deleted items (404)."""
        try:
            await self._send(self.client.directory.deleted_items.by_directory_object_id(object_id)
                             .restore.to_post_request_information())
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True


async def certificate_lifetime_cap(settings: Settings, tenant_id: str) -> timedelta | None:
    """The tenant's cap on new certificate lifetimes, read with the product's identity in that tenant; None when
    there is none or it cannot be read (no Policy.Read.All: 403; anything else is logged). Never raises: an
    unknown cap leaves the request as it is, and Graph still refuses a key that breaks the policy."""
    try:
        return await directory_for(settings, tenant_id).key_lifetime_cap(datetime.now(UTC))
    except GraphError as error:
        if error.status in (401, 403):
            log.info("app management policy of tenant %s not readable (%s): no cap known", tenant_id, error.code)
        else:
            log.warning("app management policy of tenant %s not read: %s", tenant_id, error)
    except Exception as error:  # a token for the tenant (consent not given yet), the network
        log.warning("app management policy of tenant %s not read: %s: %s", tenant_id, type(error).__name__,
                    str(error).split(" Trace ID")[0][:300])
    return None


def _iso_or_none(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def odata_string(value: str) -> str:
    """`value` as an OData string literal ($filter): in single quotes, each single quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def _guid(value: str) -> str:
    """A GUID in canonical form (raises ValueError otherwise): the only thing put into an OData filter."""
    return str(uuid.UUID(value))


def certificate_der(cer_b64: str) -> bytes:
    """DER bytes of a certificate given as base64 (Key Vault's `cer`)."""
    return base64.b64decode(cer_b64)
