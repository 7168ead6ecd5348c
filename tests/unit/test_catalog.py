"""The permission catalog: the default profile is off EWS, and every id is a GUID with Microsoft's page."""

from __future__ import annotations

import uuid

from shared import catalog


def test_the_default_profile_is_graph_contacts_with_exchange_online_powershell():
    default = catalog.profile(catalog.DEFAULT_PROFILE)
    assert {p.value for p in default.permissions} == {"Contacts.ReadWrite", "User.Read.All", "Organization.Read.All",
                                                       "Exchange.ManageAsApp"}
    assert default.default_directory_role == "exchange-administrator"
    assert catalog.directory_role(default.default_directory_role).display_name == "Exchange Administrator"
    assert catalog.FULL_ACCESS_AS_APP not in default.permissions


def test_only_a_profile_that_says_ews_ends_has_full_access_as_app():
    with_ews = [p for p in catalog.PROFILES.values() if catalog.FULL_ACCESS_AS_APP in p.permissions]
    assert [p.key for p in with_ews] == ["ews-contact-sync"]
    assert "EWS is off in Exchange Online on 2027-04-01" in with_ews[0].description
    assert "MC1227454" in with_ews[0].description


def test_ids_are_microsofts_and_cite_their_page():
    # The ids as Microsoft's references list them (REFERENCE.md: Graph permissions reference, Exchange app-only).
    expected = {
        "Contacts.ReadWrite": "6918b873-d17a-4dc1-b314-35f528134491",
        "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
        "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
        "Exchange.ManageAsApp": "dc50a0fb-09a3-484d-be87-e023b12c6440",
        "full_access_as_app": "dc890d15-9560-4a4c-9b7f-a736ec74ec40",
    }
    permissions = {p.value: p for profile in catalog.PROFILES.values() for p in profile.permissions}
    for value, role_id in expected.items():
        assert permissions[value].app_role_id == role_id
    for permission in permissions.values():
        assert str(uuid.UUID(permission.app_role_id)) == permission.app_role_id
        assert permission.source.startswith("https://learn.microsoft.com/")
    assert permissions["Exchange.ManageAsApp"].resource_app_id == catalog.EXCHANGE_ONLINE
    assert catalog.directory_role("exchange-administrator").template_id == "29232cdf-9323-42fd-ade2-1d097af3e4de"
    for role in catalog.DIRECTORY_ROLES.values():
        assert role.source.startswith(catalog.ENTRA_ROLES_REFERENCE)
