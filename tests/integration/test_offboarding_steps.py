"""The offboarding steps of shared/offboarding.py against the simulator and Azurite, in process (no host).

Each write step is run twice in a row, as an activity re-run after its write landed (crash-resume, at-least-once
delivery) runs it: the second run finds the object gone (Graph's 404, Key Vault's deleted certificate) and converges.
Then a re-onboarding of the pair restores the app from deleted items and recovers the soft-deleted certificate.

Tenant: customers(simulator)[8] (the offboarding tests' own)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.graph import directory_for
from shared.keyvault import certificate_name
from shared.offboarding import Offboarding, offboarding_request
from shared.onboarding import Onboarding, application_unique_name
from shared.state import expiry_day, onboarding_id
from tests.conftest import customers
from tests.integration.conftest import directory_steps

pytestmark = pytest.mark.timeout(180)

TENANT_INDEX = 8
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"


def onboard(settings, tenant: str, mailbox: str) -> tuple[Onboarding, dict]:
    """Every onboarding step, as the orchestration runs them (a certificate step that recovers a soft-deleted
    certificate asks for a retry: run it again)."""
    oid = onboarding_id(tenant, mailbox)
    request = {"onboardingId": oid, "tenantId": tenant, "serviceMailbox": mailbox, "method": "automatic",
               "permissionProfile": "exchange-contact-sync", "directoryRole": "exchange-administrator",
               "certificate": {"validityMonths": 12, "keySize": 2048, "exportable": False},
               "runStartedAt": datetime.now(UTC).isoformat()}
    onboarding = Onboarding(settings, request)
    onboarding.store.create_onboarding(oid, {})
    onboarding.store.merge_onboarding(oid, {"TenantId": tenant, "ServiceMailbox": mailbox, "Method": "automatic",
                                            "DirectoryRole": "Exchange Administrator", "Status": "running"})
    now = datetime.now(UTC)
    attempts = []
    for _ in range(3):
        cert = onboarding.ensure_certificate(now)
        attempts.append(cert)
        if cert["ok"]:
            break
        assert cert.get("retry"), cert
    assert cert["ok"], attempts
    steps = directory_steps(onboarding, cert["certificate"], now)
    app = steps["app"]
    assert onboarding.prove(app, cert["certificate"])["ok"]
    onboarding.complete({})
    return onboarding, {"certAttempts": attempts, "cert": cert["certificate"], "app": app, "key": steps["key"],
                        "sp": steps["sp"]}


def live_objects(simulator, tenant: str, app_id: str) -> dict:
    state = simulator.tenant_state(tenant)
    sps = {s["id"] for s in state["servicePrincipals"] if s["appId"] == app_id}
    return {"applications": sum(a["appId"] == app_id for a in state["applications"]),
            "keys": sum(len(a["keyCredentials"]) for a in state["applications"] if a["appId"] == app_id),
            "servicePrincipals": len(sps),
            "appRoleAssignments": sum(a["principalId"] in sps for a in state["appRoleAssignments"]),
            "roleAssignments": sum(r["principalId"] in sps for r in state["roleAssignments"])}


def deleted_items(settings, tenant: str, unique_name: str, app_id: str) -> tuple[list, list]:
    async def read():
        directory = directory_for(settings, tenant)
        return (await directory.deleted_applications(unique_name),
                await directory.deleted_service_principals(app_id))
    return asyncio.run(read())


def twice(step, *args) -> dict:
    """Run a step, then again as a re-run after its write landed: both succeed."""
    first = step(*args)
    result = asyncio.run(first) if asyncio.iscoroutine(first) else first
    assert result["ok"], result
    again = step(*args)
    second = asyncio.run(again) if asyncio.iscoroutine(again) else again
    assert second["ok"], second
    return result


def test_each_step_converges_when_run_again_and_a_reonboard_restores_the_app_and_recovers_the_certificate(
        simulator, product_env, admin_consent):
    tenant = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant)
    mailbox = f"offboard-steps-{uuid.uuid4().hex[:8]}@contoso.com"
    onboarding, made = onboard(product_env, tenant, mailbox)
    oid, app_id = onboarding.id, made["app"]["appId"]
    store = onboarding.store
    assert live_objects(simulator, tenant, app_id) == {"applications": 1, "keys": 1, "servicePrincipals": 1,
                                                       "appRoleAssignments": 4, "roleAssignments": 1}
    record = store.get_onboarding(oid).entity
    not_after = record["NotAfter"]
    assert any(e["RowKey"] == oid for e in store.certificates_expiring_by_day(expiry_day(not_after),
                                                                             expiry_day(not_after)))

    offboarding = Offboarding(product_env, offboarding_request(oid, record, False, datetime.now(UTC).isoformat()))
    found = asyncio.run(offboarding.locate())
    assert found["ok"], found
    assert found["application"] == {"id": made["app"]["applicationObjectId"], "appId": app_id}
    sp_id = found["servicePrincipal"]["id"]
    assert sp_id == made["sp"]["servicePrincipalId"]

    roles = twice(offboarding.remove_directory_roles, sp_id)
    assert roles["removed"] == [EXCHANGE_ADMINISTRATOR]
    assert live_objects(simulator, tenant, app_id)["roleAssignments"] == 0
    grants = twice(offboarding.remove_app_role_assignments, sp_id)
    assert len(grants["removed"]) == 4
    assert live_objects(simulator, tenant, app_id)["appRoleAssignments"] == 0
    assert twice(offboarding.remove_service_principal, sp_id)["deleted"] == sp_id
    assert twice(offboarding.remove_application, found["application"]["id"])["deleted"] == found["application"]["id"]
    assert live_objects(simulator, tenant, app_id) == {"applications": 0, "keys": 0, "servicePrincipals": 0,
                                                       "appRoleAssignments": 0, "roleAssignments": 0}
    apps, sps = deleted_items(product_env, tenant, application_unique_name(oid), app_id)
    assert [a["id"] for a in apps] == [found["application"]["id"]]
    assert [s["id"] for s in sps] == [sp_id]

    certificate = twice(offboarding.remove_certificate)["certificate"]
    assert certificate["name"] == certificate_name(oid)
    assert certificate["state"] == "softDeleted"
    assert certificate["recoveryLevel"] == "Recoverable+Purgeable"
    assert certificate["scheduledPurgeDate"] is not None
    assert certificate_name(oid) in simulator.admin("GET", "/vault")["deletedCertificates"]
    assert offboarding.remove_certificate()["certificate"]["state"] == "softDeleted"  # a third run: the same

    state = {"state": "running", "permanent": False, "method": "automatic", "certificate": certificate,
             "deleted": {"applicationObjectId": found["application"]["id"], "appId": app_id,
                         "servicePrincipalId": sp_id}}
    retired = twice(offboarding.retire, state)
    assert retired["offboarding"]["state"] == "retired"
    record = store.get_onboarding(oid).entity
    assert record["Status"] == "retired"
    assert not any(e["RowKey"] == oid for e in store.certificates_expiring_by_day(None, expiry_day(
        not_after + timedelta(days=400))))
    assert store.get_certificate(oid)["Thumbprint"] == made["cert"]["thumbprint"]  # kept, for audit
    events = [e["Event"] for e in store.audit_trail(oid)]
    for event in ("offboarding.directoryRolesRemoved", "offboarding.appRoleAssignmentsRemoved",
                  "offboarding.servicePrincipalDeleted", "offboarding.applicationDeleted",
                  "offboarding.certificateSoftDeleted", "onboarding.retired"):
        assert events.count(event) == 1, (event, events)

    # Re-onboarding the pair: Key Vault answers 409 "deleted but recoverable" to the create, so the certificate step
    # recovers it (and asks for a retry); Graph refuses the upsert of the held uniqueName, so the application step
    # restores the app its offboarding deleted: the same appId and certificate, a new service principal.
    _, remade = onboard(product_env, tenant, mailbox)
    assert not remade["certAttempts"][0]["ok"]
    assert remade["certAttempts"][0]["retry"]
    assert remade["cert"]["thumbprint"] == made["cert"]["thumbprint"]
    assert remade["app"]["appId"] == app_id
    assert remade["app"]["created"] is False
    assert remade["key"]["keyAdded"] is False
    assert remade["sp"]["created"] is True
    assert remade["sp"]["servicePrincipalId"] != sp_id
    assert live_objects(simulator, tenant, app_id) == {"applications": 1, "keys": 1, "servicePrincipals": 1,
                                                       "appRoleAssignments": 4, "roleAssignments": 1}
    assert "application.restored" in [e["Event"] for e in store.audit_trail(oid)]
    assert store.get_onboarding(oid).entity["Status"] == "completed"


def test_an_app_deleted_by_hand_is_not_restored(simulator, product_env, admin_consent):
    """Only what certauth's own offboarding put in deleted items comes back: an administrator's deletion stands."""
    tenant = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant)
    mailbox = f"offboard-by-hand-{uuid.uuid4().hex[:8]}@contoso.com"
    onboarding, made = onboard(product_env, tenant, mailbox)

    async def delete_by_hand():
        return await directory_for(product_env, tenant).delete_application(made["app"]["applicationObjectId"])

    assert asyncio.run(delete_by_hand()) is True
    result = asyncio.run(onboarding.ensure_application())
    assert not result["ok"]
    assert result["error"]["code"] == "Request_BadRequest"
    assert "uniqueName already exists" in result["error"]["message"]


def test_a_permanent_offboarding_empties_deleted_items_and_purges_unless_the_vault_protects_it(
        simulator, product_env, admin_consent, vault_admin):
    tenant = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant)
    outcomes = {}
    for protected in (False, True):
        vault_admin.admin("PUT", "/vault", {"enablePurgeProtection": protected})
        mailbox = f"offboard-permanent-{uuid.uuid4().hex[:8]}@contoso.com"
        onboarding, made = onboard(product_env, tenant, mailbox)
        oid, app_id = onboarding.id, made["app"]["appId"]
        record = onboarding.store.get_onboarding(oid).entity
        offboarding = Offboarding(product_env, offboarding_request(oid, record, True, datetime.now(UTC).isoformat()))
        found = asyncio.run(offboarding.locate())
        sp_id = found["servicePrincipal"]["id"]
        for step, argument in ((offboarding.remove_directory_roles, sp_id),
                               (offboarding.remove_app_role_assignments, sp_id),
                               (offboarding.remove_service_principal, sp_id),
                               (offboarding.remove_application, found["application"]["id"])):
            assert asyncio.run(step(argument))["ok"]
        purged = twice(offboarding.delete_permanently, app_id)
        assert sorted(purged["deletedPermanently"]) == sorted([sp_id, found["application"]["id"]])
        assert deleted_items(product_env, tenant, application_unique_name(oid), app_id) == ([], [])
        outcomes[protected] = (oid, twice(offboarding.remove_certificate)["certificate"])
    vault = simulator.admin("GET", "/vault")
    oid, purged_certificate = outcomes[False]
    assert purged_certificate["state"] == "purged"
    assert certificate_name(oid) not in vault["deletedCertificates"]
    oid, kept = outcomes[True]
    assert kept["state"] == "softDeleted"
    assert kept["recoveryLevel"] == "Recoverable"
    assert "purge protection" in kept["note"]
    assert kept["scheduledPurgeDate"] in kept["note"]
    assert certificate_name(oid) in vault["deletedCertificates"]
