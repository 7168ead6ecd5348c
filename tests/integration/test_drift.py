"""Drift detection (shared/drift.py) against the simulator: an onboarding made by the product's own steps, then
each drift made by an administrator's Graph or Key Vault call, and find_drift names it, once."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from shared import drift
from shared.onboarding import Onboarding
from shared.state import onboarding_id
from tests.conftest import customers
from tests.integration.conftest import run, unique

pytestmark = pytest.mark.timeout(120)

ADMIN_ROLES = ["Application.ReadWrite.All", "Application.Read.All"]


@pytest.fixture
def tenant(simulator, admin_consent) -> dict:
    """Engineer D's customer tenant, consented to the onboarding app and to the verifier."""
    chosen = customers(simulator)[3]
    admin_consent(chosen["tenantId"])
    assert "admin_consent=True" in simulator.consent_verifier(chosen["tenantId"])
    return chosen




@pytest.fixture
def admin(simulator, tenant, graph_kit, restore_grants):
    """The tenant's administrator for Graph: the seeded provisioner, given Application.ReadWrite.All."""
    simulator.grant(tenant["tenantId"], ADMIN_ROLES)
    return lambda: graph_kit.client(graph_kit.secret_credential(tenant))


@pytest.fixture
def onboarded(product_env, tenant):
    """An onboarding made by the product's steps (certificate, application, service principal): its records."""

    def make(method: str = "automatic") -> tuple[dict, dict]:
        mailbox = f"{unique('drift')}@contoso.com"
        oid = onboarding_id(tenant["tenantId"], mailbox)
        request = {"onboardingId": oid, "tenantId": tenant["tenantId"], "serviceMailbox": mailbox,
                   "method": "automatic", "permissionProfile": "graph-contact-sync", "directoryRole": None,
                   "certificate": {"validityMonths": 12, "keySize": 2048, "exportable": False}}
        onboarding = Onboarding(product_env, request)
        onboarding.store.create_onboarding(oid, {"Status": "running", "Method": method,
                                                 "TenantId": tenant["tenantId"], "ServiceMailbox": mailbox})
        cert = onboarding.ensure_certificate(datetime.now(UTC))
        assert cert["ok"], cert
        app = asyncio.run(onboarding.ensure_application())
        assert app["ok"], app
        key = asyncio.run(onboarding.ensure_key_credential(app, cert["certificate"]))
        assert key["ok"], key
        sp = asyncio.run(onboarding.ensure_service_principal(app, datetime.now(UTC)))
        assert sp["ok"], sp
        record = onboarding.store.get_onboarding(oid).entity
        info = cert["certificate"]
        certificate = {"CertificateName": info["name"], "Version": info["version"], "Thumbprint": info["thumbprint"],
                       "NotAfter": info["not_after"]}
        assert drift.find_drift(product_env, record, certificate) == []
        return record, certificate

    return make


def kinds(findings: list[dict]) -> list[str]:
    return [f["kind"] for f in findings]


def test_our_key_removed_from_the_app_is_found_once(product_env, onboarded, admin):
    from msgraph.generated.models.application import Application

    record, certificate = onboarded()

    async def remove_keys():
        await admin().applications.by_application_id(record["ApplicationObjectId"]).patch(
            Application(key_credentials=[]))

    run(remove_keys())
    findings = drift.find_drift(product_env, record, certificate)
    assert kinds(findings) == [drift.KEY_REMOVED]
    assert certificate["Thumbprint"] in findings[0]["detail"]
    assert drift.find_drift(product_env, record, certificate) == findings   # stable: one alert per finding


def test_the_app_deleted_is_found_once_not_also_its_key_and_service_principal(product_env, onboarded, admin):
    record, certificate = onboarded()
    run(admin().applications.by_application_id(record["ApplicationObjectId"]).delete())
    findings = drift.find_drift(product_env, record, certificate)
    assert kinds(findings) == [drift.APP_DELETED]
    assert record["AppId"] in findings[0]["detail"]


def test_the_service_principal_deleted_is_found_once(product_env, onboarded, admin):
    record, certificate = onboarded()
    run(admin().service_principals.by_service_principal_id(record["ServicePrincipalId"]).delete())
    assert kinds(drift.find_drift(product_env, record, certificate)) == [drift.SERVICE_PRINCIPAL_DELETED]


def test_the_certificate_disabled_in_key_vault_is_found_once(product_env, onboarded, vault_clients):
    record, certificate = onboarded()
    vault_clients.certificates.update_certificate_properties(certificate["CertificateName"], certificate["Version"],
                                                             enabled=False)
    findings = drift.find_drift(product_env, record, certificate)
    assert kinds(findings) == [drift.CERTIFICATE_DISABLED]
    assert certificate["Version"] in findings[0]["detail"]


def test_the_certificate_deleted_in_key_vault_is_found_once(product_env, onboarded, vault_clients):
    record, certificate = onboarded()
    vault_clients.certificates.begin_delete_certificate(certificate["CertificateName"]).wait()
    findings = drift.find_drift(product_env, record, certificate)
    assert kinds(findings) == [drift.CERTIFICATE_DELETED]
    assert certificate["CertificateName"] in findings[0]["detail"]


def _renew(vault_clients, name: str):
    """A new version with the certificate's own policy, as Key Vault's AutoRenew or an operator would make it."""
    policy = vault_clients.certificates.get_certificate_policy(name)
    renewed = vault_clients.certificates.begin_create_certificate(name, policy=policy).result()
    assert renewed.properties.version
    return renewed


def test_a_newer_version_on_no_app_is_found_once(product_env, onboarded, vault_clients):
    record, certificate = onboarded()
    renewed = _renew(vault_clients, certificate["CertificateName"])
    findings = drift.find_drift(product_env, record, certificate)
    assert kinds(findings) == [drift.NEWER_VERSION_ON_NO_APP]
    assert renewed.properties.version in findings[0]["detail"]
    assert bytes(renewed.properties.x509_thumbprint).hex().upper() in findings[0]["detail"]


def test_a_newer_version_is_no_drift_while_a_rotation_runs(product_env, onboarded, vault_clients):
    record, certificate = onboarded()
    _renew(vault_clients, certificate["CertificateName"])
    rotating = {**record, "Rotation": '{"state": "running", "instanceId": "rotation-x"}'}
    assert drift.find_drift(product_env, rotating, certificate) == []


def test_a_manual_onboarding_is_read_as_the_verifier_with_gets_only(simulator, product_env, onboarded, admin):
    from msgraph.generated.models.application import Application

    record, certificate = onboarded(method="manual")
    run(admin().applications.by_application_id(record["ApplicationObjectId"]).patch(Application(key_credentials=[])))
    since = simulator.requests_since(0)["next"]
    assert kinds(drift.find_drift(product_env, record, certificate)) == [drift.KEY_REMOVED]
    served = simulator.requests_since(since)["requests"]
    reads = [r for r in served if r["origin"] in ("graph", "vault")]
    assert reads, served
    assert {r["method"] for r in reads} == {"GET"}, reads


def test_a_drift_is_alerted_once_until_it_is_resolved_and_again_when_it_recurs(product_env, onboarded, vault_clients):
    from shared.state import state_store

    record, certificate = onboarded()
    indexed = {**certificate, "RowKey": record["RowKey"], "NotAfter": datetime.fromisoformat(
        certificate["NotAfter"].replace("Z", "+00:00"))}
    store = state_store(product_env)
    now = datetime.now(UTC)
    assert drift.new_drift_alerts(product_env, store, indexed, now) == []
    store.merge_onboarding(record["RowKey"], {"Status": "completed"})
    assert drift.new_drift_alerts(product_env, store, indexed, now) == []

    def enable(enabled: bool) -> None:
        vault_clients.certificates.update_certificate_properties(certificate["CertificateName"],
                                                                 certificate["Version"], enabled=enabled)

    enable(False)
    store.merge_onboarding(record["RowKey"], {"Status": "running"})   # a re-run: not checked meanwhile
    assert drift.new_drift_alerts(product_env, store, indexed, now) == []
    store.merge_onboarding(record["RowKey"], {"Status": "completed"})
    [alert] = drift.new_drift_alerts(product_env, store, indexed, now)
    assert alert["type"] == "drift"
    assert alert["severity"] == "critical"
    assert alert["schema"] == "certauth.alert/v1"
    assert alert["id"].startswith(f"alert-{certificate['CertificateName']}-{certificate['Version']}-drift-"
                                  f"{drift.CERTIFICATE_DISABLED}-")
    assert drift.CERTIFICATE_DISABLED in alert["detail"]
    assert (alert["onboardingId"], alert["thumbprint"], alert["tenantId"]) == (
        record["RowKey"], certificate["Thumbprint"], record["TenantId"])
    assert drift.new_drift_alerts(product_env, store, indexed, now) == []        # once per finding

    enable(True)
    assert drift.new_drift_alerts(product_env, store, indexed, now) == []        # resolved
    events = [e["Event"] for e in store.audit_trail(record["RowKey"]) if e["Event"].startswith("drift.")]
    assert events == ["drift.found", "drift.resolved"]

    enable(False)
    later = now.replace(year=now.year + 1)
    [again] = drift.new_drift_alerts(product_env, store, indexed, later)      # a recurrence is a new alert
    assert again["id"] != alert["id"]


def test_every_expiry_day_beyond_the_window_is_checked_once_in_every_thirty_days():
    from datetime import date, timedelta

    start = datetime(2026, 12, 1, 6, tzinfo=UTC)
    window_end = "20261231"
    seen: dict[str, int] = {}
    for offset in range(drift.ROLLING_PERIOD_DAYS):
        days = drift.rolling_expiry_days(start + timedelta(days=offset), window_end)
        assert all(day > window_end for day in days)
        ordinals = [date.fromisoformat(day).toordinal() for day in days]
        assert all(b - a == drift.ROLLING_PERIOD_DAYS for a, b in itertools.pairwise(ordinals))
        for day in days:
            seen[day] = seen.get(day, 0) + 1
    expected = [f"{date(2027, 1, 1) + timedelta(days=n):%Y%m%d}" for n in range(800)]
    assert all(seen.get(day) == 1 for day in expected), [d for d in expected if seen.get(d) != 1][:5]
    # about 1/30 of the horizon's days each day: the daily reads stay bounded
    assert len(drift.rolling_expiry_days(start, window_end)) <= drift.ROLLING_HORIZON_DAYS // 30 + 1


# -- the expiry monitor's timer raises the drift alert, once, on the product's own host ---------------------------

@pytest.fixture(scope="module")
def product(simulator, azurite):
    """The product on a sandbox host, rotation off (only alerts)."""
    from tests.e2e.conftest import Product

    process = Product(simulator, azurite.connection_string, env={"CERTAUTH_ROTATE_BEFORE_DAYS": "0"}).launch()
    yield process
    process.stop()


def run_timer(product, store) -> dict:
    """Run expiry_check through the host's admin route; the run's record once it finished."""
    import time

    before = {r["RunId"] for r in store.expiry_runs(1000)}
    answer = product.call("POST", "/admin/functions/expiry_check", key="admin", json={"input": ""})
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 90
    while True:
        new = [r for r in store.expiry_runs(1000) if r["RunId"] not in before and r.get("FinishedAt")]
        if new:
            return new[0]
        assert time.monotonic() < deadline, product.stderr_lines[-20:]
        time.sleep(0.05)  # polling the run record


def test_the_daily_run_alerts_a_drift_of_the_rolling_thirtieth_once(simulator, tenant, product, azurite, admin):
    import json

    from shared.state import StateStore

    started = product.onboard({"tenantId": tenant["tenantId"], "serviceMailbox": f"{unique('drift-e2e')}@contoso.com"})
    assert product.finish(started["id"])["runtimeStatus"] == "Completed"
    store = StateStore(azurite.connection_string)
    record = store.get_onboarding(started["id"]).entity
    [certificate] = [e for e in store.certificates_page(None, 1000)[0] if e["RowKey"] == started["id"]]
    # A 12-month certificate is outside the alert window: it is checked on the days the rolling 1/30 reads its expiry
    # day. Move the sandbox clock to the next such day.
    now = datetime.fromisoformat(simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
    lag = (certificate["NotAfter"].date().toordinal() - now.date().toordinal()) % drift.ROLLING_PERIOD_DAYS
    simulator.advance_clock(lag * 86400 + 60)
    run(admin().service_principals.by_service_principal_id(record["ServicePrincipalId"]).delete())

    def drift_alerts(run_record: dict) -> list[dict]:
        return [a for a in json.loads(run_record.get("Alerts") or "[]")
                if a["type"] == "drift" and a["onboardingId"] == started["id"]]

    first = run_timer(product, store)
    [alert] = drift_alerts(first)
    assert drift.SERVICE_PRINCIPAL_DELETED in alert["id"]
    assert alert["started"] is True
    assert [e for e in store.audit_trail(started["id"]) if e["Event"] == "drift.found"]
    assert drift_alerts(run_timer(product, store)) == []   # the same finding: no second alert
    store.close()
