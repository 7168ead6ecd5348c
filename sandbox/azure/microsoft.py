"""The sandbox's own copy of Microsoft's facts, each with its source.

The offline simulator of Entra ID, Microsoft Graph v1.0 and Key Vault must be as strict as the real
services. Everything it needs to know *about Microsoft* (well-known application ids, app role ids,
directory role template ids, which permissions each Graph operation accepts, and the exact error
codes and messages) lives here, as plain data, next to the page it was taken from.

Conventions
-----------
* Each fact carries its source URL in a comment (or in a ``source`` field).
* ``CONFIRMED`` in a comment means the value was read on the cited Microsoft page (or its source in
  MicrosoftDocs / microsoftgraph docs repositories). ``OBSERVED`` means it was seen in a real service
  response quoted in a public issue. ``UNCONFIRMED`` means it could not be checked against a
  primary source; the simulator may use it, but tests must not treat it as gospel.
* Error messages are ``str.format`` templates with named fields (``{appId}``, ``{name}``...).
* This module imports nothing from the project and does no I/O.
"""

from __future__ import annotations

from typing import Final, TypedDict

# Sources used throughout ----------------------------------------------------------------------------
GRAPH_PERMISSIONS_REFERENCE: Final = "https://learn.microsoft.com/graph/permissions-reference"
ENTRA_ROLES_REFERENCE: Final = (
    "https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference"
)
EXO_APP_ONLY_AUTH: Final = "https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2"
EWS_OAUTH: Final = (
    "https://learn.microsoft.com/exchange/client-developer/exchange-web-services/"
    "how-to-authenticate-an-ews-application-by-using-oauth"
)
ROLLKEY_PROOF: Final = "https://learn.microsoft.com/graph/application-rollkey-prooftoken"
AADSTS_REFERENCE: Final = "https://learn.microsoft.com/entra/identity-platform/reference-error-codes"
GRAPH_ERRORS: Final = "https://learn.microsoft.com/graph/errors"
KEYVAULT_COMMON_ERRORS: Final = "https://learn.microsoft.com/azure/key-vault/general/common-error-codes"
KEYVAULT_REST_ERRORS: Final = "https://learn.microsoft.com/rest/api/keyvault/#error-codes"


# =====================================================================================================
# 1. Well-known first-party applications and the resource identifiers they answer to
# =====================================================================================================

# CONFIRMED: permissions reference
# ("GET .../servicePrincipals(appId='00000003-0000-0000-c000-000000000000')").
#: appOwnerOrganizationId of Microsoft's first-party service principals (the "Microsoft Services"
#: tenant). Source: learn.microsoft.com/troubleshoot/entra/entra-id/governance/verify-first-party-apps-sign-in
#: ("f8cdef31-a31e-4b4a-93e4-5f571e91255a" is the Microsoft Services tenant).
MICROSOFT_TENANT_ID: Final = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
MICROSOFT_GRAPH_APP_ID: Final = "00000003-0000-0000-c000-000000000000"

# CONFIRMED: app-only auth page, manifest snippet: "resourceAppId": "00000002-0000-0ff1-ce00-000000000000"
# (Office 365 Exchange Online). Source: EXO_APP_ONLY_AUTH.
EXCHANGE_ONLINE_APP_ID: Final = "00000002-0000-0ff1-ce00-000000000000"

# CONFIRMED: "Microsoft Entra tenants in the Azure public cloud and all others use the application ID
# cfa8b339-82a2-471a-a3c9-0fc0be7a4093" (Azure Government uses 7e7c393b-45d0-48b1-a35e-2905ddf8183c).
# Source: https://learn.microsoft.com/azure/key-vault/secrets/overview-storage-keys (also the
# Azure Government comparison page, "Key Vault | Service Principal ID").
AZURE_KEY_VAULT_APP_ID: Final = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
AZURE_KEY_VAULT_APP_ID_USGOV: Final = "7e7c393b-45d0-48b1-a35e-2905ddf8183c"

# CONFIRMED: the addKey / removeKey proof JWT must carry aud = 00000002-0000-0000-c000-000000000000
# (the legacy Azure AD Graph application id). Source: ROLLKEY_PROOF and
# https://learn.microsoft.com/graph/api/application-addkey ("Audience needs to be ...").
AAD_GRAPH_APP_ID: Final = "00000002-0000-0000-c000-000000000000"
ADDKEY_PROOF_AUDIENCE: Final = AAD_GRAPH_APP_ID
# CONFIRMED (ROLLKEY_PROOF): "exp ... should be the value of nbf + 10 minutes"; iss = the object id of
# the application (or servicePrincipal) that initiates the request; '=' padding in header/payload is
# rejected with Authentication_MissingOrMalformed.
ADDKEY_PROOF_MAX_LIFETIME_SECONDS: Final = 600

# Resource identifiers accepted in `scope=<resource>/.default` (and in the `aud` of issued tokens).
# Graph: "https://graph.microsoft.com" is documented everywhere (e.g.
# https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow uses
# scope=https%3A%2F%2Fgraph.microsoft.com%2F.default); the appId form is accepted by Entra for any
# resource (https://learn.microsoft.com/entra/identity-platform/scopes-oidc#the-default-scope).
# Exchange: CONFIRMED "https://outlook.office365.com/.default" (EXO_APP_ONLY_AUTH, step 4b admin consent
# URL). "https://outlook.office.com" is an identifierUri of the Exchange SP: UNCONFIRMED in docs,
# observed in tenant data.
# Key Vault: CONFIRMED resource="https://vault.azure.net" in the Key Vault 401 challenge
# (https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses).
RESOURCE_IDENTIFIERS: Final[dict[str, tuple[str, ...]]] = {
    MICROSOFT_GRAPH_APP_ID: (
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        MICROSOFT_GRAPH_APP_ID,
    ),
    EXCHANGE_ONLINE_APP_ID: (
        "https://outlook.office365.com",
        "https://outlook.office365.com/",
        "https://outlook.office.com",
        "https://outlook.office.com/",
        EXCHANGE_ONLINE_APP_ID,
    ),
    AZURE_KEY_VAULT_APP_ID: (
        "https://vault.azure.net",
        "https://vault.azure.net/",
        AZURE_KEY_VAULT_APP_ID,
    ),
}

#: Token `aud` values as Entra issues them for v1-style resources: Graph tokens carry
#: "https://graph.microsoft.com" (or "00000003-..." for v2 access tokens). UNCONFIRMED which exact
#: form Entra picks per resource; the simulator should accept every entry of RESOURCE_IDENTIFIERS.
TOKEN_AUDIENCE: Final[dict[str, str]] = {
    MICROSOFT_GRAPH_APP_ID: "https://graph.microsoft.com",
    EXCHANGE_ONLINE_APP_ID: "https://outlook.office365.com",
    AZURE_KEY_VAULT_APP_ID: "https://vault.azure.net",
}


# =====================================================================================================
# 2. First-party service principals and their application permissions (appRoles)
# =====================================================================================================


class AppRole(TypedDict):
    """An appRole as Graph returns it on a resource servicePrincipal."""

    id: str
    value: str
    displayName: str
    description: str
    allowedMemberTypes: list[str]
    isEnabled: bool
    origin: str


class FirstPartyServicePrincipal(TypedDict):
    displayName: str
    appId: str
    servicePrincipalNames: list[str]
    appRoles: list[AppRole]


def _role(role_id: str, value: str, display_name: str, description: str) -> AppRole:
    return {
        "id": role_id,
        "value": value,
        "displayName": display_name,
        "description": description,
        "allowedMemberTypes": ["Application"],
        "isEnabled": True,
        "origin": "Application",
    }


# Microsoft Graph application permissions. Every id, DisplayText and Description below is CONFIRMED
# against the "Application" column of GRAPH_PERMISSIONS_REFERENCE (each permission's own section,
# e.g. https://learn.microsoft.com/graph/permissions-reference#applicationreadwriteownedby).
GRAPH_APP_ROLES: Final[tuple[AppRole, ...]] = (
    _role("df021288-bdef-4463-88db-98f22de89214", "User.Read.All",
          "Read all users' full profiles",
          "Allows the app to read user profiles without a signed in user."),
    _role("741f803b-c850-494e-b5df-cde7c675a1ca", "User.ReadWrite.All",
          "Read and write all users' full profiles",
          "Allows the app to read and update user profiles without a signed in user."),
    _role("5b567255-7703-4780-807c-7be8301ae99b", "Group.Read.All",
          "Read all groups",
          "Allows the app to read group properties and memberships, and read conversations for all "
          "groups, without a signed-in user."),
    _role("b633e1c5-b582-4048-a93e-9f11b44c7e96", "Mail.Send",
          "Send mail as any user",
          "Allows the app to send mail as any user without a signed-in user."),
    _role("e2a3a72e-5f79-4c64-b1b1-878b674786c9", "Mail.ReadWrite",
          "Read and write mail in all mailboxes",
          "Allows the app to create, read, update, and delete mail in all mailboxes without a "
          "signed-in user. Does not include permission to send mail."),
    _role("498476ce-e0fe-48b0-b801-37ba7e2685c6", "Organization.Read.All",
          "Read organization information",
          "Allows the app to read the organization and related resources, without a signed-in user. "
          "Related resources include things like subscribed skus and tenant branding information."),
    _role("292d869f-3427-49a8-9dab-8c70152b74e9", "Organization.ReadWrite.All",
          "Read and write organization information",
          "Allows the app to read and write the organization and related resources, without a "
          "signed-in user. Related resources include things like subscribed skus and tenant branding "
          "information."),
    _role("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All",
          "Read all applications",
          "Allows the app to read all applications and service principals without a signed-in user."),
    _role("18a4783c-866b-4cc7-a460-3d5e5662c884", "Application.ReadWrite.OwnedBy",
          "Manage apps that this app creates or owns",
          "Allows the app to create other applications, and fully manage those applications (read, "
          "update, update application secrets and delete), without a signed-in user.  It cannot "
          "update any apps that it is not an owner of."),
    _role("1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", "Application.ReadWrite.All",
          "Read and write all applications",
          "Allows the app to create, read, update and delete applications and service principals "
          "without a signed-in user.  Does not allow management of consent grants."),
    _role("06b708a9-e830-4db3-a914-8e69da51d44f", "AppRoleAssignment.ReadWrite.All",
          "Manage app permission grants and app role assignments",
          "Allows the app to manage permission grants for application permissions to any API "
          "(including Microsoft Graph) and application assignments for any app, without a signed-in "
          "user."),
    _role("9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8", "RoleManagement.ReadWrite.Directory",
          "Read and write all directory RBAC settings",
          "Allows the app to read and manage the role-based access control (RBAC) settings for your "
          "company's directory, without a signed-in user. This includes instantiating directory roles "
          "and managing directory role membership, and reading directory role templates, directory "
          "roles and memberships."),
    _role("483bed4a-2ad3-4361-a73b-c83ccdbdc53c", "RoleManagement.Read.Directory",
          "Read all directory RBAC settings",
          "Allows the app to read the role-based access control (RBAC) settings for your company's "
          "directory, without a signed-in user.  This includes reading directory role templates, "
          "directory roles and memberships."),
    _role("c7fbd983-d9aa-4fa7-84b8-17382c103bc4", "RoleManagement.Read.All",
          "Read role management data for all RBAC providers",
          "Allows the app to read role-based access control (RBAC) settings for all RBAC providers "
          "without a signed-in user. This includes reading role definitions and role assignments."),
    _role("6918b873-d17a-4dc1-b314-35f528134491", "Contacts.ReadWrite",
          "Read and write contacts in all mailboxes",
          "Allows the app to create, read, update, and delete all contacts in all mailboxes without a "
          "signed-in user."),
    _role("089fe4d0-434a-44c5-8827-41ba8a0b17f5", "Contacts.Read",
          "Read contacts in all mailboxes",
          "Allows the app to read all contacts in all mailboxes without a signed-in user."),
    _role("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All",
          "Read directory data",
          "Allows the app to read data in your organization's directory, such as users, groups and "
          "apps, without a signed-in user."),
    _role("19dbc75e-c2e2-444c-a770-ec69d8559fc7", "Directory.ReadWrite.All",
          "Read and write directory data",
          "Allows the app to read and write data in your organization's directory, such as users, and "
          "groups, without a signed-in user.  Does not allow user or group deletion."),
)

# Exchange Online application permissions.
EXCHANGE_APP_ROLES: Final[tuple[AppRole, ...]] = (
    # id + value CONFIRMED: EXO_APP_ONLY_AUTH manifest snippet
    #   {"resourceAppId": "00000002-0000-0ff1-ce00-000000000000",
    #    "resourceAccess": [{"id": "dc50a0fb-09a3-484d-be87-e023b12c6440", "type": "Role"}]}
    # and the page names the permission "Exchange.ManageAsApp" (Type: Application, admin consent: Yes).
    # displayName/description: UNCONFIRMED wording (as shown in the portal, not on a docs page).
    _role("dc50a0fb-09a3-484d-be87-e023b12c6440", "Exchange.ManageAsApp",
          "Manage Exchange As Application",
          "Allows the app to manage the organization's Exchange environment without any user "
          "interaction. This includes mailboxes, groups, and other configuration objects. To enable "
          "management actions, an admin must assign the appropriate roles directly to the app."),
    # id + value CONFIRMED: EWS_OAUTH manifest snippet ("id": "dc890d15-9560-4a4c-9b7f-a736ec74ec40",
    # "type": "Role") followed by "confirm that the following permissions are listed: ...
    # full_access_as_app". displayName/description: UNCONFIRMED wording.
    _role("dc890d15-9560-4a4c-9b7f-a736ec74ec40", "full_access_as_app",
          "Use Exchange Web Services with full access to all mailboxes",
          "Allows the app to have full access via Exchange Web Services to all mailboxes without a "
          "signed-in user."),
    # Contacts.ReadWrite on *Office 365 Exchange Online* (legacy Outlook REST app role): NOT INCLUDED.
    # Its id could not be confirmed on any Microsoft page (Microsoft removed the Exchange app
    # permissions for Outlook REST from the portal; see
    # https://learn.microsoft.com/previous-versions/office/office-365-api/ and the Outlook REST
    # deprecation notice). Use Microsoft Graph Contacts.ReadWrite instead.
)

FIRST_PARTY_SERVICE_PRINCIPALS: Final[dict[str, FirstPartyServicePrincipal]] = {
    MICROSOFT_GRAPH_APP_ID: {
        "displayName": "Microsoft Graph",
        "appId": MICROSOFT_GRAPH_APP_ID,
        # UNCONFIRMED (not documented): subset of what real tenants return for this SP.
        "servicePrincipalNames": [
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/",
            MICROSOFT_GRAPH_APP_ID,
        ],
        "appRoles": list(GRAPH_APP_ROLES),
    },
    EXCHANGE_ONLINE_APP_ID: {
        # CONFIRMED display name: "Office 365 Exchange Online" (EXO_APP_ONLY_AUTH, API permissions step).
        "displayName": "Office 365 Exchange Online",
        "appId": EXCHANGE_ONLINE_APP_ID,
        # UNCONFIRMED (not documented): subset of what real tenants return for this SP.
        "servicePrincipalNames": [
            "https://outlook.office365.com/",
            "https://outlook.office.com",
            "outlook.office365.com",
            "outlook.office.com",
            EXCHANGE_ONLINE_APP_ID,
        ],
        "appRoles": list(EXCHANGE_APP_ROLES),
    },
    AZURE_KEY_VAULT_APP_ID: {
        # The resource behind scope "https://vault.azure.net/.default"; it has no app roles (access is
        # Azure RBAC on the vault). Display name as shown in tenants; servicePrincipalNames UNCONFIRMED.
        "displayName": "Azure Key Vault",
        "appId": AZURE_KEY_VAULT_APP_ID,
        "servicePrincipalNames": ["https://vault.azure.net", AZURE_KEY_VAULT_APP_ID],
        "appRoles": [],
    },
}

# Permissions referenced by the Graph permission tables below that have no app role above.
# AppRegistration.Create is now the least privileged application permission for POST /applications
# (CONFIRMED: microsoftgraph/microsoft-graph-docs-contrib
# api-reference/v1.0/includes/permissions/application-post-applications-permissions.md), but its id
# could NOT be confirmed (the permissions-reference copy available predates it). Left out of
# GRAPH_APP_ROLES on purpose.
UNMODELLED_GRAPH_PERMISSIONS: Final[frozenset[str]] = frozenset({"AppRegistration.Create"})


# =====================================================================================================
# 3. Built-in directory role templates (unifiedRoleDefinition)
# =====================================================================================================


class RoleDefinition(TypedDict):
    id: str
    templateId: str
    displayName: str
    description: str
    isBuiltIn: bool
    isEnabled: bool


def _role_def(template_id: str, name: str, description: str) -> RoleDefinition:
    # For built-in roles the unifiedRoleDefinition id equals the template id
    # (https://learn.microsoft.com/graph/api/resources/unifiedroledefinition: "id ... For built-in
    # roles, this is the templateId"; the roleAssignments API accepts it as roleDefinitionId).
    return {"id": template_id, "templateId": template_id, "displayName": name,
            "description": description, "isBuiltIn": True, "isEnabled": True}


# Every template id and description CONFIRMED in ENTRA_ROLES_REFERENCE ("All roles" table,
# MicrosoftDocs/entra-docs docs/identity/role-based-access-control/permissions-reference.md).
DIRECTORY_ROLE_DEFINITIONS: Final[dict[str, RoleDefinition]] = {
    r["id"]: r for r in (
        _role_def("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator",
                  "Can manage all aspects of the Exchange product."),
        _role_def("31392ffb-586c-42d1-9346-e59415a2cc4e", "Exchange Recipient Administrator",
                  "Can create or update Exchange Online recipients within the Exchange Online "
                  "organization."),
        _role_def("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader",
                  "Can read everything that a Global Administrator can, but not update anything."),
        _role_def("62e90394-69f5-4237-9190-012177145e10", "Global Administrator",
                  "Can manage all aspects of Microsoft Entra ID and Microsoft services that use "
                  "Microsoft Entra identities."),
        _role_def("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator",
                  "Can create and manage all aspects of app registrations and enterprise apps."),
        _role_def("158c047a-c907-4556-b7ef-446551a6b5f7", "Cloud Application Administrator",
                  "Can create and manage all aspects of app registrations and enterprise apps except "
                  "App Proxy."),
        _role_def("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator",
                  "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged "
                  "Identity Management."),
        _role_def("17315797-102d-40b4-93e0-432062caca18", "Compliance Administrator",
                  "Can read and manage compliance configuration and reports in Microsoft Entra ID and "
                  "Microsoft 365."),
        _role_def("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator",
                  "Can reset passwords for non-administrators and Helpdesk Administrators."),
    )
}

# CONFIRMED (EXO_APP_ONLY_AUTH, "Assign Microsoft Entra roles to the application" table): Entra roles
# supported for app-only Exchange Online PowerShell. Security Administrator / Security Reader are also
# listed (template ids not copied here).
EXCHANGE_APP_ONLY_SUPPORTED_ROLES: Final[frozenset[str]] = frozenset({
    "17315797-102d-40b4-93e0-432062caca18",  # Compliance Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
    "31392ffb-586c-42d1-9346-e59415a2cc4e",  # Exchange Recipient Administrator
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
})


# =====================================================================================================
# 4. Application permissions each Graph operation accepts
# =====================================================================================================


class OperationPermissions(TypedDict):
    """Application row of the operation's Permissions table, least to most privileged.

    ``any_of`` lists alternatives; an alternative that is a tuple means *all* of those permissions
    together (Microsoft writes "X and Y"). ``self_service`` is True where Microsoft documents that the
    app may call the operation on itself with no permission. ``notes`` records documented subtleties.
    """

    request: str
    any_of: list[tuple[str, ...]]
    self_service: bool
    notes: str
    source: str
    confidence: str


def _ops(request: str, any_of: list[tuple[str, ...]], source: str, *, notes: str = "",
         self_service: bool = False, confidence: str = "CONFIRMED") -> OperationPermissions:
    return {"request": request, "any_of": any_of, "self_service": self_service, "notes": notes,
            "source": source, "confidence": confidence}


_G = "https://learn.microsoft.com/graph/api/"
_OWNED_BY_NOTE = ("Application.ReadWrite.OwnedBy applies only to applications/service principals the "
                  "calling app owns (it becomes owner of what it creates); " + GRAPH_PERMISSIONS_REFERENCE
                  + "#applicationreadwriteownedby")

GRAPH_PERMISSIONS: Final[dict[str, OperationPermissions]] = {
    # --- applications ---------------------------------------------------------------------------
    "application.create": _ops(
        "POST /applications",
        [("AppRegistration.Create",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "application-post-applications",
        notes="Current table: least AppRegistration.Create; higher Application.ReadWrite.OwnedBy, "
              "Application.ReadWrite.All (older revisions list OwnedBy as least). " + _OWNED_BY_NOTE),
    "application.upsert": _ops(
        "PATCH /applications(uniqueName='{uniqueName}') + Prefer: create-if-missing",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "application-upsert",
        notes="201 + body when created, 204 when updated; without Prefer and no such app -> 404. "
              "displayName is required in the body. " + _OWNED_BY_NOTE),
    "application.get": _ops(
        "GET /applications/{id} | /applications(appId='{appId}')",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "application-get"),
    "application.list": _ops(
        "GET /applications",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",)],
        _G + "application-list",
        notes="Application.ReadWrite.OwnedBy may list ALL applications in the tenant (documented: "
              + GRAPH_PERMISSIONS_REFERENCE + "#applicationreadwriteownedby)."),
    "application.update": _ops(
        "PATCH /applications/{id}",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "application-update",
        notes="keyCredentials/requiredResourceAccess collections are replaced as a whole. " + _OWNED_BY_NOTE),
    "application.delete": _ops(
        "DELETE /applications/{id}",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "application-delete",
        notes="Table also lists AgentIdentityBlueprint.DeleteRestore.All (agent blueprints only). "
              + _OWNED_BY_NOTE),
    "application.addKey": _ops(
        "POST /applications/{id}/addKey",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "application-addkey",
        self_service=True,
        notes="'An application does not need any specific permission to roll its own keys.' Proof JWT "
              "signed by a currently valid key of the app: aud 00000002-0000-0000-c000-000000000000, "
              "iss = application object id, exp = nbf + 10 min. Apps with no valid certificate (none, "
              "or all expired) cannot use addKey; use Update application. Response 200 + keyCredential."),
    "application.removeKey": _ops(
        "POST /applications/{id}/removeKey",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "application-removekey",
        self_service=True,
        confidence="CONFIRMED (proof rules via " + ROLLKEY_PROOF + "); table assumed identical to addKey",
        notes="Same proof rules as addKey. Response 204."),
    "application.owners.list": _ops(
        "GET /applications/{id}/owners",
        [("Application.ReadWrite.OwnedBy",), ("Application.Read.All",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "application-list-owners"),
    # --- service principals ---------------------------------------------------------------------
    "servicePrincipal.create": _ops(
        "POST /servicePrincipals",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-post-serviceprincipals",
        notes="Table also lists AgentIdentity* permissions (agent identities only). " + _OWNED_BY_NOTE),
    "servicePrincipal.upsert": _ops(
        "PATCH /servicePrincipals(appId='{appId}') + Prefer: create-if-missing",
        [("Application.ReadWrite.All",), ("Application.ReadWrite.OwnedBy",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-upsert",
        notes="Microsoft lists Application.ReadWrite.All as LEAST privileged and OwnedBy as 'higher' "
              "(sic). 201 + body when created, 204 when updated."),
    "servicePrincipal.get": _ops(
        "GET /servicePrincipals/{id} | /servicePrincipals(appId='{appId}')",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-get",
        confidence="UNCONFIRMED (table not re-read; matches application.get pattern)"),
    "servicePrincipal.list": _ops(
        "GET /servicePrincipals",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-list",
        confidence="UNCONFIRMED (table not re-read; matches application.list pattern)"),
    "servicePrincipal.delete": _ops(
        "DELETE /servicePrincipals/{id}",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "serviceprincipal-delete",
        confidence="UNCONFIRMED (table not re-read)",
        notes=_OWNED_BY_NOTE),
    # --- app role assignments (admin consent) ---------------------------------------------------
    "servicePrincipal.appRoleAssignedTo.list": _ops(
        "GET /servicePrincipals/{resourceSpId}/appRoleAssignedTo",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Directory.Read.All",),
         ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-list-approleassignedto"),
    "servicePrincipal.appRoleAssignedTo.create": _ops(
        "POST /servicePrincipals/{resourceSpId}/appRoleAssignedTo",
        [("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All")],
        _G + "serviceprincipal-post-approleassignedto",
        notes="Both permissions are required together ('AppRoleAssignment.ReadWrite.All and "
              "Application.Read.All'). Body {principalId, resourceId, appRoleId}; 201 + appRoleAssignment."),
    "servicePrincipal.appRoleAssignedTo.delete": _ops(
        "DELETE /servicePrincipals/{resourceSpId}/appRoleAssignedTo/{appRoleAssignmentId}",
        [("AppRoleAssignment.ReadWrite.All",)],
        _G + "serviceprincipal-delete-approleassignedto",
        confidence="UNCONFIRMED (table not re-read)"),
    "servicePrincipal.appRoleAssignments.list": _ops(
        "GET /servicePrincipals/{id}/appRoleAssignments",
        [("Application.Read.All",), ("Application.ReadWrite.All",), ("Directory.Read.All",),
         ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-list-approleassignments",
        confidence="UNCONFIRMED (table not re-read)"),
    "servicePrincipal.appRoleAssignments.create": _ops(
        "POST /servicePrincipals/{clientSpId}/appRoleAssignments",
        [("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All")],
        _G + "serviceprincipal-post-approleassignments",
        notes="Same pair as appRoleAssignedTo.create (includes/permissions/"
              "serviceprincipal-post-approleassignments-permissions.md)."),
    "servicePrincipal.appRoleAssignments.delete": _ops(
        "DELETE /servicePrincipals/{clientSpId}/appRoleAssignments/{appRoleAssignmentId}",
        [("AppRoleAssignment.ReadWrite.All",)],
        _G + "serviceprincipal-delete-approleassignments",
        confidence="UNCONFIRMED (table not re-read)"),
    # --- directory roles ------------------------------------------------------------------------
    "roleManagement.roleAssignments.list": _ops(
        "GET /roleManagement/directory/roleAssignments?$filter=...",
        [("RoleManagement.Read.Directory",), ("RoleManagement.Read.All",),
         ("RoleManagement.ReadWrite.Directory",)],
        _G + "rbacapplication-list-roleassignments",
        confidence="UNCONFIRMED (table not re-read)",
        notes="A $filter on roleDefinitionId or principalId is required by the service for the "
              "directory provider (UNCONFIRMED wording)."),
    "roleManagement.roleAssignments.create": _ops(
        "POST /roleManagement/directory/roleAssignments",
        [("RoleManagement.ReadWrite.Directory",)],
        _G + "rbacapplication-post-roleassignments",
        notes="Only RoleManagement.ReadWrite.Directory for the directory provider. Body "
              "{principalId, roleDefinitionId, directoryScopeId: '/'}; 201 + unifiedRoleAssignment."),
    "roleManagement.roleAssignments.delete": _ops(
        "DELETE /roleManagement/directory/roleAssignments/{id}",
        [("RoleManagement.ReadWrite.Directory",)],
        _G + "unifiedroleassignment-delete",
        confidence="UNCONFIRMED (table not re-read)"),
    "roleManagement.roleDefinitions.list": _ops(
        "GET /roleManagement/directory/roleDefinitions",
        [("RoleManagement.Read.Directory",), ("RoleManagement.Read.All",), ("Directory.Read.All",),
         ("RoleManagement.ReadWrite.Directory",), ("Directory.ReadWrite.All",)],
        _G + "rbacapplication-list-roledefinitions",
        confidence="UNCONFIRMED (table not re-read)"),
    "roleManagement.roleDefinitions.get": _ops(
        "GET /roleManagement/directory/roleDefinitions/{id}",
        [("RoleManagement.Read.Directory",), ("RoleManagement.Read.All",), ("Directory.Read.All",),
         ("RoleManagement.ReadWrite.Directory",), ("Directory.ReadWrite.All",)],
        _G + "unifiedroledefinition-get",
        confidence="UNCONFIRMED (table not re-read)"),
    # --- misc -----------------------------------------------------------------------------------
    "organization.list": _ops(
        "GET /organization",
        [("Organization.Read.All",), ("Directory.Read.All",), ("Organization.ReadWrite.All",),
         ("Directory.ReadWrite.All",)],
        _G + "organization-list",
        confidence="UNCONFIRMED (table not re-read)"),
    "user.sendMail": _ops(
        "POST /users/{id | userPrincipalName}/sendMail",
        [("Mail.Send",)],
        _G + "user-sendmail",
        notes="Mail.Send can be scoped to specific mailboxes by an application access policy / "
              "RBAC for Applications (" + GRAPH_PERMISSIONS_REFERENCE + "#mailsend).",
        confidence="CONFIRMED permission id/meaning; table not re-read"),
}


# =====================================================================================================
# 5. Errors
# =====================================================================================================


class GraphErrorFact(TypedDict):
    code: str
    message: str
    status: int
    source: str
    confidence: str


class AADErrorFact(TypedDict):
    error: str          # OAuth 2.0 `error`
    aadsts: int         # numeric AADSTS code (goes into error_codes and the description prefix)
    message: str        # description after "AADSTSnnnnn: "
    status: int
    source: str
    confidence: str


class KeyVaultErrorFact(TypedDict):
    code: str           # error.code
    inner_code: str     # error.innererror.code ("" when none)
    message: str
    status: int
    source: str
    confidence: str


def _ge(code: str, message: str, status: int, source: str, confidence: str = "OBSERVED") -> GraphErrorFact:
    return {"code": code, "message": message, "status": status, "source": source, "confidence": confidence}


GRAPH_ERRORS_CATALOG: Final[dict[str, GraphErrorFact]] = {
    # --- authorization / authentication ---------------------------------------------------------
    "insufficient_privileges": _ge(
        "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", 403,
        GRAPH_ERRORS + " ; https://github.com/hashicorp/terraform-provider-azuread/issues/611"),
    "token_missing": _ge(
        "InvalidAuthenticationToken", "Access token is empty.", 401, GRAPH_ERRORS,
        "OBSERVED widely; UNCONFIRMED on a Microsoft page"),
    "token_expired": _ge(
        "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.", 401,
        "https://github.com/s1t5/mail-archiver/issues/267 (ODataError from Graph)"),
    "token_bad_audience": _ge(
        "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.", 401,
        GRAPH_ERRORS, "UNCONFIRMED (commonly observed wording)"),
    "token_malformed": _ge(
        "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.).", 401,
        GRAPH_ERRORS, "UNCONFIRMED (commonly observed wording; older: 'CompactToken parsing failed "
        "with error code: 80049217')"),
    "token_bad_signature": _ge(
        "InvalidAuthenticationToken", "Access token validation failure.", 401, GRAPH_ERRORS,
        "UNCONFIRMED"),
    # --- directory replication (eventual consistency) ------------------------------------------
    "sp_app_not_replicated": _ge(
        # The simulator sends Request_BadRequest (REFERENCE.md); NoBackingApplicationObject has been seen too,
        # so clients must match the message, not only the code.
        "Request_BadRequest",
        "The appId '{appId}' of the service principal does not reference a valid application object.",
        400, "https://github.com/hashicorp/terraform-provider-azuread/issues/611 ; "
             "https://github.com/hashicorp/terraform-provider-azuread/issues/992",
        "OBSERVED (REFERENCE.md: older responses carry code Request_BadRequest; issue links not re-read)"),
    "reference_update_invalid": _ge(
        "Request_BadRequest", "Not a valid reference update.", 400,
        "https://github.com/hashicorp/terraform-provider-azuread/issues/992",
        "OBSERVED per REFERENCE.md; issue not re-read"),
    "resource_not_found": _ge(
        "Request_ResourceNotFound",
        "Resource '{id}' does not exist or one of its queried reference-property objects are not present.",
        404, GRAPH_ERRORS + " ; https://github.com/hashicorp/terraform-provider-azuread/issues/992"),
    # --- duplicates -----------------------------------------------------------------------------
    "app_role_assignment_exists": _ge(
        "Request_BadRequest", "Permission being assigned already exists on the object.", 400,
        "https://github.com/hashicorp/terraform-provider-azuread/issues (duplicate azuread_app_role_"
        "assignment); REFERENCE.md", "OBSERVED per REFERENCE.md; issue number not re-verified"),
    "role_assignment_exists": _ge(
        "Request_BadRequest",
        "A conflicting object with one or more of the specified property values is present in the directory.",
        400, "https://github.com/dod-ccpo/atat/pull/1554 (POST /beta/roleManagement/directory/"
             "roleAssignments for an existing assignment)"),
    "unique_name_conflict": _ge(
        "Request_MultipleObjectsWithSameKeyValue",
        "Another object with the same value for property uniqueName already exists.", 409,
        _G + "application-upsert", "UNCONFIRMED (wording modelled on Graph's duplicate-property errors)"),
    # --- keyCredentials -------------------------------------------------------------------------
    "key_value_empty": _ge(
        "KeyCredentialsInvalidValue", "KeyValue cannot be null or empty", 400,
        "https://github.com/ansible-collections/azure/issues/1872",
        "OBSERVED per REFERENCE.md; issue not re-read"),
    "key_end_date_invalid": _ge(
        "KeyCredentialsInvalidEndDate", "Key credential end date is invalid.", 400,
        "https://github.com/Azure/azure-rest-api-specs/issues/11985 ; "
        "https://github.com/Azure/azure-cli/issues/11146",
        "OBSERVED message on AAD Graph (code there: Request_BadRequest); Graph code "
        "KeyCredentialsInvalidEndDate from REFERENCE.md, wording on MS Graph UNCONFIRMED"),
    "binary_literal_invalid": _ge(
        "BadRequest", "Cannot convert the literal '{literal}' to the expected type 'Edm.Binary'.", 400,
        "REFERENCE.md (msgraph-sdk sends base64url instead of base64)",
        "OBSERVED per REFERENCE.md; error code UNCONFIRMED"),
    # --- addKey / removeKey proof ---------------------------------------------------------------
    "proof_malformed": _ge(
        "Authentication_MissingOrMalformed", "Access Token missing or malformed.", 401,
        ROLLKEY_PROOF + " ('padding character = must not be included ... or an "
        "Authentication_MissingOrMalformed error is returned') ; "
        "https://github.com/microsoftgraph/microsoft-graph-docs/issues/14626 ; "
        "https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/1076 (wrong aud -> same 401)",
        "CONFIRMED code; message OBSERVED"),
    "proof_invalid": _ge(
        "Authentication_MissingOrMalformed", "Access Token missing or malformed.", 401, ROLLKEY_PROOF,
        "UNCONFIRMED: Microsoft documents no separate code for a bad signature / expired proof / wrong "
        "iss; issues show the same 401 Authentication_MissingOrMalformed"),
    "no_valid_certificate_for_proof": _ge(
        "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", 403,
        _G + "application-addkey ('Applications that don't have any existing valid certificates ... "
        "won't be able to use this service action')", "UNCONFIRMED status/code"),
    # --- query / upsert -------------------------------------------------------------------------
    "invalid_filter": _ge(
        "Request_BadRequest", "Invalid filter clause", 400,
        "https://learn.microsoft.com/graph/filter-query-parameter",
        "UNCONFIRMED exact wording (service adds detail after the phrase)"),
    "unsupported_query": _ge(
        "Request_UnsupportedQuery", "Unsupported query.", 400,
        "https://learn.microsoft.com/graph/aad-advanced-queries", "UNCONFIRMED wording"),
    "upsert_missing_without_prefer": _ge(
        "Request_ResourceNotFound",
        "Resource '{uniqueName}' does not exist or one of its queried reference-property objects "
        "are not present.",
        404, _G + "application-upsert ('... Prefer: create-if-missing header is not specified, this "
        "method returns a 404 Not Found error code')", "CONFIRMED status; code/message UNCONFIRMED"),
}

# uniqueName facts. CONFIRMED: upsert needs displayName in the body; 201 on create, 204 on update,
# 404 without Prefer (application-upsert page). UNCONFIRMED (application resource page, not re-read):
# uniqueName is an alternate key, immutable once set, and is set only through the upsert.
UNIQUE_NAME_FACTS: Final[dict[str, str]] = {
    "set_by": "PATCH /applications(uniqueName='{u}') with Prefer: create-if-missing",
    "immutable": "UNCONFIRMED: cannot be changed after creation",
    "source": _G + "application-upsert ; https://learn.microsoft.com/graph/api/resources/application",
}


def _aad(error: str, aadsts: int, message: str, status: int = 400,
         confidence: str = "UNCONFIRMED wording (from memory of " + AADSTS_REFERENCE + ")") -> AADErrorFact:
    return {"error": error, "aadsts": aadsts, "message": message, "status": status,
            "source": AADSTS_REFERENCE + "#aadsts-error-codes", "confidence": confidence}


AADSTS_ERRORS: Final[dict[str, AADErrorFact]] = {
    "tenant_not_found": _aad(
        "invalid_request", 90002,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there "
        "are no active subscriptions for the tenant."),
    "app_not_found": _aad(
        "unauthorized_client", 700016,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You may have sent your authentication request to the "
        "wrong tenant."),
    # Admin consent of a single-tenant app from another tenant surfaces as the same AADSTS700016
    # (on the redirect: error=unauthorized_client&error_description=AADSTS700016...). UNCONFIRMED.
    "admin_consent_single_tenant": _aad(
        "unauthorized_client", 700016,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You may have sent your authentication request to the "
        "wrong tenant."),
    "invalid_client_secret": _aad(
        "invalid_client", 7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        "secret value, not the client secret ID, for a secret added to app '{client_id}'.", 401),
    "assertion_signature_invalid": _aad(
        "invalid_client", 700027, "Client assertion failed signature validation.", 401),
    "assertion_cert_not_registered": _aad(
        "invalid_client", 700027,
        "The certificate with identifier used to sign the client assertion is not registered on "
        "application. [Reason - The key was not found., Thumbprint of key used by client: "
        "'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see "
        "configured keys for app Id '{client_id}'. Review the documentation at "
        "https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service "
        "endpoint and "
        "https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http "
        "to build a query request URL, such as "
        "'https://graph.microsoft.com/beta/applications/{client_id}']", 401),
    "assertion_cert_expired": _aad(
        "invalid_client", 700027,
        "The certificate with identifier used to sign the client assertion is expired on application. "
        "[Reason - The key used is expired., Thumbprint of key used by client: '{thumbprint}', Found "
        "key 'Start=...', 'End=...', Please visit the Azure Portal, Graph Explorer or directly use MS "
        "Graph to see configured keys for app Id '{client_id}'.]", 401),
    "assertion_time_range": _aad(
        "invalid_client", 700024,
        "Client assertion is not within its valid time range. Current time: {now}, assertion valid from "
        "{nbf}, expiry time of assertion {exp}. Review the documentation at "
        "https://docs.microsoft.com/azure/active-directory/develop/"
        "active-directory-certificate-credentials .",
        401),
    "assertion_audience_invalid": _aad(
        "invalid_client", 50013,
        "Assertion failed signature validation. [Reason - The provided signature value did not match the "
        "expected signature value., Thumbprint of key used by client: '{thumbprint}']", 401,
        confidence="UNCONFIRMED: AADSTS50013 is 'InvalidAssertion' in the reference; the exact text Entra "
                   "returns for a wrong client-assertion aud could not be found"),
    "resource_not_found": _aad(
        "invalid_resource", 500011,
        "The resource principal named {resource} was not found in the tenant named {tenant_name}. This "
        "can happen if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You might have sent your authentication request to the "
        "wrong tenant."),
    "invalid_scope": _aad(
        "invalid_scope", 70011,
        "The provided request must include a 'scope' input parameter."),
    "invalid_scope_no_default": _aad(
        "invalid_scope", 1002012,
        "The provided value for scope {scope} is not valid. Client credential flows must have a scope "
        "value with /.default suffixed to the resource identifier (application ID URI)."),
    "redirect_uri_mismatch": _aad(
        "invalid_request", 50011,
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
        "configured for the application '{client_id}'. Make sure the redirect URI sent in the request "
        "matches one added to your application in the Azure portal. Navigate to "
        "https://aka.ms/redirectUriMismatchError to learn more about how to fix this."),
    "app_disabled": _aad(
        "unauthorized_client", 7000112, "Application '{client_id}'({display_name}) is disabled."),
}


def _kv(code: str, inner: str, message: str, status: int, source: str,
        confidence: str = "UNCONFIRMED wording") -> KeyVaultErrorFact:
    return {"code": code, "inner_code": inner, "message": message, "status": status, "source": source,
            "confidence": confidence}


KEYVAULT_ERRORS: Final[dict[str, KeyVaultErrorFact]] = {
    "unauthorized_no_token": _kv(
        "Unauthorized", "", "AKV10000: Request is missing a Bearer or PoP token.", 401,
        KEYVAULT_COMMON_ERRORS + " ; https://learn.microsoft.com/azure/key-vault/general/"
        "authentication-requests-and-responses", "OBSERVED widely; UNCONFIRMED on a Microsoft page"),
    "unauthorized_bad_audience": _kv(
        "Unauthorized", "", "AKV10022: Invalid audience. Expected https://vault.azure.net, found: {aud}.",
        401, KEYVAULT_COMMON_ERRORS),
    "unauthorized_bad_issuer": _kv(
        "Unauthorized", "", "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant}/, "
        "found {iss}.", 401, KEYVAULT_COMMON_ERRORS),
    "forbidden_rbac": _kv(
        "Forbidden", "ForbiddenByRbac",
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
        "assignments or role definitions were changed recently, please observe propagation time.\r\n"
        "Caller: {caller}\r\nAction: '{action}'\r\nResource: '{resource}'\r\nAssignment: (not found)\r\n"
        "DenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {vault};location={location}\r\n",
        403, KEYVAULT_COMMON_ERRORS),
    "forbidden_access_policy": _kv(
        "Forbidden", "AccessDenied",
        "The user, group or application '{caller}' does not have {kind} {permission} permission on key "
        "vault '{vault};location={location}'. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125287",
        403, "https://github.com/MicrosoftDocs/azure-docs/issues/97977 (same text in AuditEvent log)",
        "OBSERVED (log text); response wording UNCONFIRMED"),
    "key_operation_forbidden": _kv(
        "Forbidden", "KeyOperationForbidden", "Operation {operation} is not permitted on this key.", 403,
        "https://github.com/Azure/azure-sdk-for-net/issues/11518 ('Operation decrypt is not permitted "
        "on this key.')", "OBSERVED"),
    "certificate_not_found": _kv(
        "CertificateNotFound", "",
        "A certificate with (name/id) {name} was not found in this key vault. If you recently deleted "
        "this certificate you may be able to recover it using the correct recovery command. For help "
        "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
        404, KEYVAULT_REST_ERRORS),
    "key_not_found": _kv(
        "KeyNotFound", "",
        "A key with (name/id) {name} was not found in this key vault. If you recently deleted this key "
        "you may be able to recover it using the correct recovery command. For help resolving this "
        "issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
        404, KEYVAULT_REST_ERRORS),
    "secret_not_found": _kv(
        "SecretNotFound", "",
        "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this "
        "secret you may be able to recover it using the correct recovery command. For help resolving "
        "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
        404, KEYVAULT_REST_ERRORS),
    "pending_operation_not_found": _kv(
        "PendingCertificateNotFound", "", "Pending certificate not found: {name}", 404,
        KEYVAULT_REST_ERRORS),
    "certificate_deleted_but_recoverable": _kv(
        "Conflict", "ObjectIsDeletedButRecoverable",
        "Certificate {name} is currently in a deleted but recoverable state, and its name cannot be "
        "reused; in this state, the certificate can only be recovered or purged.",
        409, "https://github.com/pulumi/pulumi/issues/14245 ; "
             "https://github.com/rcl-letsencrypt-auto-ssl/Lets-Encrypt-Auto/issues/16", "OBSERVED"),
    "key_deleted_but_recoverable": _kv(
        "Conflict", "ObjectIsDeletedButRecoverable",
        "Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; in "
        "this state, the key can only be recovered or purged.", 409,
        "https://github.com/external-secrets/external-secrets/issues/3519 (secret variant)",
        "OBSERVED pattern (certificate/secret variants); key wording inferred"),
    "secret_deleted_but_recoverable": _kv(
        "Conflict", "ObjectIsDeletedButRecoverable",
        "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
        "in this state, the secret can only be recovered or purged.", 409,
        "https://github.com/external-secrets/external-secrets/issues/3519", "OBSERVED"),
    "pending_operation_conflict": _kv(
        "Conflict", "", "There is a pending operation on certificate {name}. Please try again later.",
        409, KEYVAULT_REST_ERRORS, "UNCONFIRMED (code Conflict plausible; wording invented)"),
    "bad_parameter": _kv(
        "BadParameter", "", "{detail}", 400, KEYVAULT_REST_ERRORS,
        "CONFIRMED code name (Key Vault REST error codes list); message depends on the parameter"),
    "secret_disabled": _kv(
        "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.", 403,
        "https://github.com/Azure/azure-sdk-for-js/issues/24756", "OBSERVED"),
    "throttled": _kv(
        "Throttled", "", "Request was not processed because too many requests were received. Reason: "
        "{reason}", 429, "https://learn.microsoft.com/azure/key-vault/general/service-limits",
        "UNCONFIRMED wording; 429 + Retry-After CONFIRMED by the service-limits page"),
}
