"""The permission and directory-role catalog: names → resource appId, app role id, role template id.

This is data. Each id is Microsoft's, with the page it comes from; the product never hard-codes an id
anywhere else. At run time the resource's service principal in the customer's tenant is still read, and
a catalog id that the tenant's `appRoles` do not confirm is an error (never silently granted).
"""

from __future__ import annotations

from dataclasses import dataclass

MICROSOFT_GRAPH = "00000003-0000-0000-c000-000000000000"
EXCHANGE_ONLINE = "00000002-0000-0ff1-ce00-000000000000"

GRAPH_PERMISSIONS_REFERENCE = "https://learn.microsoft.com/graph/permissions-reference"
EXCHANGE_APP_ONLY = "https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2"
EWS_OAUTH = "https://learn.microsoft.com/exchange/client-developer/exchange-web-services/how-to-authenticate-an-ews-application-by-using-oauth"
# Message center MC1227454: phased EWS disablement in Exchange Online from 2026-10-01 (allow-listed apps only),
# permanently off from 2027-04-01.
EWS_RETIREMENT = "https://techcommunity.microsoft.com/blog/exchange/retirement-of-exchange-web-services-in-exchange-online/3924440"
ENTRA_ROLES_REFERENCE = "https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference"

RESOURCE_NAMES = {MICROSOFT_GRAPH: "Microsoft Graph", EXCHANGE_ONLINE: "Office 365 Exchange Online"}


@dataclass(frozen=True)
class Permission:
    """One application permission (an app role of a resource service principal)."""

    resource_app_id: str
    value: str
    app_role_id: str
    source: str

    @property
    def resource_name(self) -> str:
        """The resource's display name."""
        return RESOURCE_NAMES.get(self.resource_app_id, self.resource_app_id)


@dataclass(frozen=True)
class DirectoryRole:
    """A built-in Entra directory role, by template id."""

    key: str
    display_name: str
    template_id: str
    source: str


@dataclass(frozen=True)
class PermissionProfile:
    """The permissions a product needs, and the directory role it usually needs with them."""

    key: str
    description: str
    permissions: tuple[Permission, ...]
    default_directory_role: str | None

    def by_resource(self) -> dict[str, list[Permission]]:
        """Permissions grouped by resource appId (the shape of requiredResourceAccess)."""
        grouped: dict[str, list[Permission]] = {}
        for permission in self.permissions:
            grouped.setdefault(permission.resource_app_id, []).append(permission)
        return grouped


def _graph(value: str, role_id: str) -> Permission:
    anchor = value.lower().replace(".", "")
    return Permission(MICROSOFT_GRAPH, value, role_id, f"{GRAPH_PERMISSIONS_REFERENCE}#{anchor}")


# Office 365 Exchange Online application permissions.
EXCHANGE_MANAGE_AS_APP = Permission(EXCHANGE_ONLINE, "Exchange.ManageAsApp",
                                    "dc50a0fb-09a3-484d-be87-e023b12c6440", EXCHANGE_APP_ONLY)
# EWS's permission. EWS in Exchange Online is being shut down (EWS_RETIREMENT): only the legacy profile has it.
FULL_ACCESS_AS_APP = Permission(EXCHANGE_ONLINE, "full_access_as_app",
                                "dc890d15-9560-4a4c-9b7f-a736ec74ec40", EWS_OAUTH)

# Microsoft Graph application permissions (ids from the permissions reference, "Application" column).
CONTACTS_READWRITE = _graph("Contacts.ReadWrite", "6918b873-d17a-4dc1-b314-35f528134491")
USER_READ_ALL = _graph("User.Read.All", "df021288-bdef-4463-88db-98f22de89214")
ORGANIZATION_READ_ALL = _graph("Organization.Read.All", "498476ce-e0fe-48b0-b801-37ba7e2685c6")
GROUP_READ_ALL = _graph("Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b")
MAIL_SEND = _graph("Mail.Send", "b633e1c5-b582-4048-a93e-9f11b44c7e96")

DIRECTORY_ROLES: dict[str, DirectoryRole] = {
    role.key: role for role in (
        DirectoryRole("exchange-administrator", "Exchange Administrator",
                      "29232cdf-9323-42fd-ade2-1d097af3e4de", f"{ENTRA_ROLES_REFERENCE}#exchange-administrator"),
        DirectoryRole("exchange-recipient-administrator", "Exchange Recipient Administrator",
                      "31392ffb-586c-42d1-9346-e59415a2cc4e",
                      f"{ENTRA_ROLES_REFERENCE}#exchange-recipient-administrator"),
        DirectoryRole("global-reader", "Global Reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
                      f"{ENTRA_ROLES_REFERENCE}#global-reader"),
    )
}

PROFILES: dict[str, PermissionProfile] = {
    profile.key: profile for profile in (
        PermissionProfile(
            "exchange-contact-sync",
            "Contact sync into Exchange Online mailboxes through Microsoft Graph (Contacts.ReadWrite), with "
            "Exchange Online PowerShell (Exchange.ManageAsApp and the Exchange Administrator role).",
            (CONTACTS_READWRITE, USER_READ_ALL, ORGANIZATION_READ_ALL, EXCHANGE_MANAGE_AS_APP),
            "exchange-administrator",
        ),
        PermissionProfile(
            "graph-contact-sync",
            "Contact sync through Microsoft Graph only (no Exchange Online PowerShell).",
            (CONTACTS_READWRITE, USER_READ_ALL, ORGANIZATION_READ_ALL),
            None,
        ),
        PermissionProfile(
            "ews-contact-sync",
            "Legacy: contact sync through EWS (full_access_as_app) as well as Graph, with Exchange Online PowerShell. "
            "EWS is off in Exchange Online on 2027-04-01 (message center MC1227454); since 2026-10-01 it works only "
            "for apps on the tenant's EWSAllowedAppIDs list. Use exchange-contact-sync.",
            (CONTACTS_READWRITE, USER_READ_ALL, ORGANIZATION_READ_ALL, EXCHANGE_MANAGE_AS_APP, FULL_ACCESS_AS_APP),
            "exchange-administrator",
        ),
        PermissionProfile(
            "directory-reader",
            "Read users, groups and the organization (reporting).",
            (USER_READ_ALL, GROUP_READ_ALL, ORGANIZATION_READ_ALL),
            "global-reader",
        ),
    )
}

DEFAULT_PROFILE = "exchange-contact-sync"


def profile(key: str) -> PermissionProfile:
    """The profile named `key` (KeyError when unknown)."""
    return PROFILES[key]


def directory_role(key: str) -> DirectoryRole:
    """The directory role named `key` (KeyError when unknown)."""
    return DIRECTORY_ROLES[key]
