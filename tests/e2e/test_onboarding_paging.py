"""Re-running an onboarding whose service principal holds more app role assignments than one Graph page.

Graph pages GET /servicePrincipals/{id}/appRoleAssignments at 100 by default (learn.microsoft.com/graph/paging)
and the simulator does too. The product reads its existing grants before posting and reconciles them to the
profile (shared.graph.Directory.app_role_assignments), so it must follow @odata.nextLink: otherwise its own grants
beyond the first page look missing and the re-run posts them again (Graph answers 400 "Permission being assigned
already exists on the object."), and grants beyond the first page that the profile does not list stay.
"""

from __future__ import annotations

import uuid

import pytest

from shared.state import StateStore
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of
from tests.e2e.test_onboarding_reonboard import Admin

pytestmark = pytest.mark.timeout(300)

MAILBOX = "paging-many-grants@contoso.com"
EXTRA = 120  # app role assignments added to the product's service principal: more than one page


@pytest.fixture
def admin(simulator):
    tenant = customers(simulator)[1]
    defaults = simulator.info["defaultProvisionerRoles"]
    simulator.grant(tenant["tenantId"], [*defaults, "Application.ReadWrite.All"])
    yield Admin(simulator, tenant)
    simulator.grant(tenant["tenantId"], defaults)


def resource_with_roles(admin: Admin, count: int) -> tuple[str, list[str]]:
    """A resource app registration with `count` application roles and its service principal: (SP id, role ids)."""
    name = f"certauth-paging-{uuid.uuid4().hex[:12]}"
    roles = [{"id": str(uuid.uuid4()), "value": f"Paging.Role{i}", "displayName": f"Paging role {i}",
              "description": f"Paging role {i}", "allowedMemberTypes": ["Application"], "isEnabled": True}
             for i in range(count)]
    created = admin.call("PATCH", f"/applications(uniqueName='{name}')", headers_extra={"Prefer": "create-if-missing"},
                         json={"displayName": name, "signInAudience": "AzureADMyOrg", "appRoles": roles})
    assert created.status_code == 201, created.text
    sp = admin.call("PATCH", f"/servicePrincipals(appId='{created.json()['appId']}')",
                    headers_extra={"Prefer": "create-if-missing"}, json={})
    assert sp.status_code == 201, sp.text
    return sp.json()["id"], [r["id"] for r in roles]


def assignments_of(admin: Admin, sp_id: str) -> list[dict]:
    """Every app role assignment of the service principal, following @odata.nextLink."""
    items, url = [], f"/servicePrincipals/{sp_id}/appRoleAssignments"
    while url:
        page = admin.call("GET", url)
        assert page.status_code == 200, page.text
        items += page.json()["value"]
        url = page.json().get("@odata.nextLink", "").removeprefix(admin.graph) or None
    return items


def grant(admin: Admin, resource_id: str, principal_id: str, app_role_id: str) -> None:
    response = admin.call("POST", f"/servicePrincipals/{resource_id}/appRoleAssignedTo",
                          json={"principalId": principal_id, "resourceId": resource_id, "appRoleId": app_role_id})
    assert response.status_code == 201, response.text


def test_a_rerun_with_more_grants_than_one_page_posts_nothing_and_removes_every_extra(
        simulator, product, vault, admin_consent, admin):
    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    first = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})["id"])
    assert first["runtimeStatus"] == "Completed", first
    sp_id = first["servicePrincipalId"]

    # Many more grants on the product's service principal (another resource's roles, granted by the admin).
    resource_id, role_ids = resource_with_roles(admin, EXTRA)
    for role in role_ids:
        grant(admin, resource_id, sp_id, role)
    # Graph does not document its listing order; the simulator lists in creation order, so the product's own
    # grants are made again after the extra ones: now they are on the second page.
    own = [a for a in assignments_of(admin, sp_id) if a["resourceId"] != resource_id]
    for assignment in own:
        removed = admin.call("DELETE", f"/servicePrincipals/{sp_id}/appRoleAssignments/{assignment['id']}")
        assert removed.status_code == 204, removed.text
        grant(admin, assignment["resourceId"], sp_id, assignment["appRoleId"])
    first_page = admin.call("GET", f"/servicePrincipals/{sp_id}/appRoleAssignments").json()
    assert len(first_page["value"]) == 100
    assert "@odata.nextLink" in first_page
    assert {a["resourceId"] for a in first_page["value"]} == {resource_id}
    before = assignments_of(admin, sp_id)
    assert len(before) == EXTRA + ONE_OF_EACH["appRoleAssignments"]

    since = simulator.requests_since()["next"]
    again = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})["id"])
    assert again["runtimeStatus"] == "Completed", again
    posts = [r for r in simulator.requests_since(since)["requests"]
             if r["origin"] == "graph" and r["method"] == "POST" and "/appRoleAssignedTo" in r["path"]]
    assert posts == []  # no grant posted again (and so no 400 "Permission being assigned already exists")
    # The request is the desired state: the grants the profile does not list are gone, on every page.
    after = assignments_of(admin, sp_id)
    assert sorted(a["id"] for a in after) == sorted(a["id"] for a in before if a["resourceId"] != resource_id)
    assert objects_of(simulator, vault, tenant, MAILBOX) == ONE_OF_EACH
    assert again["changes"]["permissionsRemoved"] == sorted(f"Paging.Role{i}" for i in range(EXTRA))
    assert again["changes"]["permissionsAdded"] == []
    store = StateStore(product.connection_string)
    events = [e["Event"] for e in store.audit_trail(first["id"])]
    store.close()
    # The last run's consent entry (its steps before the proof run partly at once: any order among them).
    assert "consent.revoked" in events[-8:-2]
    assert events[-2:] == ["proof.succeeded", "onboarding.completed"]
