"""The onboarding steps of shared/ against the simulator and Azurite, in process (no host)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.onboarding import Onboarding
from shared.settings import get_settings
from shared.state import onboarding_id


@pytest.fixture
def product_env(simulator, azurite, monkeypatch):
    """The product's settings pointed at the sandbox, as make up wires them."""
    info = simulator.info
    values = {
        "GRAPH_BASE_URL": info["graphUrl"], "AZURE_AUTHORITY_HOST": info["authorityHost"],
        "KEY_VAULT_URL": info["vaultUrl"], "TABLES_CONNECTION_STRING": azurite.connection_string,
        "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE": "false", "AZURE_INSTANCE_DISCOVERY": "false",
        "CERTAUTH_PROVISIONER_CLIENT_ID": simulator.home["consentApp"]["clientId"],
        "CERTAUTH_HOME_TENANT_ID": info["homeTenantId"], "IDENTITY_ENDPOINT": info["identityEndpoint"],
        "IDENTITY_HEADER": info["identityHeader"],
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


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
        app = asyncio.run(onboarding.ensure_application(cert["certificate"]))
        assert app["ok"], app
        sp = asyncio.run(onboarding.ensure_service_principal(app, now))
        assert sp["ok"], sp
        consent = asyncio.run(onboarding.grant_permissions(sp["servicePrincipalId"]))
        assert consent["ok"], consent
        role = asyncio.run(onboarding.ensure_directory_role(sp["servicePrincipalId"]))
        assert role["ok"], role
        proof = onboarding.prove(app, cert["certificate"])
        assert proof["ok"], proof
        return {"cert": cert, "app": app, "sp": sp, "consent": consent, "role": role, "proof": proof}

    first = run_all()
    assert first["cert"]["created"]
    assert first["app"]["created"]
    assert first["sp"]["created"]
    assert sorted(first["consent"]["added"]) == sorted(first["consent"]["granted"])
    assert first["role"]["added"]
    assert set(first["proof"]["roles"]["Microsoft Graph"]) >= {"Contacts.ReadWrite", "User.Read.All",
                                                                "Organization.Read.All"}
    assert set(first["proof"]["roles"]["Office 365 Exchange Online"]) >= {"Exchange.ManageAsApp",
                                                                           "full_access_as_app"}
    counts = simulator.tenant_state(customer["tenantId"])["counts"]

    second = run_all()
    assert not second["cert"]["created"]
    assert not second["app"]["created"]
    assert not second["app"]["keyAdded"]
    assert not second["sp"]["created"]
    assert second["consent"]["added"] == []
    assert not second["role"]["added"]
    assert simulator.tenant_state(customer["tenantId"])["counts"] == counts
