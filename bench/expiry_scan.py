"""The expiry monitor's daily sweep over growing fleets, against a full scan of the same fleet (not a test).

``python -m bench expiry_scan`` (or ``python -m bench.expiry_scan [--fleets 1000,10000,100000] [--runs 5]``)

Starts an in-memory Azurite and grows one fleet of tracked certificates in it: 100 certificates due within the
alert window (the same 100 at every size) and the rest expiring 32 days to two years ahead. Rows are written the
way the product keeps them (shared/state.py's tables and keys: the certificates table, partition `certificate`,
and the expiry index, a table per expiry month `certauthExpiry{YYYYMM}` with a partition per expiry day, listed in
`certauthExpiryMonths`), in batched transactions of at most 100 per partition. At each
size it measures, median of `--runs`:

- the sweep: the monitor's own read of the index (shared/expiry.py `due_certificates`: the listed months up to
  the end of the alert window, the days up to its end in each; without it, the same read through the state
  module's `certificates_expiring_by_day`);
- the baselines: a full scan of the certificates table filtered on NotAfter by Table Storage (the query a sweep
  without the index sends), and every row of it read and filtered by the monitor.

Both must return the 100 due certificates. It prints one line per size and the growth of each from the smallest
fleet to the largest (the issue's bound for the sweep: < 2x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sandbox.azurite import Azurite
from shared import state

DUE = 100
THRESHOLDS = (30, 14, 7, 3, 1)
ROTATE_BEFORE_DAYS = 30
BATCH = 100  # a Table Storage transaction holds at most 100 operations, all in one partition
WRITERS = 4  # transactions in flight while the fleet is written
FAR_DAYS = (32, 730)  # the rest of the fleet expires in this range of days ahead


def certificate_fields(onboarding: str, not_after: datetime) -> dict:
    """The fields the certificate step records (shared/onboarding.py ensure_certificate), for a made-up one."""
    return {"TenantId": state.tenant_of(onboarding), "ServiceMailbox": f"svc-{onboarding[-8:]}@contoso.com",
            "CertificateName": f"certauth-{uuid.uuid4().hex}", "Version": uuid.uuid4().hex,
            "Thumbprint": uuid.uuid4().hex.upper()[:40], "NotBefore": not_after - timedelta(days=365),
            "NotAfter": not_after, "Exportable": False}


def not_after_of(index: int, now: datetime) -> datetime:
    """The i-th certificate's expiry: the first DUE within the window, the rest spread far beyond it."""
    if index < DUE:
        return now + timedelta(days=1 + index % 29, hours=index % 24)
    span = FAR_DAYS[1] - FAR_DAYS[0]
    return now + timedelta(days=FAR_DAYS[0] + (index * 7919) % span, minutes=index % 1440)


def write_rows(store: state.StateStore, start: int, stop: int, now: datetime) -> None:
    """Certificates start..stop-1 into both tables, in transactions of at most BATCH per partition."""
    by_table: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for index in range(start, stop):
        tenant = uuid.UUID(int=index + 1)
        onboarding = state.onboarding_id(str(tenant), f"svc{index}@contoso.com")
        not_after = not_after_of(index, now)
        fields = certificate_fields(onboarding, not_after)
        by_table[state.CERTIFICATES]["certificate"].append(
            {"PartitionKey": "certificate", "RowKey": state.table_key(onboarding), **fields})
        day = state.expiry_day(not_after)
        month = state.expiry_month(day)
        by_table[state.expiry_table(month)][day].append(
            {"PartitionKey": day, "RowKey": state.table_key(onboarding), **fields})
        months = by_table[state.EXPIRY_MONTHS]["month"]
        if not months or months[-1]["RowKey"] != month:
            months.append({"PartitionKey": "month", "RowKey": month})
    batches = []
    for table_name, partitions in by_table.items():
        table = store._table(table_name)
        for rows in partitions.values():
            if table_name == state.EXPIRY_MONTHS:
                rows = list({row["RowKey"]: row for row in rows}.values())  # one operation per entity
            batches += [(table, rows[offset:offset + BATCH]) for offset in range(0, len(rows), BATCH)]
    # Transactions of different partitions are independent: several in flight keep Azurite and this client busy at
    # once (writing is set-up, not what is measured).
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        for done in [pool.submit(table.submit_transaction, [("upsert", row) for row in rows])
                     for table, rows in batches]:
            done.result()


def sweep_function() -> tuple[str, Callable[[state.StateStore, datetime], list]]:
    """The monitor's index read, or the same days read through the state module when the monitor has none."""
    try:
        from shared.expiry import due_certificates
    except ImportError:
        due_certificates = None
    if due_certificates is not None:
        return "shared.expiry.due_certificates", lambda store, now: due_certificates(
            store, now, THRESHOLDS, ROTATE_BEFORE_DAYS)
    last = max(*THRESHOLDS, ROTATE_BEFORE_DAYS)
    return "StateStore.certificates_expiring_by_day", lambda store, now: list(
        store.certificates_expiring_by_day(None, state.expiry_day(now + timedelta(days=last))))


def full_scan(store: state.StateStore, now: datetime) -> list:
    """The baseline: every tracked certificate read, the due ones kept by the filter."""
    return list(store.certificates_expiring_before(now + timedelta(days=max(*THRESHOLDS, ROTATE_BEFORE_DAYS) + 1)))


def read_all(store: state.StateStore, now: datetime) -> list:
    """The second baseline: every tracked certificate brought to the monitor, which keeps the due ones."""
    end = now + timedelta(days=max(*THRESHOLDS, ROTATE_BEFORE_DAYS) + 1)
    rows = store._table(state.CERTIFICATES).query_entities("PartitionKey eq @pk", parameters={"pk": "certificate"})
    return [row for row in rows if row["NotAfter"] < end]


def timed(work: Callable[[], list], runs: int) -> tuple[float, int]:
    """Median seconds of `runs` calls, and how many rows the last returned."""
    durations, found = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        found = len(work())
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    fleets = sorted(int(n) for n in args.fleets.split(","))
    name, sweep = sweep_function()
    now = datetime.now(UTC).replace(microsecond=0)
    results = []
    with Azurite() as azurite:
        store = state.StateStore(azurite.connection_string)
        written = 0
        for fleet in fleets:
            began = time.perf_counter()
            write_rows(store, written, fleet, now)
            written = fleet
            loaded = time.perf_counter() - began
            sweep(store, now)  # warm the connection and Azurite's query path once
            sweep_s, sweep_n = timed(lambda: sweep(store, now), args.runs)
            scan_s, scan_n = timed(lambda: full_scan(store, now), max(1, min(args.runs, 3)))
            all_s, all_n = timed(lambda: read_all(store, now), 1)
            if {sweep_n, scan_n, all_n} != {DUE}:
                print(f"fleet {fleet}: the sweep found {sweep_n}, the full scans {scan_n} and {all_n}; expected {DUE}",
                      file=sys.stderr)
                return 1
            results.append((fleet, sweep_s, scan_s, all_s))
            print(f"fleet {fleet:>7}: sweep ({name}) {sweep_s * 1000:8.1f} ms, full scan filtered by Table Storage "
                  f"{scan_s * 1000:9.1f} ms, every row read {all_s * 1000:9.1f} ms, {DUE} due "
                  f"(rows written in {loaded:.1f} s)", flush=True)
        store.close()
    (small, sweep_small, scan_small, all_small), (large, sweep_large, scan_large, all_large) = results[0], results[-1]
    growth = sweep_large / sweep_small
    print(f"growth {small} -> {large}: sweep {growth:.2f}x (bound < 2x: {'met' if growth < 2 else 'NOT met'}), "
          f"full scan filtered {scan_large / scan_small:.1f}x, every row read {all_large / all_small:.1f}x")
    for fleet, sweep_s, scan_s, all_s in results:
        print(f"| {fleet} | {sweep_s * 1000:.1f} ms | {scan_s * 1000:.1f} ms | {all_s * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
