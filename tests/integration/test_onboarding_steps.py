"""The onboarding steps of shared/ against the simulator and Azurite, in process (no host)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from shared import catalog
from shared.onboarding import NO_CHANGES, Onboarding
from shared.state import onboarding_id
from tests.integration.conftest import directory_steps


def test_every_step_runs_and_runs_again_without_creating_anything(simulator, customer, product_env, admin_consent):
    admin_consent(customer["tenantId"])
    mailbox = "steps@contoso.com"
    oid = onboarding_id(customer["tenantId"], mailbox)
    request = {"onboardingId": oid, "tenantId": customer["tenantId"], "serviceMailbox": mailbox,
               "method": "automatic", "permissionProfile": "exchange-contact-sync",
               "directoryRole": "exchange-administrator",
               "certificate": {"validityMonths": 12, "keySize": 2048, "exportable": False}}
    onboarding = Onboarding(product_env, request)
    onboarding.store.create_onboarding(oid, {"Status": "running"})
    now = datetime.now(UTC)   # the session follows the sandbox clock (tests/sandbox_clock.py)

    def run_all() -> dict:
        cert = onboarding.ensure_certificate(now)
        assert cert["ok"], cert
        steps = directory_steps(onboarding, cert["certificate"], now)
        proof = onboarding.prove(steps["app"], cert["certificate"])
        assert proof["ok"], proof
        return {"cert": cert, **steps, "proof": proof}

    first = run_all()
    assert first["cert"]["created"]
    assert first["app"]["created"]
    assert first["key"]["keyAdded"]
    assert first["sp"]["created"]
    assert sorted(first["consent"]["added"]) == sorted(first["consent"]["granted"])
    assert first["role"]["added"]
    for resource, permissions in catalog.profile("exchange-contact-sync").by_resource().items():
        assert set(first["proof"]["roles"][catalog.RESOURCE_NAMES[resource]]) >= {p.value for p in permissions}
    assert first["consent"]["removed"] == []
    assert first["role"]["changes"] == {"permissionsAdded": first["consent"]["added"], "permissionsRemoved": [],
                                        "directoryRoleAdded": "Exchange Administrator", "directoryRolesRemoved": []}
    counts = simulator.tenant_state(customer["tenantId"])["counts"]

    second = run_all()
    assert not second["cert"]["created"]
    assert not second["app"]["created"]
    assert not second["key"]["keyAdded"]
    assert not second["sp"]["created"]
    assert second["consent"]["added"] == []
    assert second["consent"]["removed"] == []
    assert not second["role"]["added"]
    assert second["role"]["changes"] == NO_CHANGES
    assert simulator.tenant_state(customer["tenantId"])["counts"] == counts


def test_a_run_with_a_smaller_profile_and_no_role_removes_what_is_no_longer_asked_for(
        simulator, customer, product_env, admin_consent):
    from shared.graph import directory_for

    tenant = customer["tenantId"]
    admin_consent(tenant)
    mailbox = "steps-reconcile@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    request = {"onboardingId": oid, "tenantId": tenant, "serviceMailbox": mailbox, "method": "automatic",
               "permissionProfile": catalog.DEFAULT_PROFILE, "directoryRole": "exchange-administrator",
               "certificate": {"validityMonths": 12, "keySize": 2048, "exportable": False}}
    now = datetime.now(UTC)

    def run(options: dict) -> tuple[dict, dict, str]:
        onboarding = Onboarding(product_env, {**request, **options})
        onboarding.store.create_onboarding(oid, {"Status": "running"})
        cert = onboarding.ensure_certificate(now)
        app = asyncio.run(onboarding.ensure_application())
        assert asyncio.run(onboarding.ensure_key_credential(app, cert["certificate"]))["ok"]
        sp = asyncio.run(onboarding.ensure_service_principal(app, now))
        consent = asyncio.run(onboarding.grant_permissions(sp["servicePrincipalId"]))
        assert consent["ok"], consent
        role = asyncio.run(onboarding.ensure_directory_role(sp["servicePrincipalId"], consent["changes"]))
        assert role["ok"], role
        return consent, role, sp["servicePrincipalId"]

    _, _, sp_id = run({})
    # An administrator also gave the app a role that no catalog names.
    application_administrator = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"

    async def assign() -> bool:
        return await directory_for(product_env, tenant).assign_directory_role(sp_id, application_administrator)

    assert asyncio.run(assign())

    small = catalog.profile("graph-contact-sync")
    consent, role, _ = run({"permissionProfile": small.key, "directoryRole": None})
    default = {p.value for p in catalog.profile(catalog.DEFAULT_PROFILE).permissions}
    assert consent["removed"] == sorted(default - {p.value for p in small.permissions})
    assert consent["added"] == []
    assert role["removed"] == ["Application Administrator", "Exchange Administrator"]
    assert role["changes"] == {"permissionsAdded": [], "permissionsRemoved": consent["removed"],
                               "directoryRoleAdded": None,
                               "directoryRolesRemoved": ["Application Administrator", "Exchange Administrator"]}
    state = simulator.tenant_state(tenant)
    graph_sp = next(s["id"] for s in state["servicePrincipals"] if s["appId"] == catalog.MICROSOFT_GRAPH)
    held = [a for a in state["appRoleAssignments"] if a["principalId"] == sp_id]
    assert {(a["resourceId"], a["appRoleId"]) for a in held} == {(graph_sp, p.app_role_id) for p in small.permissions}
    assert [r for r in state["roleAssignments"] if r["principalId"] == sp_id] == []

    consent, role, _ = run({"permissionProfile": small.key, "directoryRole": None})
    assert role["changes"] == NO_CHANGES
    assert simulator.tenant_state(tenant)["counts"] == state["counts"]
