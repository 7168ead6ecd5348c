"""Many tenants at once: 1, 10 and 50 automatic onboardings started together, each in its own customer tenant,
with 429s injected per tenant.

``python -m bench.fleet [--sizes 1,10,50] [--latency-ms 50] [--throttled 2] [--retry-after 1]``

Azurite + the simulator (``--tenants`` = the largest size + the home tenant; every customer consents to the
onboarding app) + the product on a sandbox host, as ``make up`` wires them (host.json's Durable throttles apply:
maxConcurrentActivityFunctions / maxConcurrentOrchestratorFunctions per host instance). A warm-up onboarding pays
the host's lazy imports. Then for each size N, under the flat latency profile (``--latency-ms`` on every Azure call)
and with ``--throttled`` Graph 429s (``Retry-After: --retry-after`` s) injected in every tenant (on its service
principal's upsert: a fault rule scoped to the tenant), N onboardings of new mailboxes are POSTed at once (16 client
threads) and followed through the durable instance list until all are terminal. Key Vault's own limit applies too:
the simulator answers 429 beyond 20 software RSA key creations per 10 s per vault, as Key Vault does. It reports:

- the wall time (first POST -> last ExecutionCompleted in the histories), each onboarding's own time, and the
  throughput (onboardings per second) against one onboarding alone;
- from the simulator's request log (each record's start and end, its tenant and the calling app from the token):
  the peak number of Graph requests in flight per (app, tenant) pair, per app across tenants, and in all;
- the 429s answered (Graph's injected ones, Key Vault's creation limit), whether every retry waited the answer's
  Retry-After (the next request of that tenant to the same method and path), durable retries (failed activity
  attempts), and that every onboarding completed.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import textwrap
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _profiles as profiles  # noqa: E402  (after sys.path)
from bench._world import World, prepare_ca  # noqa: E402

CLIENT_THREADS = 16
# the service principal's upsert: one request per onboarding, so its retry is the next request to that path
THROTTLED = {"method": "PATCH", "path": r"/servicePrincipals\(appId="}


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def peak(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end and a start at the same instant do not overlap)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    top = current = 0
    for _, step in edges:
        current += step
        top = max(top, current)
    return top


def concurrency(records: list[dict]) -> dict[str, int]:
    """Peak Graph requests in flight: per (app, tenant), per app, in all."""
    graph = [r for r in records if r["origin"] == "graph"]
    by_pair: dict[tuple, list] = defaultdict(list)
    by_app: dict[str, list] = defaultdict(list)
    for r in graph:
        by_pair[(r.get("app_id"), r.get("tenant_id"))].append((r["started"], r["finished"]))
        by_app[r.get("app_id")].append((r["started"], r["finished"]))
    return {"pair": max((peak(v) for v in by_pair.values()), default=0),
            "app": max((peak(v) for v in by_app.values()), default=0),
            "all": peak([(r["started"], r["finished"]) for r in graph]),
            "apps": len(by_app), "pairs": len(by_pair)}


def retry_waits(records: list[dict], origin: str) -> tuple[int, list[tuple[float, float]]]:
    """(429s `origin` answered, (the wait before each one's retry, its Retry-After): the retry is the next request
    of the same tenant to the same method and path; every throttled path here is requested once per onboarding,
    its certificate's or its app's)."""
    throttled = [r for r in records if r["status"] == 429 and r["origin"] == origin]
    waits = []
    for r in throttled:
        later = [n for n in records if n is not r and n["tenant_id"] == r["tenant_id"] and n["method"] == r["method"]
                 and n["path"] == r["path"] and n["started"] >= r["finished"] - 1e-3]
        if later:
            waits.append((min(n["started"] for n in later) - r["finished"], float(r.get("retry_after") or 0)))
    return len(throttled), waits


def honoured(throttled: int, waits: list[tuple[float, float]]) -> str:
    """Whether every 429 was retried, no sooner than its Retry-After (50 ms of timer slack)."""
    if not throttled:
        return "-"
    ok = len(waits) == throttled and all(wait >= after - 0.05 for wait, after in waits)
    return f"{'yes' if ok else 'NO'} ({len(waits)}/{throttled} retried, shortest {min(w for w, _ in waits):.2f} s)" \
        if waits else "NO (none retried)"


def throttle_rules(tenants: list[str], count: int, retry_after: float) -> list[dict]:
    return [{"origin": "graph", "tenant": t, **THROTTLED, "status": 429, "count": count, "retryAfter": retry_after}
            for t in tenants] if count else []


def run_round(world: World, tenants: list[str], label: str) -> dict:
    """Onboard one new mailbox in each tenant, all at once; what happened."""
    mark = world.simulator.requests_since(0)["next"]
    cpu = world.cpu_seconds()
    bodies = [{"tenantId": t, "serviceMailbox": f"fleet-{label}-{i}@contoso.com"} for i, t in enumerate(tenants)]
    began = time.time()
    with ThreadPoolExecutor(max_workers=min(CLIENT_THREADS, len(bodies))) as pool:
        started = list(pool.map(world.start, bodies))
    answered = time.time()   # the last POST has its 202
    posted = dict(started)  # onboarding id -> when it was posted
    world.wait_all(list(posted), timeout=600)
    ended = {}
    failed_attempts = Counter()
    for onboarding in posted:
        events = world.host_admin("GET", f"/runtime/webhooks/durabletask/instances/{onboarding}?showHistory=true"
                                  ).get("historyEvents") or []
        done = next((e for e in events if e["EventType"] == "ExecutionCompleted"), None)
        ended[onboarding] = stamp(done["Timestamp"]) if done else time.time()
        failed_attempts.update(e.get("FunctionName") for e in events if e["EventType"] == "TaskFailed")
    outcomes = Counter(world.api("GET", f"/onboardings/{o}").json().get("status") for o in posted)
    records = [r for r in world.simulator.requests_since(mark)["requests"] if r["origin"] in profiles.CLOUD]
    cpu = {name: used - cpu[name] for name, used in world.cpu_seconds().items()}
    throttled, waits = retry_waits(records, "graph")
    vault_throttled, vault_waits = retry_waits(records, "vault")
    return {"n": len(tenants), "wall": max(ended.values()) - began,
            "each": [ended[o] - posted[o] for o in posted], "outcomes": outcomes, "records": records,
            "concurrency": concurrency(records), "throttled": throttled, "waits": waits,
            "vaultThrottled": vault_throttled, "vaultWaits": vault_waits,
            "failedAttempts": failed_attempts, "cpu": cpu, "posting": answered - began}


def table(rows: list[tuple], headers: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                        enumerate(zip(r, widths, strict=True))) for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50", help="how many tenants onboard at once, per round")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="flat latency on every Azure call")
    parser.add_argument("--throttled", type=int, default=2, help="Graph 429s injected per tenant and round")
    parser.add_argument("--retry-after", type=float, default=1.0, help="their Retry-After, seconds")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    began = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    state_dir = prepare_ca()
    results = []
    with World(tenants=max(sizes) + 1, state_dir=state_dir) as world:
        customers = [t["tenantId"] for t in world.customers]
        for tenant in customers:
            world.consent(tenant)
        throttles = world.durable()
        world.onboard({"tenantId": customers[0], "serviceMailbox": "fleet-warmup@contoso.com"})
        flat = profiles.flat(args.latency_ms)
        try:
            for size in sizes:
                tenants = customers[:size]
                # a fresh count of 429s for every tenant of the round
                world.simulator.set_faults(flat.rules + throttle_rules(tenants, args.throttled, args.retry_after))
                results.append(run_round(world, tenants, f"{size}"))
        finally:
            profiles.clear(world)

    one = next((r for r in results if r["n"] == 1), results[0])
    one_rate = one["n"] / one["wall"]
    print(f"\nfleet: onboardings started together, one tenant each, {args.latency_ms:.0f} ms per Azure call, "
          f"{args.throttled} Graph 429s (Retry-After {args.retry_after:g} s) per tenant on its service principal's "
          "upsert; Key Vault's creation limit (20 per 10 s per vault)")
    print(f"host throttles (host.json, per instance): maxConcurrentActivityFunctions "
          f"{throttles['maxConcurrentActivityFunctions']}, maxConcurrentOrchestratorFunctions "
          f"{throttles['maxConcurrentOrchestratorFunctions']}")
    rows = []
    for r in results:
        each = sorted(r["each"])
        rate = r["n"] / r["wall"]
        c = r["concurrency"]
        rows.append((r["n"], f"{r['wall']:.2f} s", f"{statistics.median(each):.2f} / {each[-1]:.2f} s",
                     f"{rate:.2f}/s", f"{rate / one_rate:.2f}x", c["pair"], c["app"], c["all"],
                     f"{r['outcomes'].get('completed', 0)}/{r['n']}"))
    print(textwrap.indent(table(rows, ("tenants", "wall", "each p50 / max", "throughput", "vs one",
                                       "graph peak app+tenant", "per app", "all", "completed")), "  "))
    rows = []
    for r in results:
        rows.append((r["n"], r["throttled"], honoured(r["throttled"], r["waits"]), r["vaultThrottled"],
                     honoured(r["vaultThrottled"], r["vaultWaits"]), sum(r["failedAttempts"].values()),
                     ", ".join(f"{k}: {v}" for k, v in sorted(r["outcomes"].items())),
                     f"{sum(r['cpu'].values()) / r['n']:.2f} s", f"{r['posting']:.2f} s"))
    print(textwrap.indent(table(rows, ("tenants", "graph 429s", "Retry-After honoured", "vault 429s",
                                       "Retry-After honoured", "durable retries", "outcomes", "CPU per onboarding",
                                       "POSTs took")), "  "))
    c = results[-1]["concurrency"]
    print(f"  the Graph calls came from {c['apps']} app(s) in {c['pairs']} (app, tenant) pairs; Graph throttles per "
          "app per tenant, so the per-pair peak is what a tenant sees")
    failed = [r for r in results if r["outcomes"].get("completed", 0) != r["n"]]
    print("\nsummary")
    last = results[-1]
    print(table([
        (f"{last['n']} onboardings at once: wall", f"{last['wall']:.2f} s"),
        (f"throughput {last['n']} at once vs one", f"{last['n'] / last['wall']:.2f}/s vs {one_rate:.2f}/s "
                                                   f"({last['n'] / last['wall'] / one_rate:.2f}x)"),
        ("peak Graph requests in flight per app+tenant / per app", f"{last['concurrency']['pair']} / "
                                                                   f"{last['concurrency']['app']}"),
        ("Graph 429s injected / retried no sooner than Retry-After",
         f"{sum(r['throttled'] for r in results)} / "
         f"{sum(sum(1 for w, a in r['waits'] if w >= a - 0.05) for r in results)}"),
        ("Key Vault 429s (creation limit) / retried no sooner than Retry-After",
         f"{sum(r['vaultThrottled'] for r in results)} / "
         f"{sum(sum(1 for w, a in r['vaultWaits'] if w >= a - 0.05) for r in results)}"),
        ("onboardings completed", f"{sum(r['outcomes'].get('completed', 0) for r in results)}/"
                                  f"{sum(r['n'] for r in results)}"),
    ], ("measure", "value")))
    print(f"(bench ran {time.perf_counter() - began:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
