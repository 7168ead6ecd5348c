"""Cost of one activity hop through the sandbox host (history in Azurite) vs a direct function call.

``python -m bench.host_overhead [--hops 20] [--runs 5]``

Starts Azurite and ``python -m sandbox.host`` serving ``tests/host_app``, runs the ``chain`` orchestrator
(N sequential ``call_activity`` hops of a trivial activity) several times, and reads the per-hop cost
from the instance's own history: the time between consecutive ``TaskCompleted`` events is one full hop
(orchestrator replay + commit to the task hub + activity dispatch + activity result commit).  The
direct call is the same activity function called in-process.  Prints a small table of medians.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
import uuid
from pathlib import Path

import requests
from dateutil.parser import parse as parse_datetime

from sandbox.process import stop_group

REPO = Path(__file__).resolve().parent.parent
HOST_APP = REPO / "tests" / "host_app"


def start_host(connection: str) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, AzureWebJobsStorage=connection, PYTHONPATH=str(REPO), SANDBOX_HOST_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.host", "--port", "0", "--task-hub",
                             f"Bench{uuid.uuid4().hex[:8]}"], cwd=HOST_APP, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the sandbox host did not start")
    return proc, json.loads(line)


def run_chain(info: dict, hops: int) -> tuple[list[float], float]:
    headers = {"x-functions-key": info["adminKey"]}
    started = time.perf_counter()
    response = requests.post(f"{info['baseUrl']}/api/orchestrators/chain", data=json.dumps(hops),
                             headers=headers, timeout=30)
    status_url = response.json()["statusQueryGetUri"]
    while True:
        status = requests.get(status_url, timeout=30).json()
        if status["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    status = requests.get(status_url + "&showHistory=true", timeout=30).json()
    assert status["runtimeStatus"] == "Completed", status
    completed = [parse_datetime(e["Timestamp"]) for e in status["historyEvents"] if e["EventType"] == "TaskCompleted"]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(completed)]
    return gaps, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from sandbox.azurite import Azurite

    sys.path.insert(0, str(HOST_APP))
    from blueprints.durable import square  # the activity, called directly

    direct_fn = square.build().get_user_function() if hasattr(square, "build") else square._function._func
    loops = 100000
    direct_us = min(timeit.repeat(lambda: direct_fn(7), number=loops, repeat=5)) / loops * 1e6

    with Azurite() as azurite:
        proc, info = start_host(azurite.connection_string)
        try:
            run_chain(info, 3)                      # warm-up (imports, table creation, connections)
            gaps: list[float] = []
            totals: list[float] = []
            for _ in range(args.runs):
                run_gaps, elapsed = run_chain(info, args.hops)
                gaps.extend(run_gaps)
                totals.append(elapsed * 1000 / args.hops)
        finally:
            stop_group(proc, timeout=15)

    hop = statistics.median(gaps)
    rows = [
        ("direct call of the activity function", f"{direct_us:.2f} µs", ""),
        ("activity hop via sandbox host (median, from history)", f"{hop:.1f} ms",
         f"p90 {statistics.quantiles(gaps, n=10)[-1]:.1f} ms, n={len(gaps)}"),
        (f"end-to-end per hop ({args.hops}-hop chain incl. start+polling)", f"{statistics.median(totals):.1f} ms",
         f"runs={args.runs}"),
        ("overhead factor (hop / direct call)", f"{hop * 1000 / direct_us:,.0f}x", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median':>10}  notes")
    print(f"{'-' * width}  {'-' * 10}  -----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    print(f"target: < 20 ms per hop -> {'met' if hop < 20 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
