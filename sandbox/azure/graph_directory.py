"""Graph /roleManagement/directory (role assignments and definitions), /organization and
/users/{id}/sendMail.

Sources (learn.microsoft.com/graph/api/…):
  rbacapplication-post-roleassignments   POST {principalId, roleDefinitionId, directoryScopeId} → 201
                                         unifiedRoleAssignment; RoleManagement.ReadWrite.Directory.
  rbacapplication-list-roleassignments   GET with $filter=principalId eq '…' / roleDefinitionId eq '…' (and).
  unifiedroleassignment-get / -delete (204), rbacapplication-list-roledefinitions, unifiedroledefinition-get.
  organization-list                      GET /organization → collection of one organization.
  user-sendmail                          POST /users/{id | userPrincipalName}/sendMail {message,
                                         saveToSentItems} → 202 Accepted, no body.
Observed behaviour:
  * duplicate role assignment: 400 Request_BadRequest "A conflicting object with one or more of the specified
    property values is present in the directory." (microsoft.py "role_assignment_exists").
  * unifiedRoleAssignment ids for directory roles are base64url(roleDefinitionId bytes) +
    base64url(principalId bytes) + "-1" (e.g. "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1" in the
    rbacapplication-post-roleassignments example: the first 22 characters encode 62e90394-… Global
    Administrator).
  * sendMail recipient errors: 400 ErrorInvalidRecipients "At least one recipient isn't valid., …"
    (microsoftgraph/php-connect-rest-sample#39 for an empty message, ruby-connect-rest-sample#15 for an
    unresolvable recipient).
"""

from __future__ import annotations

import base64
import uuid

from aiohttp import web

from .errors import ServiceError
from .graph_base import (
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
)
from .graph_odata import EntityType
from .graph_sps import check_replicated

ROLE_ASSIGNMENT = EntityType(
    name="unifiedRoleAssignment", resource="UnifiedRoleAssignment",
    properties=frozenset({"id", "appScopeId", "condition", "directoryScopeId", "principalId", "roleDefinitionId"}),
    eq=frozenset({"id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId"}),
    startswith=frozenset(),
    directory_object=False,  # not in aad-advanced-queries' list of directory objects
)
ROLE_DEFINITION = EntityType(
    name="unifiedRoleDefinition", resource="UnifiedRoleDefinition",
    properties=frozenset({"id", "description", "displayName", "isBuiltIn", "isEnabled", "resourceScopes",
                          "rolePermissions", "templateId", "version", "inheritsPermissionsFrom"}),
    eq=frozenset({"id", "displayName", "templateId", "isBuiltIn", "isEnabled"}),
    startswith=frozenset({"displayName"}),
    directory_object=False,
)
ORGANIZATION = EntityType(
    name="organization", resource="Organization",
    properties=frozenset({"id", "displayName", "tenantType", "verifiedDomains", "createdDateTime",
                          "countryLetterCode", "city", "street", "postalCode", "state", "technicalNotificationMails",
                          "assignedPlans", "businessPhones", "deletedDateTime", "onPremisesSyncEnabled",
                          "preferredLanguage", "privacyProfile", "provisionedPlans",
                          "securityComplianceNotificationMails",
                          "securityComplianceNotificationPhones", "marketingNotificationEmails"}),
    eq=frozenset({"id"}),
    startswith=frozenset(),
)


def role_assignment_id(role_definition_id: str, principal_id: str) -> str:
    """Graph's deterministic id for a directory-scoped role assignment (see module docstring)."""
    def enc(guid: str) -> str:
        return base64.urlsafe_b64encode(uuid.UUID(guid).bytes_le).decode().rstrip("=")
    return f"{enc(role_definition_id)}{enc(principal_id)}-1"


# -- role assignments ----------------------------------------------------------------------------------

@route("GET", r"/roleManagement/directory/roleAssignments")
async def list_role_assignments(ctx: Ctx) -> web.StreamResponse:
    ctx.require("roleManagement.roleAssignments.list")
    return list_response(ctx, list(ctx.tenant.role_assignments.values()), ROLE_ASSIGNMENT,
                         "roleManagement/directory/roleAssignments")


@route("POST", r"/roleManagement/directory/roleAssignments")
async def create_role_assignment(ctx: Ctx) -> web.StreamResponse:
    ctx.require("roleManagement.roleAssignments.create")
    body = await ctx.body()
    check_properties(body, ROLE_ASSIGNMENT.properties, "unifiedRoleAssignment")
    for name in ("principalId", "roleDefinitionId"):
        if body.get(name) is None:
            raise graph_error("invalid_value", name=name, resource="UnifiedRoleAssignment")
    principal_id = guid_property(body["principalId"])
    role_definition_id = guid_property(body["roleDefinitionId"])
    # directoryScopeId is required ("/" = tenant-wide; "/administrativeUnits/{id}" is not modelled).
    if body.get("directoryScopeId") != "/" or body.get("appScopeId") not in (None,):
        raise graph_error("invalid_value", name="directoryScopeId", resource="UnifiedRoleAssignment")
    tenant = ctx.tenant
    definition = tenant.role_definitions.get(role_definition_id)
    if definition is None:
        raise not_found(role_definition_id)
    principal = tenant.service_principals.get(principal_id)
    if principal is None:
        raise not_found(principal_id)
    check_replicated(ctx, principal)
    for existing in tenant.role_assignments.values():
        if (existing["principalId"], existing["roleDefinitionId"], existing["directoryScopeId"]) == \
                (principal_id, role_definition_id, "/"):
            raise graph_error("role_assignment_exists")
    assignment = {
        "id": role_assignment_id(role_definition_id, principal_id),
        "principalId": principal_id, "roleDefinitionId": role_definition_id, "directoryScopeId": "/",
        "appScopeId": None, "condition": None,
    }
    tenant.role_assignments[assignment["id"]] = assignment
    return entity_response(ctx, assignment, ROLE_ASSIGNMENT, "roleManagement/directory/roleAssignments",
                           status=201)


@route("GET", r"/roleManagement/directory/roleAssignments/(?P<id>[^/]+)")
async def get_role_assignment(ctx: Ctx) -> web.StreamResponse:
    ctx.require("roleManagement.roleAssignments.list")
    assignment = ctx.tenant.role_assignments.get(ctx.match["id"])
    if assignment is None:
        raise not_found(ctx.match["id"])
    return entity_response(ctx, assignment, ROLE_ASSIGNMENT, "roleManagement/directory/roleAssignments")


@route("DELETE", r"/roleManagement/directory/roleAssignments/(?P<id>[^/]+)")
async def delete_role_assignment(ctx: Ctx) -> web.StreamResponse:
    ctx.require("roleManagement.roleAssignments.delete")
    if ctx.tenant.role_assignments.pop(ctx.match["id"], None) is None:
        raise not_found(ctx.match["id"])
    return respond(ctx, None, status=204)


# -- role definitions ----------------------------------------------------------------------------------

def serialize_definition(definition: dict) -> dict:
    return {"description": None, "isBuiltIn": True, "isEnabled": True, "resourceScopes": ["/"],
            "rolePermissions": [], "version": "1", **public(definition)}


@route("GET", r"/roleManagement/directory/roleDefinitions")
async def list_role_definitions(ctx: Ctx) -> web.StreamResponse:
    ctx.require("roleManagement.roleDefinitions.list")
    return list_response(ctx, list(ctx.tenant.role_definitions.values()), ROLE_DEFINITION,
                         "roleManagement/directory/roleDefinitions", serialize=serialize_definition)


@route("GET", r"/roleManagement/directory/roleDefinitions/(?P<id>[^/]+)")
async def get_role_definition(ctx: Ctx) -> web.StreamResponse:
    ctx.require("roleManagement.roleDefinitions.get")
    definition = ctx.tenant.role_definitions.get(check_guid(ctx.match["id"]))
    if definition is None:
        raise not_found(ctx.match["id"])
    return entity_response(ctx, definition, ROLE_DEFINITION, "roleManagement/directory/roleDefinitions",
                           serialize=serialize_definition)


# -- organization ---------------------------------------------------------------------------------------

@route("GET", r"/organization")
async def list_organization(ctx: Ctx) -> web.StreamResponse:
    ctx.require("organization.list")
    return list_response(ctx, [ctx.tenant.organization], ORGANIZATION, "organization")


@route("GET", r"/organization/(?P<id>[^/]+)")
async def get_organization(ctx: Ctx) -> web.StreamResponse:
    ctx.require("organization.list")
    if check_guid(ctx.match["id"]) != ctx.tenant.id:
        raise not_found(ctx.match["id"])
    return entity_response(ctx, ctx.tenant.organization, ORGANIZATION, "organization")


# -- sendMail ------------------------------------------------------------------------------------------

MESSAGE_RECIPIENT_FIELDS = ("toRecipients", "ccRecipients", "bccRecipients", "replyTo")


def _invalid_recipients(detail: str) -> ServiceError:
    return ServiceError(400, "ErrorInvalidRecipients", f"At least one recipient isn't valid., {detail}")


@route("POST", r"/users/(?P<user>[^/]+)/sendMail")
async def send_mail(ctx: Ctx) -> web.StreamResponse:
    """Record the message in tenant.mail (inspectable at /_sandbox/tenants/{tid}/mail); 202 Accepted."""
    ctx.require("user.sendMail")
    user = ctx.match["user"]
    if not (is_guid(user) or ("@" in user and not user.startswith("@") and not user.endswith("@"))):
        # Observed for unknown mailboxes: 404 ErrorInvalidUser "The requested user '…' is invalid."
        raise ServiceError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
    raw = await ctx.body()
    # Action parameters are matched case-insensitively: Graph's CSDL names them "Message" and
    # "SaveToSentItems" (msgraph-sdk sends those), the user-sendmail page writes message / saveToSentItems.
    canonical = {"message": "message", "savetosentitems": "saveToSentItems"}
    body = {canonical.get(k.lower(), k): v for k, v in raw.items()}
    check_properties(body, frozenset({"message", "saveToSentItems"}), "sendMailRequestBody")
    message = body.get("message")
    if not isinstance(message, dict):
        # UNCONFIRMED wording: the action's required parameter is missing.
        raise ServiceError(400, "ErrorInvalidRequest", "The 'message' parameter is required and must be an object.")
    save = body.get("saveToSentItems", True)
    if save is None:
        save = True
    if not isinstance(save, bool):
        raise graph_error("literal_invalid", literal=save, edm="Edm.Boolean")
    count = 0
    for field in MESSAGE_RECIPIENT_FIELDS:
        recipients = message.get(field) or []
        if not isinstance(recipients, list):
            raise graph_error("literal_invalid", literal=recipients, edm="Collection(microsoft.graph.recipient)")
        for recipient in recipients:
            address = ((recipient or {}).get("emailAddress") or {}).get("address") if isinstance(recipient, dict) \
                else None
            if not isinstance(address, str) or "@" not in address.strip("@"):
                raise _invalid_recipients(f"Recipient '{address}' isn't resolved. All recipients must be resolved "
                                          "before a message can be submitted.")
            if field != "replyTo":
                count += 1
    if count == 0:
        raise _invalid_recipients("A message can't be sent because it contains no recipients.")
    ctx.tenant.mail.append({"from": user, "message": message, "saveToSentItems": save, "at": ctx.world.now_iso()})
    return respond(ctx, None, status=202)
