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
#: The Microsoft account (consumers) tenant. CONFIRMED: access-token-claims-reference ("The GUID that indicates
#: that the user is a consumer user from a Microsoft account is 9188040d-6c67-4c5b-b112-36a304b66dad") and
#: v2-protocols-oidc ("You can also use the consumer tenant GUID, 9188040d-…, in place of consumers").
MSA_TENANT_ID: Final = "9188040d-6c67-4c5b-b112-36a304b66dad"
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

# Azure Resource Manager's resource application. CONFIRMED: "Windows Azure Service Management API |
# 797f4846-ba00-4fd7-ba43-dac1f8f63013" in "Application IDs of commonly used Microsoft applications",
# https://learn.microsoft.com/troubleshoot/entra/entra-id/governance/verify-first-party-apps-sign-in (also the
# signIn examples of https://learn.microsoft.com/graph/api/signin-list?view=graph-rest-beta: resourceDisplayName
# "Windows Azure Service Management API", resourceId "797f4846-…").
AZURE_SERVICE_MANAGEMENT_APP_ID: Final = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
#: The resource identifiers it answers to. CONFIRMED: the Azure CLI asks for
#: "https://management.core.windows.net//.default" before anything else (azure-cli-core 2.91.0 cloud.py, AzureCloud
#: active_directory_resource_id='https://management.core.windows.net/'; _profile.py `_arm_scope` =
#: resource_to_scopes(...)); Azure Resource Manager's endpoint is resource_manager='https://management.azure.com/'
#: (same file); the azure-mgmt-* clients' default scope is "https://management.azure.com/.default" (e.g.
#: azure-mgmt-resource resources/_configuration.py credential_scopes). The exact servicePrincipalNames of the real
#: service principal: UNCONFIRMED (these two and the appId are modelled).
AZURE_SERVICE_MANAGEMENT_RESOURCES: Final = ("https://management.core.windows.net/", "https://management.azure.com/")

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
    AZURE_SERVICE_MANAGEMENT_APP_ID: (*AZURE_SERVICE_MANAGEMENT_RESOURCES, AZURE_SERVICE_MANAGEMENT_APP_ID),
}

#: Token `aud` values as Entra issues them for v1-style resources: Graph tokens carry
#: "https://graph.microsoft.com" (or "00000003-..." for v2 access tokens). UNCONFIRMED which exact
#: form Entra picks per resource; the simulator should accept every entry of RESOURCE_IDENTIFIERS.
TOKEN_AUDIENCE: Final[dict[str, str]] = {
    MICROSOFT_GRAPH_APP_ID: "https://graph.microsoft.com",
    EXCHANGE_ONLINE_APP_ID: "https://outlook.office365.com",
    AZURE_KEY_VAULT_APP_ID: "https://vault.azure.net",
}
#: Resources whose v1 token `aud` is the identifier as the client asked for it (the scope without "/.default").
#: Azure Resource Manager: CONFIRMED that its tokens carry "aud": "https://management.core.windows.net/" (with the
#: slash: the resource the Azure CLI asks for) in the claims of the activity-log examples,
#: https://learn.microsoft.com/azure/azure-monitor/platform/activity-log-schema; that the aud follows the
#: identifier asked for ("https://management.azure.com" for https://management.azure.com/.default): UNCONFIRMED.
AUDIENCE_AS_REQUESTED: Final[frozenset[str]] = frozenset({AZURE_SERVICE_MANAGEMENT_APP_ID})


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
    # Policy permissions (tenant app management policy reads). Ids OBSERVED: quoted identically by many public
    # scripts and manifests (a code search for each id, e.g. az ad app permission add scripts that list
    # "Policy.Read.All - 246dd0d5-…" and "Policy.ReadWrite.ApplicationConfiguration - be74164b-…"); the
    # permissions reference (GRAPH_PERMISSIONS_REFERENCE#policyreadall, #policyreadwriteapplicationconfiguration)
    # was not re-read: ids and wording UNCONFIRMED there.
    _role("246dd0d5-5bd0-4def-940b-0421030a5b68", "Policy.Read.All",
          "Read your organization's policies",
          "Allows the app to read all your organization's policies without a signed in user."),
    _role("be74164b-cff1-491c-8741-e671cb536e13", "Policy.ReadWrite.ApplicationConfiguration",
          "Read and write your organization's application configuration policies",
          "Allows the app to read and write your organization's application configuration policies, without a "
          "signed-in user.  This includes policies such as activityBasedTimeoutPolicy, claimsMappingPolicy, "
          "homeRealmDiscoveryPolicy, tokenIssuancePolicy  and tokenLifetimePolicy."),
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
    AZURE_SERVICE_MANAGEMENT_APP_ID: {
        # Azure Resource Manager: `az login` gets its token before anything else (AZURE_SERVICE_MANAGEMENT_*
        # above). No application permissions (ARM authorizes with Azure RBAC); the display name CONFIRMED there.
        "displayName": "Windows Azure Service Management API",
        "appId": AZURE_SERVICE_MANAGEMENT_APP_ID,
        "servicePrincipalNames": [*AZURE_SERVICE_MANAGEMENT_RESOURCES, AZURE_SERVICE_MANAGEMENT_APP_ID],
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
        _role_def("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator",
                  "Can read security information and reports, and manage configuration in Microsoft Entra ID and "
                  "Office 365."),
        _role_def("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader",
                  "Can read security information and reports in Microsoft Entra ID and Office 365."),
    )
}

# CONFIRMED (EXO_APP_ONLY_AUTH, "Option 1: Assign Microsoft Entra roles to the application" table, column
# "Exchange Online PowerShell"; MicrosoftDocs/office-docs-powershell exchange/docs-conceptual/
# app-only-auth-powershell-v2.md): Entra roles supported for app-only Exchange Online PowerShell. Template ids
# CONFIRMED in ENTRA_ROLES_REFERENCE. sandbox/azure/exchange.py answers 403 to a caller holding none of them.
EXCHANGE_APP_ONLY_SUPPORTED_ROLES: Final[frozenset[str]] = frozenset({
    "17315797-102d-40b4-93e0-432062caca18",  # Compliance Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
    "31392ffb-586c-42d1-9346-e59415a2cc4e",  # Exchange Recipient Administrator
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
    "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
    "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
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


def _app_role_grant_note(page: str, detail: str) -> str:
    """The note shared by the two app role grant operations (both tables are the same)."""
    return ("Application row: least 'AppRoleAssignment.ReadWrite.All and Application.Read.All'; higher "
            "'AppRoleAssignment.ReadWrite.All and Directory.Read.All' (CONFIRMED, " + _G + page + "). The read "
            "half may also be a permission the read tables list as higher: Application.ReadWrite.All is higher than "
            "Application.Read.All (application-get, serviceprincipal-get), Directory.ReadWrite.All higher than "
            "Directory.Read.All (serviceprincipal-list-approleassignments); Terraform's azuread provider documents "
            "'AppRoleAssignment.ReadWrite.All and Application.Read.All, or AppRoleAssignment.ReadWrite.All and "
            "Directory.Read.All, or Application.ReadWrite.All, or Directory.ReadWrite.All' "
            "(docs/resources/app_role_assignment.md). Application.ReadWrite.All or Directory.ReadWrite.All ALONE is "
            "not modelled: Microsoft does not list it, and Application.ReadWrite.All 'Does not allow management of "
            "consent grants' (its own description) - UNCONFIRMED either way. " + detail)


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
        _G + "application-get",
        notes="Application row: least Application.Read.All; higher Application.ReadWrite.OwnedBy, "
              "Application.ReadWrite.All (includes/permissions/application-get-permissions.md)."),
    "application.list": _ops(
        "GET /applications",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",)],
        _G + "application-list",
        notes="Application row: least Application.Read.All; higher Application.ReadWrite.OwnedBy, "
              "Application.ReadWrite.All, Directory.Read.All (includes/permissions/application-list-permissions.md). "
              "Application.ReadWrite.OwnedBy may list ALL applications in the tenant (documented: "
              + GRAPH_PERMISSIONS_REFERENCE + "#applicationreadwriteownedby)."),
    "application.update": _ops(
        "PATCH /applications/{id}",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "application-update",
        notes="Application row: least Application.ReadWrite.OwnedBy; higher Application.ReadWrite.All. "
              "keyCredentials/requiredResourceAccess collections are replaced as a whole. " + _OWNED_BY_NOTE),
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
        notes="Application row: least Application.ReadWrite.OwnedBy; higher Application.ReadWrite.All, "
              "Directory.ReadWrite.All; 'An application does not need any specific permission to roll its own "
              "keys.' Same proof rules as addKey (" + ROLLKEY_PROOF + "). Response 204."),
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
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-upsert",
        notes="Application row (current en-us page): least Application.ReadWrite.OwnedBy; higher "
              "Application.ReadWrite.All, Directory.ReadWrite.All (an older revision listed "
              "Application.ReadWrite.All as least and OwnedBy as higher: same set). 201 + body when created, "
              "204 when updated."),
    "servicePrincipal.get": _ops(
        "GET /servicePrincipals/{id} | /servicePrincipals(appId='{appId}')",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-get",
        confidence="CONFIRMED except Directory.ReadWrite.All (UNCONFIRMED: not in the Application row; kept because "
                   "it reads all directory data, and serviceprincipal-list-approleassignments lists it)",
        notes="Application row: least Application.Read.All; higher Application.ReadWrite.OwnedBy, "
              "Application.ReadWrite.All, Directory.Read.All "
              "(includes/permissions/serviceprincipal-get-permissions.md)."),
    "servicePrincipal.list": _ops(
        "GET /servicePrincipals",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-list",
        confidence="CONFIRMED except Directory.ReadWrite.All (UNCONFIRMED, as for servicePrincipal.get)",
        notes="Application row: least Application.Read.All; higher Application.ReadWrite.OwnedBy, "
              "Application.ReadWrite.All, Directory.Read.All "
              "(includes/permissions/serviceprincipal-list-permissions.md)."),
    "servicePrincipal.delete": _ops(
        "DELETE /servicePrincipals/{id}",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-delete",
        notes="Application row: least Application.ReadWrite.OwnedBy; higher (AgentIdentity* for agents,) "
              "Application.ReadWrite.All, Directory.ReadWrite.All. " + _OWNED_BY_NOTE),
    # --- app role assignments (admin consent) ---------------------------------------------------
    "servicePrincipal.appRoleAssignedTo.list": _ops(
        "GET /servicePrincipals/{resourceSpId}/appRoleAssignedTo",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Directory.Read.All",),
         ("Application.ReadWrite.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-list-approleassignedto",
        notes="Application row: least Application.Read.All; higher Application.ReadWrite.All, "
              "Application.ReadWrite.OwnedBy, Directory.Read.All, Directory.ReadWrite.All."),
    "servicePrincipal.appRoleAssignedTo.create": _ops(
        "POST /servicePrincipals/{resourceSpId}/appRoleAssignedTo",
        [("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All")],
        _G + "serviceprincipal-post-approleassignedto",
        confidence="CONFIRMED for the two documented pairs; the two higher pairs OBSERVED (Terraform azuread docs) "
                   "and implied by the read tables",
        notes=_app_role_grant_note("serviceprincipal-post-approleassignedto",
                                   "Body {principalId, resourceId, appRoleId}; 201 + appRoleAssignment.")),
    "servicePrincipal.appRoleAssignedTo.delete": _ops(
        "DELETE /servicePrincipals/{resourceSpId}/appRoleAssignedTo/{appRoleAssignmentId}",
        [("AppRoleAssignment.ReadWrite.All",)],
        _G + "serviceprincipal-delete-approleassignedto",
        notes="Application row: least AppRoleAssignment.ReadWrite.All; higher 'Not available.'"),
    "servicePrincipal.appRoleAssignments.list": _ops(
        "GET /servicePrincipals/{id}/appRoleAssignments",
        [("Application.Read.All",), ("Application.ReadWrite.All",), ("Application.ReadWrite.OwnedBy",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "serviceprincipal-list-approleassignments",
        notes="Application row: least Application.Read.All; higher Application.ReadWrite.All, "
              "Application.ReadWrite.OwnedBy, Directory.Read.All, Directory.ReadWrite.All."),
    "servicePrincipal.appRoleAssignments.create": _ops(
        "POST /servicePrincipals/{clientSpId}/appRoleAssignments",
        [("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All")],
        _G + "serviceprincipal-post-approleassignments",
        confidence="CONFIRMED for the two documented pairs; the two higher pairs as for appRoleAssignedTo.create",
        notes=_app_role_grant_note("serviceprincipal-post-approleassignments",
                                   "Same table as appRoleAssignedTo.create.")),
    "servicePrincipal.appRoleAssignments.delete": _ops(
        "DELETE /servicePrincipals/{clientSpId}/appRoleAssignments/{appRoleAssignmentId}",
        [("AppRoleAssignment.ReadWrite.All",)],
        _G + "serviceprincipal-delete-approleassignments",
        notes="Application row (current en-us page): least AppRoleAssignment.ReadWrite.All; higher 'Not "
              "available.' One localized revision lists Application.ReadWrite.All as higher: UNCONFIRMED, not "
              "modelled."),
    # --- directory roles ------------------------------------------------------------------------
    "roleManagement.roleAssignments.list": _ops(
        "GET /roleManagement/directory/roleAssignments?$filter=...",
        [("RoleManagement.Read.Directory",), ("RoleManagement.Read.All",), ("Directory.Read.All",),
         ("RoleManagement.ReadWrite.Directory",), ("Directory.ReadWrite.All",)],
        _G + "rbacapplication-list-roleassignments",
        notes="Directory provider, Application (least to most privileged): RoleManagement.Read.Directory, "
              "RoleManagement.Read.All, Directory.Read.All, RoleManagement.ReadWrite.Directory, "
              "Directory.ReadWrite.All. A $filter on roleDefinitionId or principalId is required by the service "
              "for the directory provider (UNCONFIRMED wording)."),
    "roleManagement.roleAssignments.create": _ops(
        "POST /roleManagement/directory/roleAssignments",
        [("RoleManagement.ReadWrite.Directory",)],
        _G + "rbacapplication-post-roleassignments",
        notes="Only RoleManagement.ReadWrite.Directory for the directory provider (Terraform's azuread docs also "
              "name Directory.ReadWrite.All for directory role assignments: UNCONFIRMED, not modelled). Body "
              "{principalId, roleDefinitionId, directoryScopeId: '/'}; 201 + unifiedRoleAssignment."),
    "roleManagement.roleAssignments.delete": _ops(
        "DELETE /roleManagement/directory/roleAssignments/{id}",
        [("RoleManagement.ReadWrite.Directory",)],
        _G + "unifiedroleassignment-delete",
        notes="Directory provider, Application: RoleManagement.ReadWrite.Directory only."),
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
    # --- deleted items (soft-deleted applications and service principals) -----------------------
    # The tables name one row per supported resource; application and servicePrincipal rows are identical.
    "deletedItems.list": _ops(
        "GET /directory/deletedItems/microsoft.graph.application | microsoft.graph.servicePrincipal",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "directory-deleteditems-list",
        confidence="CONFIRMED least privileged (Application.Read.All for both types); the higher ones from the "
                   "older table revision of directory-deleteditems-get (Application.Read.All, "
                   "Application.ReadWrite.OwnedBy, Application.ReadWrite.All, Directory.Read.All)",
        notes="'The OData cast type is a required part of the URI and calling GET /directory/deleteditems "
              "without a type is not supported.' 'This API returns 100 objects by default and supports "
              "returning up to 999 objects per page using $top.'"),
    "deletedItems.get": _ops(
        "GET /directory/deletedItems/{id}",
        [("Application.Read.All",), ("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",),
         ("Directory.Read.All",), ("Directory.ReadWrite.All",)],
        _G + "directory-deleteditems-get",
        confidence="CONFIRMED least privileged (Application.Read.All); higher ones from the older table revision"),
    "deletedItems.restore": _ops(
        "POST /directory/deletedItems/{id}/restore",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "directory-deleteditems-restore",
        notes="application and servicePrincipal rows: least Application.ReadWrite.OwnedBy (older revision: "
              "'Application.ReadWrite.OwnedBy, Application.ReadWrite.All'). 200 + the restored directoryObject. "
              "'restoring an application doesn't restore the associated service principal automatically. You "
              "must call this API to explicitly restore the deleted service principal.' OwnedBy only for objects "
              "the caller owns (UNCONFIRMED for deleted objects; " + _OWNED_BY_NOTE + ")."),
    "deletedItems.delete": _ops(
        "DELETE /directory/deletedItems/{id}",
        [("Application.ReadWrite.OwnedBy",), ("Application.ReadWrite.All",)],
        _G + "directory-deleteditems-delete",
        notes="Permanent: 'After an item is permanently deleted, it cannot be restored.' 204. OwnedBy only for "
              "objects the caller owns (UNCONFIRMED for deleted objects)."),
    # --- misc -----------------------------------------------------------------------------------
    "organization.list": _ops(
        "GET /organization",
        [("Organization.Read.All",), ("Directory.Read.All",), ("Organization.ReadWrite.All",),
         ("Directory.ReadWrite.All",)],
        _G + "organization-list",
        confidence="CONFIRMED by organization-get (api-reference/v1.0/api/organization-get.md, Application: "
                   "'Organization.Read.All, Directory.Read.All, Organization.ReadWrite.All, Directory.ReadWrite.All'); "
                   "one stored revision of includes/permissions/organization-list-permissions.md lists only "
                   "Directory.Read.All (least) and Directory.ReadWrite.All: that conflict is UNCONFIRMED"),
    "user.sendMail": _ops(
        "POST /users/{id | userPrincipalName}/sendMail",
        [("Mail.Send",)],
        _G + "user-sendmail",
        notes="Mail.Send can be scoped to specific mailboxes by an application access policy / "
              "RBAC for Applications (" + GRAPH_PERMISSIONS_REFERENCE + "#mailsend).",
        confidence="CONFIRMED permission id/meaning; Permissions table UNCONFIRMED (not found in the docs index: "
                   "Mail.Send only, no higher application permission modelled)"),
    # --- tenant app management policies ---------------------------------------------------------
    "policy.defaultAppManagementPolicy.get": _ops(
        "GET /policies/defaultAppManagementPolicy",
        [("Policy.Read.All",), ("Policy.Read.ApplicationConfiguration",),
         ("Policy.ReadWrite.ApplicationConfiguration",)],
        _G + "tenantappmanagementpolicy-get",
        notes="Application row: least Policy.Read.All; higher Policy.Read.ApplicationConfiguration, "
              "Policy.ReadWrite.ApplicationConfiguration (older revisions: Policy.Read.All, "
              "Policy.ReadWrite.ApplicationConfiguration). The default policy always exists; a tenant that never "
              "configured it answers isEnabled false and empty restrictions (the page's example response)."),
    "application.appManagementPolicies.list": _ops(
        "GET /applications/{id}/appManagementPolicies",
        [("Policy.Read.All", "Application.Read.All"), ("Policy.ReadWrite.ApplicationConfiguration",
                                                       "Application.Read.All")],
        _G + "application-list-appmanagementpolicies",
        confidence="UNCONFIRMED: the page's table was not found in the stored docs; modelled on the CONFIRMED "
                   "table of appmanagementpolicy-list-appliesto ('Application.Read.All and Policy.Read.All'; "
                   "higher 'Application.Read.All and Policy.ReadWrite.ApplicationConfiguration')",
        notes="The policies assigned to one application (an appManagementPolicy overrides the tenant default "
              "for the objects it applies to, resources/appmanagementpolicy)."),
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
    "unique_name_held_by_deleted_app": _ge(
        "Request_BadRequest", "Another object with the same value for property uniqueName already exists.", 400,
        "https://github.com/microsoftgraph/msgraph-bicep-types/issues/137 ; "
        "https://github.com/byte5ai/omadia/issues/916 (400 Request_BadRequest; the soft-deleted app reserves the "
        "name for 30 days)", "OBSERVED"),
    # --- deleted items --------------------------------------------------------------------------
    "deleted_items_cast_required": _ge(
        "Request_BadRequest", "A type cast is required on /directory/deletedItems, e.g. "
        "/directory/deletedItems/microsoft.graph.application.", 400,
        _G + "directory-deleteditems-list ('calling GET /directory/deleteditems without a type is not supported')",
        "CONFIRMED unsupported; status, code and message UNCONFIRMED"),
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
    "key_start_date_invalid": _ge(
        "KeyCredentialsInvalidStartDate", "Key credential start date is invalid.", 400,
        "https://github.com/hashicorp/terraform-provider-azuread/issues/1582 (seen for a credential re-created "
        "with a start date in the past)",
        "OBSERVED code and message; that Graph answers it for a keyCredential starting before the certificate's "
        "notBefore is UNCONFIRMED (KEY_CREDENTIAL_FACTS)"),
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
    "advanced_query_required": _ge(
        "Request_UnsupportedQuery",
        "Operator '{operator}' is not supported because the required parameters might be missing. Try adding "
        "$count=true query parameter and ConsistencyLevel:eventual header. Refer to "
        "https://aka.ms/graph-docs/advanced-queries for more information", 400,
        "https://learn.microsoft.com/graph/aad-advanced-queries ('Error handling for advanced queries on directory "
        "objects': the endsWith example)",
        "CONFIRMED for endsWith; the same text with 'ne' / 'not' UNCONFIRMED"),
    "filter_incompatible_operands": _ge(
        "BadRequest",
        "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types "
        "'{left}' and '{right}' for operator kind '{kind}'.", 400,
        "https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2306 (appRoleAssignedTo?$filter=principalId "
        "eq '<guid>': quoted GUID against an Edm.Guid property); the ODL parser's message",
        "OBSERVED for Edm.Guid vs Edm.String; the reverse (unquoted GUID against a string property) UNCONFIRMED"),
    "filter_all_unsupported": _ge(
        "Request_UnsupportedQuery", "Unsupported query.", 400,
        "https://learn.microsoft.com/graph/filter-query-parameter ('all operator ... Currently, it isn't "
        "supported in Microsoft Graph.')", "CONFIRMED unsupported; code/wording UNCONFIRMED"),
    "upsert_missing_without_prefer": _ge(
        "Request_ResourceNotFound",
        "Resource '{uniqueName}' does not exist or one of its queried reference-property objects "
        "are not present.",
        404, _G + "application-upsert ('... Prefer: create-if-missing header is not specified, this "
        "method returns a 404 Not Found error code')", "CONFIRMED status; code/message UNCONFIRMED"),
    # --- app management policies ------------------------------------------------------------------
    # Seen for a password credential (addPassword) under a passwordLifetime restriction, with
    # details [{"code": "InvalidKeyEndDate", "message": <the same text>, "target": "EndDate"}]. The text for a
    # keyCredential over asymmetricKeyLifetime is assumed identical. It names the policy, not the limit.
    "credential_lifetime_policy": _ge(
        "CredentialInvalidLifetimeAsPerAppPolicy",
        "Credential lifetime exceeds the max value allowed as per assigned policy '{policyId}'.", 400,
        "https://github.com/OfficeDev/microsoft-365-agents-toolkit/issues/10998 (full error body) ; "
        "https://github.com/KelvinTegelaar/CIPP-API/pull/1970 (same text)",
        "OBSERVED for passwordCredentials (status 400 from the toolkit's 'http client error'); for "
        "keyCredentials UNCONFIRMED"),
}

# Tenant app management policy facts (learn.microsoft.com/graph/api/resources/tenantappmanagementpolicy,
# …/appmanagementconfiguration, …/keycredentialconfiguration, …/tenantappmanagementpolicy-get).
APP_MANAGEMENT_POLICY: Final = {
    # CONFIRMED (tenantappmanagementpolicy-get example response): the default policy's id, name and description.
    "default": {
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and "
                       "service principals. To apply policy to targeted resources, create a new policy under "
                       "appManagementPolicies collection.",
        "isEnabled": False,  # CONFIRMED: "isEnabled … Default value is false."
    },
    # CONFIRMED (keycredentialconfiguration, v1.0): restrictionType asymmetricKeyLifetime | unknownFutureValue,
    # "Each value of restrictionType can be used only once per policy"; maxLifetime is an ISO 8601 duration,
    # required for asymmetricKeyLifetime; state enabled | disabled ("If disabled, the restriction isn't evaluated
    # or enforced"); restrictForAppsCreatedAfterDateTime: "the date from which the policy restriction applies to
    # newly created applications". trustedCertificateAuthority is a beta restrictionType (microsoftgraph/
    # microsoft-graph-docs PR 21187): accepted and stored, not enforced.
    "key_restriction_types": ("asymmetricKeyLifetime", "trustedCertificateAuthority", "unknownFutureValue"),
    "restriction_states": ("enabled", "disabled", "unknownFutureValue"),
    # Edm.Duration (OData CSDL JSON / ABNF: duration = [sign] "P" [n "D"] ["T" [n "H"] [n "M"] [n["." n] "S"]]):
    # days and time only, no years or months. UNCONFIRMED that Graph refuses P1Y / P3M for maxLifetime.
    "max_lifetime_grammar": r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
                            r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
}

# Soft deletion (deleted items). Sources:
#   CONFIRMED application-delete: "When deleted, apps are moved to a temporary container and can be restored
#     within 30 days. After that time, they are permanently deleted."
#   CONFIRMED directory-deleteditems-restore: "A recently deleted item remains available for up to 30 days";
#     "restoring an application doesn't restore the associated service principal automatically".
#   CONFIRMED learn.microsoft.com/entra/identity/enterprise-apps/restore-application: "If you deleted an
#     application registration in its home tenant ..., the enterprise application, which is its corresponding
#     service principal also got deleted." (Only the portal restores both.)
#   CONFIRMED Microsoft 365 message center MC344406 (2022): deleted service principals are soft-deleted into
#     deleted items for 30 days too.
#   OBSERVED (vendor manual, Quest On Demand Recovery user guide): "if an object ... is soft deleted and then
#     recovered from the Recycle Bin, all attributes and links including group membership and app role
#     assignments are preserved by Microsoft." Directory role assignments coming back with a restored service
#     principal: UNCONFIRMED (the sandbox restores them too, like the other links).
#   OBSERVED microsoftgraph/msgraph-bicep-types#137 ("UniqueName is not released after deleting an app
#     registration": re-creating through the Graph Bicep extension answers "Another object with the same value
#     for property uniqueName already exists.") and byte5ai/omadia#916 (the soft-deleted app "reserves the name
#     for 30 days"; Entra reports the collision as 400 Request_BadRequest, not 409).
DELETED_ITEMS_RETENTION_SECONDS: Final = 30 * 24 * 3600
SOFT_DELETE_FACTS: Final[dict[str, str]] = {
    "application": "DELETE /applications/{id} moves the app and its home-tenant service principal to deleted items",
    "servicePrincipal": "DELETE /servicePrincipals/{id} moves the service principal to deleted items",
    "restore_application": "restores the application only; its service principal needs its own restore",
    "restore_links": "a restored service principal keeps its app role assignments (OBSERVED); directory role "
                     "assignments UNCONFIRMED",
    "unique_name": "a soft-deleted app keeps its uniqueName: creating or upserting that uniqueName fails until the "
                   "item is restored, permanently deleted, or 30 days pass (OBSERVED)",
    "restore_sp_without_app": "UNCONFIRMED: restoring a service principal whose application is still deleted "
                              "fails like creating one (the appId does not reference a valid application object)",
}

# uniqueName facts. CONFIRMED: upsert needs displayName in the body; 201 on create, 204 on update,
# 404 without Prefer (application-upsert page). UNCONFIRMED (application resource page, not re-read):
# uniqueName is an alternate key, immutable once set, and is set only through the upsert.
UNIQUE_NAME_FACTS: Final[dict[str, str]] = {
    "set_by": "PATCH /applications(uniqueName='{u}') with Prefer: create-if-missing",
    "immutable": "UNCONFIRMED: cannot be changed after creation",
    "source": _G + "application-upsert ; https://learn.microsoft.com/graph/api/resources/application",
}


# keyCredential facts the simulator enforces.
KEY_CREDENTIAL_FACTS: Final[dict[str, str]] = {
    # Edm.Binary (key, customKeyIdentifier) is read like .NET's Convert.FromBase64String: "The white-space
    # characters, and their Unicode names and hexadecimal code points, are: CHARACTER TABULATION (U+0009), LINE
    # FEED (U+000A), CARRIAGE RETURN (U+000D), SPACE (U+0020) ... [they] are ignored"
    # (learn.microsoft.com/dotnet/api/system.convert.frombase64string, Remarks). OBSERVED: the Azure CLI sends
    # PEM bodies with line breaks (az ad app credential reset --create-cert --append; role/custom.py _get_public
    # strips only the BEGIN/END lines) and Graph accepts them
    # (REFERENCE.md).
    "binary_whitespace": "space, \\t, \\r, \\n ignored; anything else outside standard base64 is refused",
    # Dates inside the certificate's validity, in UTC. OBSERVED: the Azure CLI sends startDateTime = notBefore +
    # 1 s and endDateTime = notAfter - 1 s (azure-cli 2.91.0, azure/cli/command_modules/role/custom.py
    # _validate_app_dates) and Graph accepts them;
    # an end after notAfter is refused with KeyCredentialsInvalidEndDate (REFERENCE.md). A start before notBefore:
    # KeyCredentialsInvalidStartDate, UNCONFIRMED (no public report for certificates). start >= end: refused,
    # UNCONFIRMED which of the two codes Graph uses (the simulator answers the end-date error).
    "dates": "notBefore <= startDateTime < endDateTime <= notAfter, compared to the second",
}

# $filter facts the simulator enforces (graph_odata.py).
GRAPH_FILTER_FACTS: Final[dict[str, str]] = {
    "lambda_any": "collection/any(c:c eq '...') on string collections (servicePrincipalNames, identifierUris, tags "
                  "...): https://learn.microsoft.com/graph/filter-query-parameter 'Filter using lambda operators'; "
                  "CONFIRMED",
    "lambda_all": "'all' is not supported in Microsoft Graph (same page); CONFIRMED",
    "advanced_operators": "ne, not and endsWith on directory objects need ConsistencyLevel: eventual and "
                          "$count=true (https://learn.microsoft.com/graph/aad-advanced-queries); CONFIRMED. "
                          "endsWith only on mail, otherMails, userPrincipalName, proxyAddresses (same page)",
    "count_without_header": "?$count=true without ConsistencyLevel: eventual is silently ignored on directory "
                            "objects: no @odata.count (same page, 'Error handling'); CONFIRMED",
    "in_operator": "'The in operator is supported by default whenever eq operator is supported by default.' "
                   "(same page); CONFIRMED",
    "literal_types": "An unquoted GUID is an Edm.Guid literal (Graph's example assignedLicenses/any(s:s/skuId eq "
                     "184efa21-...), filter-query-parameter; CONFIRMED); an Edm.Guid property compared with a "
                     "quoted string is refused (msgraph-sdk-dotnet#2306, OBSERVED); a string property compared with "
                     "an unquoted GUID is refused the same way (ODL rule; UNCONFIRMED on Graph)",
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
    # A certificate client assertion whose `aud` is not this tenant's token endpoint. CONFIRMED text in the
    # Azure SDKs' azure-identity TROUBLESHOOTING.md ("Troubleshoot ClientAssertionCredential authentication
    # issues": "AADSTS700023 | Client assertion audience claim does not match Realm issuer. Review the
    # documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials."); OBSERVED
    # for an assertion addressed to another cloud's token endpoint (a public test suite, "measured 2026-09-29").
    # Note: the error-codes reference lists AADSTS700023 as "InvalidResourcelessScope"; the service's answer wins.
    # (AADSTS700212 is the federated-credential audience code: "No matching federated identity record found for
    # presented assertion audience".)
    "assertion_audience_invalid": _aad(
        "invalid_client", 700023,
        "Client assertion audience claim does not match Realm issuer. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials.", 401,
        confidence="CONFIRMED (Azure SDK TROUBLESHOOTING.md); OBSERVED"),
    # The app is registered in the tenant but has no service principal there (or the new one has not replicated
    # to the token service). OBSERVED: learn.microsoft.com/microsoftteams/platform/teams-sdk/teams/
    # app-authentication/troubleshooting (401 invalid_client, "AADSTS7000229: The client application
    # 00001111-… is missing service principal in the tenant aaaabbbb-…. See instructions here:
    # https://go.microsoft.com/fwlink/?linkid=2225119"); Azure/Commercial-Marketplace-SaaS-Accelerator#830;
    # SidU/openclaw-teams-setup#3 (`az ad app create` makes no service principal). Not in the reference table.
    "missing_service_principal": _aad(
        "invalid_client", 7000229,
        "The client application {client_id} is missing service principal in the tenant {tenant_id}. See "
        "instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", 401,
        confidence="OBSERVED (Microsoft Teams SDK troubleshooting page quotes the response)"),
    # CONFIRMED (AADSTS_REFERENCE table): "AADSTS9001023 | The grant type isn't supported over the /common or
    # /consumers endpoints. Please use the /organizations or tenant-specific endpoint." `error` UNCONFIRMED.
    "grant_not_supported_on_alias": _aad(
        "invalid_request", 9001023,
        "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations "
        "or tenant-specific endpoint.", confidence="CONFIRMED text; error and status UNCONFIRMED"),
    # Admin consent declined. v1: UNCONFIRMED wording (the reference: "AADSTS65004 | UserDeclinedConsent - User
    # declined to consent to access the app."). v2: CONFIRMED example of v2-admin-consent ("Error response":
    # error=consent_required&error_description=AADSTS65004: The resource owner or authorization server denied
    # the request.").
    "admin_consent_declined": _aad(
        "access_denied", 65004, "User declined to consent to access the app.",
        confidence="CONFIRMED meaning (reference table); wording from the table"),
    "admin_consent_declined_v2": _aad(
        "consent_required", 65004, "The resource owner or authorization server denied the request.",
        confidence="CONFIRMED (v2-admin-consent example error response)"),
    # v2 admin consent without `scope` ("scope | Required", v2-admin-consent). The answer is UNCONFIRMED: modelled
    # on AADSTS900144 (reference: "The request body must contain the following parameter: '{name}'.").
    "admin_consent_scope_missing": _aad(
        "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.",
        confidence="UNCONFIRMED for this endpoint; the code and text CONFIRMED in the reference table"),
    # Instance discovery of an authority host Entra does not know. CONFIRMED (error, code, text and body shape):
    # https://learn.microsoft.com/entra/msal/dotnet/advanced/custom-authority-aliases ("if a non-existent
    # authority is used, then Microsoft Entra ID returns an "invalid_instance" error": "AADSTS50049: Unknown or
    # invalid instance.", error_uri https://login.microsoftonline.com/error?code=50049). Status 400: UNCONFIRMED
    # (Microsoft's MSAL common-core tests for iOS/macOS, MSIDAadAuthorityTests, answer it with 400).
    "invalid_instance": _aad(
        "invalid_instance", 50049, "Unknown or invalid instance.",
        confidence="CONFIRMED error and text (custom-authority-aliases); status UNCONFIRMED"),
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
    "secret_managed_by_certificate": _kv(
        "Conflict", "", "Secret {name} is managed by a certificate and cannot be set directly.", 409,
        "https://learn.microsoft.com/azure/key-vault/certificates/about-certificates#composition-of-a-certificate",
        "UNCONFIRMED (a certificate's secret is managed: true, 'its lifetime is managed by Key Vault'; the status "
        "and wording of a set on that name are invented)"),
    "secret_disabled": _kv(
        "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.", 403,
        "https://github.com/Azure/azure-sdk-for-js/issues/24756", "OBSERVED"),
    "throttled": _kv(
        "Throttled", "", "Request was not processed because too many requests were received. Reason: "
        "{reason}", 429, "https://learn.microsoft.com/azure/key-vault/general/service-limits",
        "UNCONFIRMED wording; 429 + Retry-After CONFIRMED by the service-limits page"),
    "purge_protected": _kv(
        "Forbidden", "",
        'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault '
        "service will automatically purge it after the retention period has passed.\r\nVault: "
        "{vault};location={location}", 403,
        "https://github.com/Azure/sap-automation/pull/200 ; https://github.com/microsoft/AzureTRE/issues/1951 "
        "(PurgeDeletedSecret answered 403 Code=Forbidden with this message)",
        "OBSERVED (status, code, message); innererror UNCONFIRMED (none shown)"),
    "merge_x5c_invalid": _kv(
        "BadParameter", "", "Property x5c has invalid value X5C must has at least one valid item", 400,
        "https://github.com/MicrosoftDocs/azure-docs/issues/100959 (merge of a PKCS#7 file)", "OBSERVED"),
    "merge_key_mismatch": _kv(
        "BadParameter", "", "The public key of the certificate in x5c does not match the public key of the "
        "pending certificate {name}.", 400,
        "https://learn.microsoft.com/azure/key-vault/certificates/overview-renew-certificate ('merge the signed "
        "CSR with the same CSR request that you created. Otherwise, the key won't match.')",
        "CONFIRMED that a mismatching key is refused; wording UNCONFIRMED"),
    "merge_not_pending": _kv(
        "Forbidden", "", "Pending status must be in progress to allow update.", 403,
        "https://github.com/Azure/azure-sdk-for-js/issues/25758 (same answer for a finished operation)",
        "OBSERVED for PATCH /pending; for merge UNCONFIRMED"),
}

# Certificate import (certificates/import-certificate): a PFX that does not open with `pwd` or holds no private key is
# refused with 400 BadParameter (the simulator's load_import; "The specified PKCS#12 X.509 certificate content can
# not be read..." OBSERVED in damienbod/AspNetCoreCertificates#38). Deliberately NOT enforced, because Microsoft does
# not document them as import errors: a key weaker than RSA 2048 (Azure Policy's built-in "Certificates using RSA
# cryptography should have the specified minimum key size", github.com/Azure/azure-policy built-in-policies/
# policyDefinitions/Key Vault/Certificates_RSA_MinimumKeySize.json, exists to deny what the vault itself accepts) and
# an expired certificate (the REST page says "an existing valid certificate" without an error for it). UNCONFIRMED;
# the product checks both itself before it imports.

# --- Key Vault: api-versions, lifetime actions, soft delete and purge protection -------------------------------

# Every data-plane api-version an official client sends for the routes the simulator models. Sources:
# azure-keyvault-certificates / -keys / -secrets _shared/client_base.py ApiVersion (2016-10-01, 7.0 … 7.6,
# 2025-07-01, 2026-04-01; CONFIRMED in the installed packages); their preview releases' CHANGELOG.md ("The default
# service version is now 7.6-preview.2", azure-keyvault-keys 4.11.0b1 / azure-sdk-for-js keyvault 4.8.0-beta.1)
# and the REST spec tags (azure-rest-api-specs specification/keyvault/data-plane/readme.md, listed by
# Azure/azure-sdk-for-rust services/svc/keyvault/README.md: 2015-06-01, 7.0-preview … 7.3-preview,
# 7.4-preview.1, 7.5-preview.1, 7.6-preview.1); azure-cli pins certificates and secrets to 7.4 and keys to
# 7.6-preview.2 (src/azure-cli/azure/cli/command_modules/keyvault/_client_factory.py). CONFIRMED.
KEYVAULT_API_VERSIONS: Final = (
    "2026-04-01", "2025-07-01", "7.6", "7.6-preview.2", "7.6-preview.1", "7.5", "7.5-preview.1", "7.4",
    "7.4-preview.1", "7.3", "7.3-preview", "7.2", "7.2-preview", "7.1", "7.1-preview", "7.0", "7.0-preview",
    "2016-10-01", "2015-06-01",
)
KEYVAULT_LATEST_API_VERSION: Final = "2026-04-01"
# An unknown api-version: 400 {"error": {"code": "BadParameter", "message": "The specified version (7.1) is not
# recognized. Consider using the latest supported version (2016-10-01)."}} OBSERVED in
# Azure/azure-sdk-for-net#14789 and Azure/azure-sdk-for-python#28595.

# A path the vault does not route (e.g. GET /settings on a vault, which only Managed HSM serves): 404 with IIS's
# HTML page, not Key Vault's JSON error. OBSERVED: Azure/azure-sdk-for-js#26315 (getSettings → "404 + HTML"),
# Azure/azure-sdk-for-net#24877, Azure/azure-xplat-cli#2577 (title "404 - File or directory not found.").
# That the 401 challenge comes first for such a path is UNCONFIRMED (the challenge is Key Vault's first answer to
# any request without a token: azure/key-vault/general/authentication-requests-and-responses).
KEYVAULT_UNKNOWN_ROUTE_STATUS: Final = 404
KEYVAULT_UNKNOWN_ROUTE_HTML: Final = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">'
    '\r\n<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n<meta http-equiv="Content-Type" '
    'content="text/html; charset=iso-8859-1"/>\r\n<title>404 - File or directory not found.</title>\r\n</head>'
    '\r\n<body>\r\n<div id="header"><h1>Server Error</h1></div>\r\n<div id="content">\r\n <div '
    'class="content-container"><fieldset>\r\n  <h2>404 - File or directory not found.</h2>\r\n  <h3>The resource '
    "you are looking for might have been removed, had its name changed, or is temporarily unavailable.</h3>\r\n "
    "</fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n"
)

# A certificate policy without lifetime_actions: the service adds AutoRenew at 80 % of the lifetime. CONFIRMED:
# https://learn.microsoft.com/azure/key-vault/certificates/tutorial-rotate-certificates ("By default, a
# certificate's auto-renewal is set at 80 percent of its lifetime"); OBSERVED in the policies the service returns
# (azure-sdk-for-js keyvault-certificates test recordings: "lifetime_actions":[{"trigger":{"lifetime_percentage":80},
# "action":{"action_type":"AutoRenew"}}] for a policy created with none).
KEYVAULT_DEFAULT_LIFETIME_ACTIONS: Final = ({"trigger": {"lifetime_percentage": 80},
                                             "action": {"action_type": "AutoRenew"}},)
# LifetimeAction (rest/api/keyvault/certificates/create-certificate#lifetimeaction, and the SDKs' LifetimeAction
# docs): trigger lifetime_percentage 1-99, or days_before_expiry between 1 and validity_in_months * 27;
# action_type AutoRenew or EmailContacts. CONFIRMED. AutoRenew makes a new version with a new key unless
# key_props.reuse_key (whose service default is false: Azure/azure-sdk-for-python#7880); tags are replicated to
# the renewed version (certificates/overview-renew-certificate FAQ). CONFIRMED. EmailContacts only notifies the
# vault's certificate contacts (overview-renew-certificate, "Get notified about certificate expiration"). CONFIRMED.
KEYVAULT_LIFETIME_ACTION_TYPES: Final = ("AutoRenew", "EmailContacts")
KEYVAULT_LIFETIME_PERCENTAGE_RANGE: Final = (1, 99)
KEYVAULT_DAYS_BEFORE_EXPIRY_PER_MONTH: Final = 27

# DeletionRecoveryLevel (learn.microsoft.com/javascript/api/@azure/keyvault-keys/knowndeletionrecoverylevel):
# Recoverable+Purgeable = soft delete with purge allowed (90 days); Recoverable = purge not allowed (purge
# protection); the Customized* forms when 7 <= SoftDeleteRetentionInDays < 90. "+ProtectedSubscription" adds that
# the subscription cannot be cancelled (not modelled). CONFIRMED. Retention is 7-90 days, default 90
# (azure/key-vault/general/soft-delete-overview). CONFIRMED. Purge with purge protection: 403 (KEYVAULT_ERRORS
# "purge_protected").
KEYVAULT_RETENTION_DAYS_RANGE: Final = (7, 90)

#: Standalone secrets. CONFIRMED: "The SET operation adds a secret to the Azure Key Vault. If the named secret already
#: exists, Azure Key Vault creates a new version of that secret." (rest/api/keyvault/secrets/set-secret); get-secret
#: without a version returns the latest version (rest/api/keyvault/secrets/get-secret: "This URI fragment is
#: optional. If not specified, the latest version of the secret is returned."); get-secret-versions: "Full secret
#: identifier and attributes are provided in the response. No values are returned for the secrets."; update-secret
#: changes attributes, content type and tags, not the value (rest/api/keyvault/secrets/update-secret); values are
#: "sequences of octets (8-bit bytes), with a maximum size of 25 KB each", contentType at most 255 characters
#: (azure/key-vault/secrets/about-secrets). A disabled version answers 403 SecretDisabled (KEYVAULT_ERRORS
#: "secret_disabled", OBSERVED). Azure RBAC data actions (role-based-access-control/permissions/security,
#: Microsoft.KeyVault): secrets/setSecret/action, secrets/getSecret/action, secrets/readMetadata/action,
#: secrets/update/action; Key Vault Secrets Officer holds secrets/*, Key Vault Secrets User getSecret and
#: readMetadata (role-based-access-control/built-in-roles/security): UNCONFIRMED names (recalled, not re-read
#: on those pages); the simulator's vault allows a principal every data action or none (keyvault.py), so the
#: two roles are not told apart.
KEYVAULT_SECRET_FACTS: Final[dict] = {
    "max_value_bytes": 25 * 1024,
    "max_content_type_chars": 255,
    "source": "https://learn.microsoft.com/rest/api/keyvault/secrets/set-secret",
}


def keyvault_recovery_level(purge_protection: bool, retention_days: int) -> str:
    """The recoveryLevel Key Vault reports for a vault's soft-delete settings."""
    level = "Recoverable" if retention_days >= 90 else "CustomizedRecoverable"
    return level if purge_protection else f"{level}+Purgeable"


# =====================================================================================================
# 6. Directory replication, as the token endpoint sees it; discovery and admin consent; token claims
# =====================================================================================================

#: What each replicationDelay kind of the simulator stands for (PUT /_sandbox/faults).
REPLICATION_DELAY_FACTS: Final[dict[str, dict[str, str]]] = {
    "servicePrincipal": {
        "token_endpoint": "AADSTS7000229 in the app's home tenant, AADSTS700016 elsewhere (see AADSTS_ERRORS)",
        "source": "REFERENCE.md (replication errors of Graph writes); the Teams SDK troubleshooting page for "
                  "AADSTS7000229; AADSTS700016 'This can happen if the application has not been installed by "
                  "the administrator of the tenant or consented to' (AADSTS_REFERENCE) for a consent not yet "
                  "replicated",
        "confidence": "OBSERVED errors; the lag of the token service is modelled, no documented duration",
    },
    "appRoleAssignment": {
        "token_endpoint": "tokens' `roles` lack a new grant until the delay has passed",
        "source": "https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignedto and "
                  "serviceprincipal-list-approleassignments ('This request might have replication delays for app "
                  "role assignments that were recently granted or removed'); https://devblogs.microsoft.com/"
                  "identity/designing-for-eventual-consistency-for-microsoft-entra/",
        "confidence": "CONFIRMED that grants replicate with delay; that tokens lag accordingly is OBSERVED "
                      "(REFERENCE.md: the proof retries 'through propagation')",
    },
    "keyCredential": {
        "token_endpoint": "AADSTS700027 'The certificate with identifier used to sign the client assertion is "
                          "not registered on application' for a key added within the delay",
        "source": "the eventual-consistency guidance above; hashicorp/terraform-provider-azuread waits for new "
                  "credentials (UNCONFIRMED: the version of application_certificate_resource.go read here "
                  "does not poll)",
        "confidence": "UNCONFIRMED duration and behaviour; AADSTS700027 text OBSERVED (AADSTS_ERRORS)",
    },
    "roleAssignment": {
        "token_endpoint": "a directory role assignment is not in the role information of tokens issued within the "
                          "delay; Exchange Online's admin API (exchange.py) answers 403 with the role message to "
                          "such a token, and to every later request with that token",
        "source": "EXO_APP_ONLY_AUTH ('The application object provisioned inside Microsoft Entra ID has a Directory "
                  "Role assigned to it, which is returned in the access token. The session's role based access "
                  "control (RBAC) is configured using the directory role information that's available in the "
                  "token.'); the eventual-consistency guidance above; GreyCorbel/ExoHelper Get-ExoToken "
                  "-ForceRefresh ('continue working after PIM JIT re-elevation': a role gained later needs a new "
                  "token)",
        "confidence": "CONFIRMED that Exchange reads the role from the token; the replication lag is OBSERVED "
                      "(REFERENCE.md: the role-propagation window), its duration UNCONFIRMED",
    },
}

#: OIDC discovery for the authorities that name no tenant. CONFIRMED (v2-protocols-oidc): the authority is
#: https://login.microsoftonline.com/{tenant}/v2.0 with {tenant} one of common, organizations, consumers, a
#: tenant id or domain; "GET /common/v2.0/.well-known/openid-configuration" is the sample request.
#: OBSERVED (public OIDC client code and tests quoting the live document, e.g. erlef/oidcc "Microsoft Entra ID
#: documents its issuer with a `{tenantid}` placeholder"): the issuer of common and organizations is
#: "https://login.microsoftonline.com/{tenantid}/v2.0" (literally), the endpoints keep the alias
#: (".../common/oauth2/v2.0/token"). UNCONFIRMED: consumers' issuer is the MSA tenant's
#: ".../9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"; tenant_region_scope is null for the aliases.
DISCOVERY_FACTS: Final[dict[str, str]] = {
    "multi_tenant_issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
    "consumers_issuer": f"https://login.microsoftonline.com/{MSA_TENANT_ID}/v2.0",
    "source": "https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc",
}

#: Instance discovery: GET https://login.microsoftonline.com/common/discovery/instance?api-version=1.1
#: &authorization_endpoint=<authority>/oauth2/v2.0/authorize, the request MSAL makes "before acquiring tokens" to
#: learn each cloud's aliases, the preferred_network host (for requests) and preferred_cache host (cache keys), and
#: to validate the authority. CONFIRMED: https://learn.microsoft.com/entra/msal/dotnet/advanced/custom-authority-
#: aliases (request, purposes, invalid_instance); MSAL Python 1.39 application.py `_get_instance_metadata` sends
#: api-version=1.1 with authorization_endpoint=https://<instance>/common/oauth2/authorize and reads `metadata`
#: (aliases); authority.py `_instance_discovery` sends api-version=1.0 for an authority host it does not know and
#: reads `tenant_discovery_endpoint`.
#: Body CONFIRMED: msal-common src/authority/AuthorityMetadata.ts rawMetdataJSON.instanceDiscoveryMetadata (the
#: five groups below, verbatim) and OBSERVED in live responses recorded by Azure/azure-sdk-for-js tests
#: (nock recordings of GET /common/discovery/instance: {"tenant_discovery_endpoint": "https://login.microsoftonline.
#: com/<tenant>/v2.0/.well-known/openid-configuration", "api-version": "1.1", "metadata": [the five groups]},
#: "Cache-Control: max-age=86400, private"). The tenant and host of the authorization endpoint are echoed (the
#: tenant is not validated: "It does not validate tenant info", ADAL Android IDiscovery). A v1 authorization
#: endpoint (/oauth2/authorize) gets the v1 document, /{tenant}/.well-known/openid-configuration: UNCONFIRMED
#: (Microsoft's MSAL common-core tests for iOS/macOS answer it so; MSAL Python's authority.py notes the api-version
#: 1.0 answer "seemingly returns V1 endpoint only", which the simulator does not model: there, too, the
#: authorization endpoint's version decides).
INSTANCE_DISCOVERY_METADATA: Final[tuple[dict, ...]] = (
    {"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
     "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]},
    {"preferred_network": "login.partner.microsoftonline.cn", "preferred_cache": "login.partner.microsoftonline.cn",
     "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"]},
    {"preferred_network": "login.microsoftonline.de", "preferred_cache": "login.microsoftonline.de",
     "aliases": ["login.microsoftonline.de"]},
    {"preferred_network": "login.microsoftonline.us", "preferred_cache": "login.microsoftonline.us",
     "aliases": ["login.microsoftonline.us", "login.usgovcloudapi.net"]},
    {"preferred_network": "login-us.microsoftonline.com", "preferred_cache": "login-us.microsoftonline.com",
     "aliases": ["login-us.microsoftonline.com"]},
)
INSTANCE_DISCOVERY_FACTS: Final[dict[str, str]] = {
    "path": "/common/discovery/instance",
    "cache_control": "max-age=86400, private",
    "source": "https://learn.microsoft.com/entra/msal/dotnet/advanced/custom-authority-aliases",
}

#: Admin consent. CONFIRMED (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent):
#: GET /{tenant}/v2.0/adminconsent?client_id&scope&redirect_uri&state, tenant "in GUID or friendly name format
#: OR generically referenced with organizations"; scope Required, "In order to request app permissions, you
#: must use the /.default value"; success redirect "?admin_consent=True&tenant=<GUID>&scope=…&state=…"; error
#: redirect carries admin_consent=True, error, error_description, state. v1 (/{tenant}/adminconsent, REFERENCE.md):
#: "?admin_consent=True&tenant=…&state=…". With organizations (or the older common) the administrator picks
#: their tenant at sign-in and the redirect names it (`tenant` "The directory tenant that granted your
#: application the permissions it requested").
ADMIN_CONSENT_FACTS: Final[dict[str, str]] = {
    "v2_path": "/{tenant}/v2.0/adminconsent",
    "v1_path": "/{tenant}/adminconsent",
    "source": "https://learn.microsoft.com/entra/identity-platform/v2-admin-consent",
}

#: Access-token claims per token version. CONFIRMED (https://learn.microsoft.com/entra/identity-platform/
#: access-token-claims-reference): `appid` and `appidacr` "only present in v1.0 tokens"; `azp` and `azpacr`
#: "only present in v2.0 tokens" ("A replacement for appid"); acr values "For a public client, the value is 0.
#: When you use the client ID and client secret, the value is 1. When you use a client certificate for
#: authentication, the value is 2."; a v2.0 `iss` ends in /v2.0; `ver` "1.0" or "2.0". The simulator issues
#: v1.0 tokens for Microsoft's resources (Graph, Exchange Online, Key Vault: `iss` https://sts.windows.net/…/)
#: and a v2.0 token for api://AzureADTokenExchange (its `iss` is the federated credential's v2.0 issuer).
#: UNCONFIRMED: the acr value of managed identity and federated-credential tokens (2 assumed).
TOKEN_CLAIMS_FACTS: Final[dict[str, tuple[str, ...]]] = {
    "v1": ("appid", "appidacr", "idp"),
    "v2": ("azp", "azpacr"),
}

#: Key Vault certificate policy subjects (x509_props.subject). CONFIRMED: Key Vault documents only "The subject
#: name. Should be a valid X509 distinguished name" (learn.microsoft.com/python/api/azure-keyvault-certificates/
#: azure.keyvault.certificates.certificatepolicy); its own tooling says "If you must use a comma (,) or a period (.)
#: within a property in the SubjectName parameter, you must enclose the property field in quotation marks. For
#: example, you may use O="Contoso, Ltd."" (learn.microsoft.com/powershell/module/az.keyvault/
#: new-azkeyvaultcertificatepolicy, -SubjectName). OBSERVED: an unquoted comma inside a value is answered
#: "Property policy.x509_props has invalid value. Invalid X.500 distinguished name" (MicrosoftDocs/azure-docs#62463).
#: The quoting rules are Windows' X.500 strings (CertStrToName, learn.microsoft.com/windows/win32/api/wincrypt/
#: nf-wincrypt-certstrtonamew): "," or ";" separate RDNs, "Quotation marks ("") are supported. A quotation mark can
#: be included in a quoted value by using two sets of quotation marks (for example, CN="User ""one"""), white
#: space around keys and values is ignored. UNCONFIRMED that Key Vault's parser is CertStrToName itself: how it
#: reads "+" (multi-valued RDNs), a leading "#" (hex) and RFC 4514 backslash escapes is not modelled (unquoted
#: values are kept as written).
KEYVAULT_SUBJECT_FACTS: Final[dict[str, str]] = {
    "rdn_separators": ",;",
    "quote": '"',
    "quote_in_quoted_value": '""',
    "source": "https://learn.microsoft.com/powershell/module/az.keyvault/new-azkeyvaultcertificatepolicy",
}


# =====================================================================================================
# Exchange Online admin API (the REST endpoint of the Exchange Online PowerShell V3 module)
# =====================================================================================================
# Microsoft does not document this endpoint; sandbox/azure/exchange.py serves what the V3 module and public
# clients send and what was observed. Sources:
#   EXO_APP_ONLY_AUTH (CONFIRMED): app-only access needs the application permission Exchange.ManageAsApp on
#     Office 365 Exchange Online and one of EXCHANGE_APP_ONLY_SUPPORTED_ROLES; the role is read from the token.
#   GreyCorbel/ExoHelper (OBSERVED, a public client of the endpoint): Commands/Public/New-ExoConnection.ps1
#     ("https://outlook.office365.com/adminapi/beta/$($Connection.TenantId)/InvokeCommand", the tenant id from the
#     token's tid or a tenant domain), Invoke-ExoCommand.ps1 (body {"CmdletInput": {"CmdletName", "Parameters"}},
#     headers X-CmdletName, X-AnchorMailbox "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<tenant>"
#     for app-only, Prefer odata.maxpagesize; results in `value`, paging by `@odata.nextLink`, warnings in
#     `@adminapi.warnings`), Get-ExoToken.ps1 (scope "https://outlook.office365.com/.default"),
#     Commands/Internal/Get-ExoException.ps1 (errors: {"error": {"code", "message", "details": [{"message":
#     "<code>|<exception type>|<text>"}], "innerError": {...}}}).
#   Error bodies OBSERVED: MicrosoftDocs/office-docs-powershell#7970 (HttpStatusCode=401 {"error": {"code":
#     "Unauthorized", "message": "User is not allowed to call Get-Mailbox", "innererror": {"message": …, "type":
#     "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}); Microsoft's own troubleshooting article for
#     Get-MailboxFolderStatistics (an InternalServerError body with the same innererror type); public client code
#     quoting {"error": {"code": "BadRequest", "message": "Invalid Operation", "innererror": {…, "internalexception":
#     {"message": …}}}} for a bad parameter.
#   The role message OBSERVED verbatim in Microsoft365DSC/Microsoft365DSC#4530, maester365/maester#718,
#     MicrosoftDocs/office-docs-powershell#11332 and (with its [AuthZRequestId=…][FailureCategory=…] prefix) in
#     public write-ups of Connect-ExchangeOnline app-only failures. That the REST endpoint answers it with 403:
#     OBSERVED (REFERENCE.md "Exchange Online"); its JSON code "Forbidden": UNCONFIRMED.
EXCHANGE_ADMIN_API: Final[dict[str, str]] = {
    "path": "/adminapi/beta/{tenant}/InvokeCommand",          # OBSERVED (ExoHelper; the V3 module)
    "method": "POST",
    "resource": "https://outlook.office365.com",               # CONFIRMED scope (EXO_APP_ONLY_AUTH)
    "permission": "Exchange.ManageAsApp",                      # CONFIRMED (EXO_APP_ONLY_AUTH)
    # The only cmdlet modelled. CONFIRMED cmdlet (learn.microsoft.com/powershell/module/exchangepowershell/
    # get-organizationconfig); its output fields here (Name, DisplayName, Identity, Guid, Id, IsDehydrated,
    # ExchangeObjectId…) are a small OBSERVED subset of what the module prints, values made up per tenant.
    "modelled_cmdlet": "Get-OrganizationConfig",
    # OBSERVED (issues above): the value collection's context; the exact type name UNCONFIRMED.
    "odata_context": "{base}/adminapi/beta/{tenant}/$metadata#Collection(Exchange.GenericHashTable)",
    "innererror_type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",  # OBSERVED
}

EXCHANGE_ADMIN_ERRORS: Final[dict[str, dict]] = {
    # No token, a malformed / expired / foreign token: 401 with a Bearer challenge naming Exchange's app id.
    # OBSERVED for Exchange's other REST endpoints (EWS, Outlook REST answer 401 with WWW-Authenticate: Bearer
    # client_id="00000002-0000-0ff1-ce00-000000000000", …); for the admin API and its body UNCONFIRMED.
    "invalid_token": {"status": 401, "code": "Unauthorized", "message": "The access token is missing or invalid.",
                      "confidence": "UNCONFIRMED"},
    # A valid token without Exchange.ManageAsApp in `roles`: 401. OBSERVED status (REFERENCE.md; #7970 shows the
    # shape and code for a 401 of this endpoint); the message UNCONFIRMED.
    "missing_permission": {"status": 401, "code": "Unauthorized",
                           "message": "The application {appId} doesn't have the Exchange.ManageAsApp permission "
                                      "in this organization.",
                           "confidence": "OBSERVED status and shape; message UNCONFIRMED"},
    # Exchange.ManageAsApp but no supported directory role (in the token's role information): 403.
    "unsupported_role": {"status": 403, "code": "Forbidden",
                         "message": "[AuthZRequestId={requestId}][FailureCategory=AuthZ-CmdletAccessDeniedException] "
                                    "The role assigned to application {appId} isn't supported in this scenario. "
                                    "Please check online documentation for assigning correct Directory Roles to "
                                    "Azure AD Application for EXO App-Only Authentication.",
                         "confidence": "OBSERVED message and status; code UNCONFIRMED"},
    # The token's tenant is not the organization in the path (or the path names no known organization).
    "wrong_tenant": {"status": 401, "code": "Unauthorized",
                     "message": "The access token was issued for another organization than '{tenant}'.",
                     "confidence": "UNCONFIRMED"},
    # A body without CmdletInput.CmdletName, or a cmdlet the sandbox does not model (every cmdlet but
    # Get-OrganizationConfig). Shape and "Invalid Operation" OBSERVED (a bad parameter); the inner message is
    # PowerShell's CommandNotFoundException text, UNCONFIRMED for this endpoint.
    "bad_request": {"status": 400, "code": "BadRequest", "message": "Invalid Operation",
                    "confidence": "OBSERVED code and message"},
    "unknown_cmdlet": {"status": 400, "code": "BadRequest", "message": "Invalid Operation",
                       "inner": "The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, "
                                "or executable program. Check the spelling of the name, or if a path was included, "
                                "verify that the path is correct and try again.",
                       "confidence": "UNCONFIRMED"},
}
