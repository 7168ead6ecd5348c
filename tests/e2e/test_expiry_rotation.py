"""Rotation started by the expiry timer: a certificate comes within CERTAUTH_ROTATE_BEFORE_DAYS, the expiry_check
run (the host's admin route) starts `rotation-{onboardingId}`, it completes after the grace period (the clock moved
over its durable timer), the app holds exactly one current key (the new one) and the following days' runs raise no
alert for the old certificate version.

Tenant: customers(simulator)[0]."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import customers
from tests.e2e.conftest import Product
from tests.e2e.test_expiry_monitor import DAY, certificate_of, now, onboard, run_timer
from tests.e2e.test_rotation import _follow, _key_thumbprints

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ROTATE_BEFORE_DAYS = 30


@pytest.fixture(scope="module")
def rotating(simulator, azurite):
    """The product with rotation at the default lead (30 days) and a one-hour grace period."""
    process = Product(simulator, azurite.connection_string, env={
        "CERTAUTH_ROTATE_BEFORE_DAYS": str(ROTATE_BEFORE_DAYS), "CERTAUTH_ROTATION_GRACE_HOURS": "1"}).launch()
    yield process
    process.stop()


def _graph_key_thumbprints(simulator, tenant: dict, mailbox: str) -> list[str]:
    """The SHA-1 thumbprints of the onboarded app's keys, read from Graph."""
    [app] = [a for a in simulator.tenant_state(tenant["tenantId"])["applications"]
             if a["displayName"].endswith(f"({mailbox})")]
    return _key_thumbprints(simulator, tenant, app)


def _alert_ids(runs: list[dict], onboarding: str) -> list[str]:
    return [a["id"] for run in runs for a in json.loads(run.get("Alerts") or "[]") if a["onboardingId"] == onboarding]


def test_the_timer_starts_a_rotation_that_replaces_the_key_and_the_old_version_alerts_no_more(
        simulator, rotating, state, clean_faults):
    tenant = customers(simulator)[0]
    mailbox = f"expiry-rotate-{uuid.uuid4().hex[:8]}@contoso.com"
    onboarded = onboard(simulator, rotating, mailbox)["id"]
    old = certificate_of(state, onboarded)
    assert _graph_key_thumbprints(simulator, tenant, mailbox) == [old["Thumbprint"]]

    # a day before the rotation lead: the run starts no rotation
    simulator.advance_clock((old["NotAfter"] - now(simulator)).total_seconds() - (ROTATE_BEFORE_DAYS + 1) * DAY)
    [early] = run_timer(rotating, state)
    assert f"rotation-{onboarded}" not in json.loads(early.get("Rotations") or "[]")
    assert rotating.status(f"rotation-{onboarded}") is None

    # within the lead: the run starts `rotation-{onboardingId}`
    simulator.advance_clock(DAY + 3600)
    [first] = run_timer(rotating, state)
    assert json.loads(first["Rotations"]) == [f"rotation-{onboarded}"], first
    assert first["RotationsDeferred"] == 0, first
    instance = f"rotation-{onboarded}"
    finished = _follow(rotating, instance, lambda d: d.get("runtimeStatus") == "Completed", longest=2 * 3600)
    assert any(e["EventType"] == "TimerFired" for e in finished["historyEvents"]), "the grace period's timer"

    new = certificate_of(state, onboarded)
    assert new["Version"] != old["Version"]
    assert new["Thumbprint"] != old["Thumbprint"]
    assert new["NotAfter"] > old["NotAfter"]
    assert _graph_key_thumbprints(simulator, tenant, mailbox) == [new["Thumbprint"]]
    record = state.get_onboarding(onboarded).entity
    assert json.loads(record["Rotation"])["state"] == "completed", record["Rotation"]

    # the following days' runs, past the old version's expiry: no alert for the old version
    later: list[dict] = []
    while (old["NotAfter"] - now(simulator)).total_seconds() > -2 * DAY:
        simulator.advance_clock(DAY)
        later += run_timer(rotating, state)
    old_alerts = [i for i in _alert_ids(later, onboarded) if old["Version"] in i]
    assert old_alerts == [], old_alerts
    # the new version (2 months from the rotation) reaches its own 30-day threshold in these days: that one may alert
    assert all(new["Version"] in i for i in _alert_ids(later, onboarded)), _alert_ids(later, onboarded)
    assert rotating.status(f"alert-{old['CertificateName']}-{old['Version']}-certificateExpiry-14") is None
    assert rotating.status(f"alert-{old['CertificateName']}-{old['Version']}-certificateExpired-0") is None
