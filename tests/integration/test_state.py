"""shared.state against Azurite: deterministic ids, create-once, ETag-guarded updates, audit."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.state import StateStore, onboarding_id, tenant_of

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture
def store(azurite):
    store = StateStore(azurite.connection_string)
    yield store
    store.close()


def test_onboarding_id_is_deterministic_and_key_safe():
    first = onboarding_id(TENANT, "Sync@Contoso.com")
    assert first == onboarding_id(TENANT.upper(), "sync@contoso.com")
    assert first != onboarding_id(TENANT, "other@contoso.com")
    assert tenant_of(first) == TENANT
    assert not set("/\\#?") & set(first)


def test_create_is_once_and_updates_merge(store):
    oid = onboarding_id(TENANT, "create-once@contoso.com")
    assert store.create_onboarding(oid, {"Status": "pending", "Step": "certificate"})
    assert not store.create_onboarding(oid, {"Status": "overwritten"})
    assert store.get_onboarding(oid).entity["Status"] == "pending"
    store.update_onboarding(oid, lambda e: {"Step": "application", "AppId": "a1"})
    stored = store.get_onboarding(oid).entity
    assert (stored["Status"], stored["Step"], stored["AppId"]) == ("pending", "application", "a1")


def test_concurrent_updates_are_not_lost(store):
    oid = onboarding_id(TENANT, "concurrent@contoso.com")
    store.create_onboarding(oid, {"Counter": 0})
    barrier = threading.Barrier(4)

    def bump():
        barrier.wait()
        store.update_onboarding(oid, lambda e: {"Counter": e["Counter"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_onboarding(oid).entity["Counter"] == 4


def test_audit_is_ordered_and_idempotent_by_key(store):
    oid = onboarding_id(TENANT, "audit@contoso.com")
    at = datetime(2026, 11, 28, 12, tzinfo=UTC)
    store.audit(oid, "application.created", at + timedelta(seconds=1), {"AppId": "a"}, key="application")
    store.audit(oid, "application.created", at + timedelta(seconds=1), {"AppId": "a"}, key="application")
    store.audit(oid, "started", at)
    trail = store.audit_trail(oid)
    assert [e["Event"] for e in trail] == ["started", "application.created"]


def test_certificates_expiring_before(store):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    store.upsert_certificate("soon", {"NotAfter": now + timedelta(days=5), "Thumbprint": "AA"})
    store.upsert_certificate("later", {"NotAfter": now + timedelta(days=300), "Thumbprint": "BB"})
    due = {e["RowKey"] for e in store.certificates_expiring_before(now + timedelta(days=30))}
    assert "soon" in due
    assert "later" not in due


def test_expired_consent_states_are_purged_and_live_ones_kept(store):
    import uuid

    now = datetime.now(UTC)
    old, live = uuid.uuid4().hex, uuid.uuid4().hex
    store.create_consent_state(old, {"ExpiresAt": now - timedelta(days=3), "Method": "automatic"})
    store.create_consent_state(live, {"ExpiresAt": now + timedelta(hours=1), "Method": "automatic"})
    assert store.purge_consent_states_before(now - timedelta(days=1)) >= 1
    assert store.get_consent_state(old) is None
    assert store.get_consent_state(live) is not None
