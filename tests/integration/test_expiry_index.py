"""The expiry index in Azurite: a scan reads the days (and month tables) due only, a moved notAfter leaves its old day
and month, an emptied month leaves the month list, alert claims are
ETag-guarded (two runs, one claim), runs read newest first, the certificates list pages with a continuation."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.state import EXPIRY_MONTHS, StateStore, expiry_day, expiry_month, expiry_table, onboarding_id


@pytest.fixture
def store(azurite):
    store = StateStore(azurite.connection_string)
    yield store
    store.close()


@pytest.fixture
def base():
    """A day far from every other test's certificates (the Azurite account is the session's)."""
    return datetime(2150, 1, 1, 12, tzinfo=UTC) + timedelta(days=random.randrange(0, 300_000, 100))


def track(store: StateStore, tenant: str, mailbox: str, not_after: datetime, version: str = "v1") -> str:
    oid = onboarding_id(tenant, mailbox)
    store.upsert_certificate(oid, {"TenantId": tenant, "ServiceMailbox": mailbox, "CertificateName": f"c-{mailbox}",
                                   "Version": version, "Thumbprint": "AB", "NotAfter": not_after})
    return oid


def test_the_scan_reads_only_the_days_due(store, base):
    tenant = str(uuid.uuid4())
    due = {track(store, tenant, f"due{i}@contoso.com", base + timedelta(days=i, hours=i % 12)) for i in range(0, 31, 5)}
    later = {track(store, tenant, f"later{i}@contoso.com", base + timedelta(days=31 + i)) for i in range(0, 60, 3)}
    earlier = track(store, tenant, "earlier@contoso.com", base - timedelta(days=1))
    found = list(store.certificates_expiring_by_day(expiry_day(base), expiry_day(base + timedelta(days=30))))
    assert {e["RowKey"] for e in found} == due
    assert all(e["PartitionKey"] == expiry_day(e["NotAfter"]) for e in found)
    assert not {e["RowKey"] for e in found} & (later | {earlier})
    # without a first day, every earlier day is read too (expired, not yet alerted)
    upto = {e["RowKey"] for e in store.certificates_expiring_by_day(None, expiry_day(base + timedelta(days=30)))}
    assert due | {earlier} <= upto
    assert not upto & later


def test_a_new_notafter_moves_the_certificate_to_its_new_day(store, base):
    tenant = str(uuid.uuid4())
    oid = track(store, tenant, "moved@contoso.com", base)
    track(store, tenant, "moved@contoso.com", base + timedelta(days=365), version="v2")
    assert [e["RowKey"] for e in store.certificates_expiring_by_day(expiry_day(base), expiry_day(base))
            if e["RowKey"] == oid] == []
    moved = [e for e in store.certificates_expiring_by_day(expiry_day(base + timedelta(days=365)),
                                                           expiry_day(base + timedelta(days=365)))
             if e["RowKey"] == oid]
    assert [e["Version"] for e in moved] == ["v2"]
    store.unindex_certificate_expiry(oid, base + timedelta(days=365))
    assert oid not in {e["RowKey"] for e in store.certificates_expiring_by_day(
        expiry_day(base + timedelta(days=365)), expiry_day(base + timedelta(days=365)))}
    for moment in (base, base + timedelta(days=365)):
        index = store._table(expiry_table(expiry_month(expiry_day(moment))))
        assert not list(index.query_entities("RowKey eq @rk", parameters={"rk": oid}))


def test_a_moved_notafter_leaves_its_old_month_table(store, base):
    tenant = str(uuid.uuid4())
    old, new = base, base + timedelta(days=62)
    oid = track(store, tenant, "month@contoso.com", old)
    old_table, new_table = (store._table(expiry_table(expiry_month(expiry_day(m)))) for m in (old, new))
    assert old_table.table_name != new_table.table_name
    assert [e["RowKey"] for e in old_table.query_entities("RowKey eq @rk", parameters={"rk": oid})] == [oid]
    track(store, tenant, "month@contoso.com", new, version="v2")
    assert not list(old_table.query_entities("RowKey eq @rk", parameters={"rk": oid}))
    assert [(e["PartitionKey"], e["Version"]) for e in new_table.query_entities("RowKey eq @rk",
                                                                                  parameters={"rk": oid})] == [
        (expiry_day(new), "v2")]


def test_the_scan_reads_only_the_month_tables_its_window_spans(store, base):
    tenant = str(uuid.uuid4())
    due = track(store, tenant, "window@contoso.com", base + timedelta(days=3))
    far = base + timedelta(days=200)
    track(store, tenant, "far@contoso.com", far)
    # A row planted in the far month's table under a day inside the window: a scan that read that table would
    # return it; the product never writes such a row.
    planted = onboarding_id(tenant, "planted@contoso.com")
    store._table(expiry_table(expiry_month(expiry_day(far)))).upsert_entity(
        {"PartitionKey": expiry_day(base + timedelta(days=3)), "RowKey": planted, "NotAfter": far})
    found = {e["RowKey"] for e in store.certificates_expiring_by_day(expiry_day(base),
                                                                     expiry_day(base + timedelta(days=30)))}
    assert due in found
    assert planted not in found


def test_an_emptied_month_leaves_the_month_list_until_a_row_is_written_again(store, base):
    months = store._table(EXPIRY_MONTHS)
    tenant = str(uuid.uuid4())
    oid = track(store, tenant, "emptied@contoso.com", base)
    month = expiry_month(expiry_day(base))
    listed = {e["RowKey"] for e in months.query_entities("PartitionKey eq 'month'")}
    assert month in listed
    store.unindex_certificate_expiry(oid, base)
    # the whole month is read (the sweep reads every listed month up to its window): found empty, it is dropped
    last = expiry_day(base.replace(day=28) + timedelta(days=5))
    assert oid not in {e["RowKey"] for e in store.certificates_expiring_by_day(None, last)}
    assert month not in {e["RowKey"] for e in months.query_entities("PartitionKey eq 'month'")}
    track(store, tenant, "emptied@contoso.com", base)
    assert month in {e["RowKey"] for e in months.query_entities("PartitionKey eq 'month'")}
    assert oid in {e["RowKey"] for e in store.certificates_expiring_by_day(None, last)}


def test_two_runs_that_saw_the_same_state_claim_an_alert_once(store, base):
    oid = track(store, str(uuid.uuid4()), "claims@contoso.com", base)
    barrier, results = threading.Barrier(4), []

    def claim():
        seen = store.alert_state(oid, "v1")
        barrier.wait()
        results.append(store.claim_alert(oid, "v1", seen, {"LastThreshold": 30}))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    # the next threshold: two runs read the same ETag, one wins
    seen = store.alert_state(oid, "v1")
    assert store.claim_alert(oid, "v1", seen, {"LastThreshold": 14})
    assert not store.claim_alert(oid, "v1", seen, {"LastThreshold": 14})
    assert store.alert_state(oid, "v1").entity["LastThreshold"] == 14
    assert store.alert_state(oid, "v2") is None


def test_runs_read_newest_first(store):
    first, second = datetime.now(UTC), datetime.now(UTC) + timedelta(seconds=1)
    store.start_expiry_run("run-a", first, {"Status": "running"})
    store.start_expiry_run("run-b", second, {"Status": "running"})
    store.finish_expiry_run("run-b", second, {"Status": "completed", "FinishedAt": second})
    latest = store.expiry_runs(1)[0]
    assert (latest["RunId"], latest["Status"]) == ("run-b", "completed")


def test_the_certificates_list_pages_with_a_continuation(store, base):
    tenant = str(uuid.uuid4())
    mine = {track(store, tenant, f"page{i}@contoso.com", base + timedelta(days=i)) for i in range(7)}
    seen, token, pages = [], None, 0
    while True:
        page, token = store.certificates_page(None, 3, token)
        pages += 1
        assert len(page) <= 3
        seen += [e["RowKey"] for e in page]
        if token is None:
            break
    assert mine <= set(seen)
    assert len(seen) == len(set(seen))
    assert pages >= 3


def test_old_audit_entries_are_purged(store):
    oid = onboarding_id(str(uuid.uuid4()), "audit-retention@contoso.com")
    old = datetime(1990, 1, 1, tzinfo=UTC)
    store.audit(oid, "old", old, key="old")
    store.audit(oid, "new", datetime.now(UTC), key="new")
    assert store.purge_audit_before(datetime(1991, 1, 1, tzinfo=UTC)) >= 1
    assert [e["Event"] for e in store.audit_trail(oid)] == ["new"]


def test_plan_alerts_rotating_once_while_a_rotation_runs_and_starts_rotations(store, base):
    import json

    from shared.expiry import plan

    tenant = str(uuid.uuid4())
    oid = track(store, tenant, "plan@contoso.com", base + timedelta(days=12))
    certificate = next(e for e in store.certificates_expiring_by_day(expiry_day(base + timedelta(days=12)),
                                                                     expiry_day(base + timedelta(days=12)))
                       if e["RowKey"] == oid)
    thresholds = (30, 14, 7, 3, 1)
    # no onboarding record: nothing
    assert plan(store, certificate, base, thresholds, 30).alert is None
    store.create_onboarding(oid, {"Status": "completed", "AppId": "app-1"})
    first = plan(store, certificate, base, thresholds, 30)
    assert (first.alert["type"], first.alert["threshold"], first.alert["appId"]) == ("certificateExpiry", 14, "app-1")
    assert first.rotation == {"onboardingId": oid, "reason": "expiry"}
    assert plan(store, certificate, base, thresholds, 0).rotation is None  # rotation off
    store.merge_onboarding(oid, {"Rotation": json.dumps({"state": "running", "instanceId": f"rotation-{oid}"})})
    rotating = plan(store, certificate, base, thresholds, 30)
    assert rotating.alert["type"] == "rotating"
    assert rotating.rotation is None
    assert store.claim_alert(oid, "v1", rotating.seen, rotating.claim)
    assert plan(store, certificate, base + timedelta(days=6), thresholds, 30).alert is None  # 7 falls in it too
    store.merge_onboarding(oid, {"Rotation": json.dumps({"state": "manualActionNeeded"})})
    stopped = plan(store, certificate, base + timedelta(days=6), thresholds, 30)
    assert (stopped.alert["type"], stopped.alert["threshold"]) == ("certificateExpiry", 7)
    assert stopped.rotation is None  # its own alert names the fix; not restarted each day


def test_a_released_claim_can_be_claimed_again(store, base):
    oid = track(store, str(uuid.uuid4()), "release@contoso.com", base)
    assert store.claim_alert(oid, "v1", None, {"LastThreshold": 30})
    store.release_alert(oid, "v1", None)
    assert store.alert_state(oid, "v1") is None
    assert store.claim_alert(oid, "v1", None, {"LastThreshold": 30})
    seen = store.alert_state(oid, "v1")
    assert store.claim_alert(oid, "v1", seen, {"LastThreshold": 14})
    store.release_alert(oid, "v1", seen)
    assert store.alert_state(oid, "v1").entity["LastThreshold"] == 30
