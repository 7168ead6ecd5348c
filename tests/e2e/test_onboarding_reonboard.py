"""Re-onboarding a (tenant, mailbox) whose app registration an administrator deleted through Graph (an
offboarding done by hand; the Key Vault certificate is left in place).

What Graph does, and so the simulator: DELETE /applications/{id} soft-deletes the app and its service principal
into /directory/deletedItems for 30 days, and the deleted app keeps its uniqueName. So:
  * the re-run's upsert (PATCH /applications(uniqueName='…'), Prefer: create-if-missing) fails with
    400 Request_BadRequest "Another object with the same value for property uniqueName already exists.", and the
    product's onboarding ends Failed at step `application` with that code: the product does not look in deleted
    items today (what it should do is in the report: restore the app and its service principal, owned by it);
  * once an administrator restores the app and its service principal from deleted items, the re-run completes
    with the same appId and finds everything in place (the grants come back with the service principal);
  * after 30 days on the sandbox clock the deleted items are purged: the upsert creates a new app with a new appId
    and the re-run completes, reusing the certificate.
"""

from __future__ import annotations

import pytest
import requests
from azure.identity import ClientSecretCredential

from shared.state import StateStore
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

pytestmark = pytest.mark.timeout(300)

MAILBOX = "reonboard-deleted-app@contoso.com"
DAY = 24 * 3600


class Admin:
    """The tenant's administrator calling Graph directly (raw HTTP; the seeded provisioner with
    Application.ReadWrite.All)."""

    def __init__(self, simulator, tenant: dict) -> None:
        self.graph = simulator.info["graphUrl"]  # ends in /v1.0
        self.credential = ClientSecretCredential(
            tenant["tenantId"], tenant["provisioner"]["clientId"], tenant["provisioner"]["clientSecret"],
            authority=simulator.info["authorityHost"], disable_instance_discovery=True)

    def call(self, method: str, path: str, headers_extra: dict | None = None, **kwargs) -> requests.Response:
        token = self.credential.get_token("https://graph.microsoft.com/.default").token
        return requests.request(method, self.graph + path, timeout=30, **kwargs,
                                headers={"Authorization": f"Bearer {token}", **(headers_extra or {})})

    def deleted(self, cast: str, filter: str) -> list[dict]:
        response = self.call("GET", f"/directory/deletedItems/microsoft.graph.{cast}", params={"$filter": filter})
        assert response.status_code == 200, response.text
        return response.json()["value"]


@pytest.fixture
def admin(simulator):
    tenant = customers(simulator)[1]
    defaults = simulator.info["defaultProvisionerRoles"]
    simulator.grant(tenant["tenantId"], [*defaults, "Application.ReadWrite.All"])
    yield Admin(simulator, tenant)
    simulator.grant(tenant["tenantId"], defaults)


def test_reonboarding_after_the_app_was_deleted_fails_on_its_held_unique_name_until_restored_or_purged(
        simulator, product, vault, admin_consent, admin):
    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    first = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})["id"])
    assert first["runtimeStatus"] == "Completed", first
    app_id, app_object_id = first["application"]["appId"], first["application"]["objectId"]
    sp_id = first["servicePrincipalId"]

    # The administrator deletes the app registration; its service principal goes with it.
    deleted = admin.call("DELETE", f"/applications/{app_object_id}")
    assert deleted.status_code == 204, deleted.text
    assert objects_of(simulator, vault, tenant, MAILBOX)["applications"] == 0
    [deleted_app] = admin.deleted("application", f"appId eq '{app_id}'")
    [deleted_sp] = admin.deleted("servicePrincipal", f"appId eq '{app_id}'")
    assert deleted_app["id"] == app_object_id
    assert deleted_sp["id"] == sp_id

    # Re-onboarding now: the soft-deleted app holds the uniqueName, the upsert fails, the product stops there.
    failed = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})["id"])
    assert failed["runtimeStatus"] == "Failed", failed
    assert failed["error"]["step"] == "application"
    assert failed["error"]["status"] == 400
    assert failed["error"]["code"] == "Request_BadRequest"
    assert failed["error"]["message"] == "Another object with the same value for property uniqueName already exists."
    assert objects_of(simulator, vault, tenant, MAILBOX)["applications"] == 0

    # Restored by the administrator (the app, then its service principal): the re-run finds everything in place.
    assert admin.call("POST", f"/directory/deletedItems/{app_object_id}/restore").status_code == 200
    assert admin.call("POST", f"/directory/deletedItems/{sp_id}/restore").status_code == 200
    restored = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})["id"])
    assert restored["runtimeStatus"] == "Completed", restored
    assert restored["application"]["appId"] == app_id
    assert restored["servicePrincipalId"] == sp_id
    assert objects_of(simulator, vault, tenant, MAILBOX) == ONE_OF_EACH
    store = StateStore(product.connection_string)
    events = [e["Event"] for e in store.audit_trail(first["id"])]
    store.close()
    assert sorted(events[-8:-2]) == sorted(["certificate.reused", "application.updated", "servicePrincipal.exists",
                                            "consent.exists", "directoryRole.exists", "keyCredential.exists"])
    assert events[-2:] == ["proof.succeeded", "onboarding.completed"]

    # Deleted again and left for 30 days: purged, so the upsert creates a new app (new appId).
    assert admin.call("DELETE", f"/applications/{app_object_id}").status_code == 204
    simulator.advance_clock(30 * DAY + 60)
    assert admin.deleted("application", f"appId eq '{app_id}'") == []
    renewed = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": MAILBOX})["id"])
    assert renewed["runtimeStatus"] == "Completed", renewed
    assert renewed["application"]["appId"] != app_id
    assert objects_of(simulator, vault, tenant, MAILBOX) == ONE_OF_EACH
