"""The request is the desired state: a re-run with a smaller permission profile and no directory role reconciles the
tenant to it (the grants the profile no longer lists and the role are removed from the onboarded app's service
principal) and the status reports what it added and removed; a re-run with the same options changes nothing."""

from __future__ import annotations

from shared import catalog
from shared.onboarding import NO_CHANGES, application_unique_name
from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

TENANT_INDEX = 3
MAILBOX = "reconcile@contoso.com"  # no other test uses it
SMALLER = "graph-contact-sync"     # Graph only, no directory role


def _permissions(profile: str) -> set[str]:
    return {p.value for p in catalog.profile(profile).permissions}


def _held(simulator, tenant: str, sp_id: str) -> tuple[set[str], list[dict]]:
    """The app role ids granted to the service principal, and its directory role assignments (Graph's view)."""
    state = simulator.tenant_state(tenant)
    grants = {a["appRoleId"] for a in state["appRoleAssignments"] if a["principalId"] == sp_id}
    return grants, [r for r in state["roleAssignments"] if r["principalId"] == sp_id]


def test_a_re_run_with_a_smaller_profile_and_no_role_removes_the_rest_and_says_so(simulator, product, vault,
                                                                                   admin_consent):
    tenant = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant)
    oid = onboarding_id(tenant, MAILBOX)
    default = catalog.profile(catalog.DEFAULT_PROFILE)
    smaller = catalog.profile(SMALLER)
    assert smaller.default_directory_role is None
    assert _permissions(SMALLER) < _permissions(catalog.DEFAULT_PROFILE)

    product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})
    first = product.finish(oid)
    assert first["runtimeStatus"] == "Completed", first
    assert set(first["changes"]["permissionsAdded"]) == _permissions(catalog.DEFAULT_PROFILE)
    assert first["changes"]["permissionsRemoved"] == []
    assert first["changes"]["directoryRoleAdded"] == "Exchange Administrator"
    assert first["changes"]["directoryRolesRemoved"] == []
    assert objects_of(simulator, vault, tenant, MAILBOX) == ONE_OF_EACH
    sp_id = first["servicePrincipalId"]
    grants, roles = _held(simulator, tenant, sp_id)
    assert grants == {p.app_role_id for p in default.permissions}
    assert [r["roleDefinitionId"] for r in roles] == [catalog.directory_role("exchange-administrator").template_id]

    # The same onboarding, now asked for less: Graph's contact permissions only, and no directory role.
    again = product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX, "permissionProfile": SMALLER,
                             "directoryRole": None})
    assert again["id"] == oid
    second = product.finish(oid)
    assert second["runtimeStatus"] == "Completed", second
    assert second["servicePrincipalId"] == sp_id
    assert second["changes"] == {"permissionsAdded": [],
                                 "permissionsRemoved": sorted(_permissions(catalog.DEFAULT_PROFILE)
                                                              - _permissions(SMALLER)),
                                 "directoryRoleAdded": None, "directoryRolesRemoved": ["Exchange Administrator"]}
    assert set(second["permissions"]) == _permissions(SMALLER)
    assert second["directoryRole"] is None
    grants, roles = _held(simulator, tenant, sp_id)
    assert grants == {p.app_role_id for p in smaller.permissions}
    assert roles == []
    assert objects_of(simulator, vault, tenant, MAILBOX) == {
        **ONE_OF_EACH, "appRoleAssignments": len(smaller.permissions), "roleAssignments": 0}
    # The registration requests what is granted (requiredResourceAccess follows the profile too).
    app = next(a for a in simulator.tenant_state(tenant)["applications"]
               if a.get("uniqueName") == application_unique_name(oid))
    assert {r["resourceAppId"] for r in app["requiredResourceAccess"]} == {catalog.MICROSOFT_GRAPH}
    # The token proof only asks for what the profile lists.
    assert set(second["proofRoles"]) == {"Microsoft Graph"}

    # Once more with the same options: nothing to add, nothing to remove.
    counts = simulator.tenant_state(tenant)["counts"]
    product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX, "permissionProfile": SMALLER,
                     "directoryRole": None})
    third = product.finish(oid)
    assert third["runtimeStatus"] == "Completed", third
    assert third["changes"] == NO_CHANGES
    assert simulator.tenant_state(tenant)["counts"] == counts
