"""Automatic onboarding: wall time under injected Azure latency against its lower bound, the Azure requests
one onboarding makes, and the cold start of ``function_app`` against a bare DFApp.

``python -m bench.onboarding [--runs 5] [--latency-ms 50] [--cold-runs 7]``

1. Latency.  Azurite + the simulator + the product (``function_app`` on a sandbox host), wired as
   ``make up`` wires them; one customer tenant consents to the onboarding app.  A warm-up onboarding
   (no latency) pays the host's lazy imports.  Then ``--runs`` onboardings of different mailboxes run one
   after another with ``{"origin": "*", "latencyMs": 50}`` (login, graph, vault, identity), each timed from
   the POST to the status API answering Completed (polled every 20 ms); the same is repeated with no
   latency, which gives the fixed cost (host hops, SDKs, Table Storage, polling).
   Lower bound = calls on the critical path x latency + certificate creation.  The critical path is
   measured, not assumed: the simulator logs when each call started and answered, and the longest chain
   of calls each issued after the previous one answered is the number of dependent calls (independent
   calls the product issues concurrently, like the consent POSTs, overlap and count once).  Also shown:
   the bound of an ideal implementation with the same calls, where only data dependencies order them
   (see IDEAL_CHAIN).  Certificate creation is measured alone, without
   latency: the pending poll that completes a new 2048-bit self-signed certificate minus a plain poll.
2. Requests per onboarding: the simulator's request log (``GET /_sandbox/requests``), by origin and by
   method + path pattern, and per step (segmented at the managed-identity token call each step starts with),
   set against each step's span in the orchestration history.
3. Cold start: fresh interpreters, interleaved: ``import function_app`` vs ``import azure.durable_functions
   as df; df.DFApp()``, and what the first Graph activity loads lazily (its imports and the first response it
   deserializes, which imports msgraph's model modules) and the Key Vault activity's imports; import wall time
   and peak RSS (VmHWM) printed by the child.  Run after the world has stopped, in the caller's environment.

Every process it starts (Azurite, simulator, host, cold-start children) is stopped by process group, on
errors too.  Prints a compact table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections import Counter
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._world import World, prepare_ca  # noqa: E402  (after sys.path)

POLL_S = 0.02
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")
STEPS = ("certificate", "application", "servicePrincipal", "consent", "directoryRole", "proof", "record")

# The ideal critical path for the same calls, ordered only by what each call needs from another
# (tokens cached per onboarding, independent calls concurrent, no CryptographyClient key read before `sign`):
#   certificate: MI token(vault) -> GET certificate (reuse?) -> POST create -> GET pending (+creation)
#                -> GET certificate (cer, key id)                                             = 5 levels
#   directory:   MI token(exchange) -> login token -> PATCH application (upsert) -> GET keyCredentials /
#                PATCH servicePrincipal -> GET appRoleAssignments, GET roleAssignments (resource SPs any time)
#                -> POST appRoleAssignedTo x5, POST roleAssignments                            = 6 levels
#   then:        PATCH application keyCredentials (needs the cer, level 6), Key Vault sign of the client
#                assertion (needs the key id and appId, level 6) -> the proof's token requests (need the key
#                registered and the consent, level 7; both resources in parallel)
IDEAL_CHAIN = 7
IDEAL_NOTE = ("MI token -> GET cert -> POST create -> GET pending (+creation) -> GET cert -> "
              "{PATCH app keyCredentials | sign assertion | consent POSTs} -> proof token; "
              "app, SP, consent and role run beside the certificate chain")


# -- requests ------------------------------------------------------------------------------------------------------

def pattern(record: dict) -> str:
    """`METHOD /path/{id}?keys` with ids, names and versions replaced; the identity call keeps its resource."""
    path, _, query = record["path"].partition("?")
    path = GUID.sub("{id}", path)
    path = re.sub(r"certauth-[0-9a-f]{32}", "{name}", path)
    path = HEX32.sub("{version}", path)
    path = re.sub(r"\(uniqueName='[^']*'\)", "(uniqueName='{name}')", path)
    path = re.sub(r"\(appId='[^']*'\)", "(appId='{id}')", path)
    params = urllib.parse.parse_qs(query)
    keys = []
    for key, values in params.items():
        if key == "api-version":
            continue
        if key == "resource":
            keys.append(f"resource={values[0]}")
        elif key == "$filter":
            keys.append("$filter=" + values[0].split(" ")[0])
        else:
            keys.append(key)
    return f"{record['method']} {path}" + (f"?{'&'.join(keys)}" if keys else "")


def critical_path(records: list[dict]) -> int:
    """The number of calls on the critical path: the longest chain of calls each of which started after
    the previous one had answered (the simulator logs each call's start and end). Calls that overlap in
    time ran concurrently, so they count once. Greedy by end time gives the longest such chain."""
    chain, last_end = 0, float("-inf")
    for record in sorted(records, key=lambda r: r["finished"]):
        if record["started"] >= last_end:
            chain, last_end = chain + 1, record["finished"]
    return chain


def segment_by_step(records: list[dict]) -> list[list[dict]] | None:
    """Split one onboarding's log at each managed-identity token call (each step's first call). Calls before
    the first one (a Key Vault challenge) belong to the first step."""
    segments: list[list[dict]] = []
    for record in records:
        if record["origin"] == "identity" or not segments:
            segments.append([])
        segments[-1].append(record)
    return segments if len(segments) == 6 else None


# -- the onboarding runs -----------------------------------------------------------------------------------------

def history(world: World, instance: str) -> list[dict]:
    response = world._session.get(f"{world.host.base_url}/runtime/webhooks/durabletask/instances/{instance}"
                                  "?showHistory=true", headers={"x-functions-key": world.host.info["adminKey"]},
                                  timeout=30)
    response.raise_for_status()
    return response.json().get("historyEvents") or []


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


AZURE_ORIGINS = ("login", "graph", "vault", "identity")


def run_onboardings(world: World, tenant: str, label: str, runs: int, latency_ms: float,
                    poll: float = POLL_S) -> list[dict]:
    world.simulator.set_faults([{"origin": "*", "latencyMs": latency_ms}] if latency_ms else [])
    results = []
    try:
        for index in range(runs):
            mark = world.simulator.requests_since(0)["next"]
            cpu = world.cpu_seconds()
            posted = time.time()
            mailbox = f"bench-{label}-{index}@contoso.com"
            status, seconds = world.onboard({"tenantId": tenant, "serviceMailbox": mailbox}, poll=poll)
            seen = time.time()
            cpu = {name: used - cpu[name] for name, used in world.cpu_seconds().items()}
            if status["runtimeStatus"] != "Completed":
                raise RuntimeError(f"onboarding ended {status['runtimeStatus']}: {json.dumps(status)[:2000]}")
            # Azure's calls only: the Table Storage proxies (tables, taskhub) are the sandbox's own plumbing here.
            records = [r for r in world.simulator.requests_since(mark)["requests"] if r["origin"] in AZURE_ORIGINS]
            events = history(world, status["id"])
            results.append({"id": status["id"], "seconds": seconds, "records": records, "events": events,
                            "posted": posted, "seen": seen, "cpu": cpu})
    finally:
        world.simulator.set_faults([])
    return results


def certificate_creation_ms(world: World, count: int = 5) -> list[float]:
    """Time of the pending poll that completes a new self-signed RSA-2048 certificate, minus a plain poll
    (no latency; the product's own identity through the managed-identity endpoint)."""
    import requests

    info = world.simulator.info
    token = requests.get(f"{info['identityEndpoint']}?api-version=2019-08-01&resource=https://vault.azure.net",
                         headers={"X-IDENTITY-HEADER": info["identityHeader"]}, timeout=30).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    policy = {"key_props": {"exportable": False, "kty": "RSA", "key_size": 2048, "reuse_key": False},
              "secret_props": {"contentType": "application/x-pkcs12"},
              "x509_props": {"subject": "CN=certauth bench", "validity_months": 12}, "issuer": {"name": "Self"}}
    samples = []
    try:
        for index in range(count):
            url = f"{info['vaultUrl'].rstrip('/')}/certificates/bench-creation-{index}"
            created = session.post(f"{url}/create?api-version=7.5", json={"policy": policy}, timeout=30)
            created.raise_for_status()
            started = time.perf_counter()
            pending = session.get(f"{url}/pending?api-version=7.5", timeout=60)
            completing = time.perf_counter() - started
            if pending.json().get("status") != "completed":
                raise RuntimeError(f"certificate not completed at the first poll: {pending.text[:500]}")
            started = time.perf_counter()
            session.get(f"{url}/pending?api-version=7.5", timeout=30).raise_for_status()
            plain = time.perf_counter() - started
            samples.append(max(0.0, completing - plain) * 1000)
    finally:
        session.close()
    return samples


def poll_cost_ms(world: World, instance: str, count: int = 50) -> dict[str, float]:
    """CPU per GET /api/onboardings/{id} (of a finished onboarding, nothing else running), per service, in ms."""
    before = world.cpu_seconds()
    started = time.perf_counter()
    for _ in range(count):
        world.api("GET", f"/onboardings/{instance}").raise_for_status()
    wall = time.perf_counter() - started
    after = world.cpu_seconds()
    cost = {name: (after[name] - before[name]) * 1000 / count for name in ("host", "azurite")}
    cost["wall"] = wall * 1000 / count
    return cost


def step_breakdown(run: dict, latency_ms: float) -> list[tuple[str, int, float, float]] | None:
    """(step, calls, span ms, span - calls x latency) per activity, from the history and the log."""
    completed = [e for e in run["events"] if e["EventType"] == "TaskCompleted"]
    segments = segment_by_step(run["records"])
    if segments is None or len(completed) != len(STEPS):
        return None
    rows = []
    for index, (step, event) in enumerate(zip(STEPS, completed, strict=True)):
        calls = len(segments[index]) if index < len(segments) else 0
        span = (stamp(event["Timestamp"]) - stamp(event["ScheduledTime"])) * 1000
        rows.append((step, calls, span, span - calls * latency_ms))
    return rows


def orchestration_seconds(run: dict) -> float | None:
    """ExecutionStarted -> ExecutionCompleted, from the history (independent of the client's polling)."""
    started = next((e for e in run["events"] if e["EventType"] == "ExecutionStarted"), None)
    finished = next((e for e in run["events"] if e["EventType"] == "ExecutionCompleted"), None)
    return stamp(finished["Timestamp"]) - stamp(started["Timestamp"]) if started and finished else None


def edges(run: dict) -> tuple[float, float] | None:
    """(POST -> ExecutionStarted, ExecutionCompleted -> the client sees Completed), in ms (same machine clock)."""
    started = next((e for e in run["events"] if e["EventType"] == "ExecutionStarted"), None)
    finished = next((e for e in run["events"] if e["EventType"] == "ExecutionCompleted"), None)
    if not started or not finished:
        return None
    return (stamp(started["Timestamp"]) - run["posted"]) * 1000, (run["seen"] - stamp(finished["Timestamp"])) * 1000


# -- cold start ----------------------------------------------------------------------------------------------------

CHILD_HEAD = "import json, sys, time\nstarted = time.perf_counter()\n"
CHILD_TAIL = """
seconds = time.perf_counter() - started
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
heavy = sorted(m for m in ("msgraph", "azure.keyvault.certificates", "azure.keyvault.keys", "azure.identity")
               if m in sys.modules)
print(json.dumps({"seconds": seconds, "hwmKiB": hwm, "heavy": heavy}))
"""

COLD = {
    "bare DFApp": "import azure.durable_functions as df\ndf.DFApp()",
    "function_app": "import function_app",
    # the first Graph activity: its lazy imports (shared/graph.py, credentials.py), then the first response it
    # deserializes (kiota imports the model modules of Entity's subtypes on the first object: msgraph-sdk-python#909)
    "function_app + first Graph activity": (
        "import function_app\n"
        "from msgraph import GraphRequestAdapter, GraphServiceClient\n"
        "from kiota_authentication_azure.azure_identity_authentication_provider import "
        "AzureIdentityAuthenticationProvider\n"
        "from azure.identity.aio import ClientAssertionCredential\n"
        "from msgraph.generated.models.service_principal import ServicePrincipal\n"
        "from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory\n"
        "JsonParseNodeFactory().get_root_parse_node('application/json', b'{\"id\": \"1\", \"appId\": \"2\"}')"
        ".get_object_value(ServicePrincipal)"),
    # what the certificate activity imports lazily (shared/keyvault.py, credentials.py)
    "function_app + Key Vault activity imports": (
        "import function_app\nfrom azure.keyvault.certificates import CertificateClient\n"
        "from azure.identity import DefaultAzureCredential"),
    "import msgraph alone": "import msgraph",
    "import msgraph + first deserialization": (
        "import msgraph\n"
        "from msgraph.generated.models.service_principal import ServicePrincipal\n"
        "from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory\n"
        "JsonParseNodeFactory().get_root_parse_node('application/json', b'{\"id\": \"1\", \"appId\": \"2\"}')"
        ".get_object_value(ServicePrincipal)"),
}


def cold_start(runs: int, env: dict) -> dict[str, list[dict]]:
    """Fresh interpreters, one of each kind per round (interleaved), each its own process group."""
    samples: dict[str, list[dict]] = {name: [] for name in COLD}
    for round_ in range(runs):
        names = list(COLD) if round_ % 2 == 0 else list(reversed(COLD))
        for name in names:
            code = CHILD_HEAD + COLD[name] + CHILD_TAIL
            proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise RuntimeError(f"cold start child '{name}' hung") from None
            if proc.returncode != 0:
                raise RuntimeError(f"cold start child '{name}' failed:\n{err[-2000:]}")
            samples[name].append(json.loads(out.strip().splitlines()[-1]))
    return samples


# -- report --------------------------------------------------------------------------------------------------------

def table(rows: list[tuple], headers: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                        enumerate(zip(r, widths, strict=True))) for r in rows]
    return "\n".join(lines)


def median(values):
    return statistics.median(values) if values else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="onboardings per latency setting")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--cold-runs", type=int, default=7)
    args = parser.parse_args(argv)
    latency = args.latency_ms
    began = time.perf_counter()
    # SIGTERM unwinds like Ctrl-C, so the world's exit stack stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    child_env = {**os.environ, "PYTHONPATH": str(REPO)}  # cold start: the environment as given, no sandbox CA
    state_dir = prepare_ca()  # before anything imports aiohttp
    with World(tenants=2, state_dir=state_dir) as world:
        tenant = world.customers[0]["tenantId"]
        world.consent(tenant)
        warm = run_onboardings(world, tenant, "warmup", 1, 0)[0]
        slow = run_onboardings(world, tenant, "latency", args.runs, latency)
        fast = run_onboardings(world, tenant, "nolatency", args.runs, 0)
        # The status polling itself loads the host and Azurite (2 shared cores): the same with a 250 ms poll.
        lazy = run_onboardings(world, tenant, "slowpoll", max(2, args.runs // 2), latency, poll=0.25)
        creation = certificate_creation_ms(world)
        polls = poll_cost_ms(world, fast[-1]["id"])
    cold = cold_start(args.cold_runs, child_env)  # after the world has stopped: a quieter machine

    # -- 1. latency
    walls = [r["seconds"] for r in slow]
    fixed = [r["seconds"] for r in fast]
    call_counts = [len(r["records"]) for r in slow]
    total_calls = int(median(call_counts))
    calls = int(median([critical_path(r["records"]) for r in slow]))
    creation_ms = median(creation)
    wall = median(walls)
    bound = calls * latency / 1000 + creation_ms / 1000
    ideal = IDEAL_CHAIN * latency / 1000 + creation_ms / 1000
    print(f"\n1. onboarding wall time, {latency:.0f} ms per Azure call, {args.runs} onboardings "
          f"(POST -> status Completed, polled every {POLL_S * 1000:.0f} ms)")
    print(f"   wall: median {wall:.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); "
          f"same with no latency: median {median(fixed):.2f} s; warm-up (first, lazy imports) {warm['seconds']:.2f} s")
    print(f"   certificate creation (RSA 2048 self-signed, simulator, no latency): median {creation_ms:.0f} ms "
          f"({', '.join(f'{c:.0f}' for c in creation)})")
    print(f"   critical path as implemented: {calls} of the {total_calls} calls (the longest chain of calls each")
    print("     issued after the previous one answered, from the simulator's request times; concurrent calls,")
    print("     such as the consent POSTs, count once)")
    print(f"   lower bound = {calls} x {latency:.0f} ms + {creation_ms:.0f} ms = {bound:.2f} s -> "
          f"ratio {wall / bound:.2f} (aim <= 1.3: {'met' if wall / bound <= 1.3 else 'NOT met'})")
    print(f"   data-dependency bound (same calls, only true dependencies ordered): {IDEAL_CHAIN} x {latency:.0f} ms + "
          f"{creation_ms:.0f} ms = {ideal:.2f} s -> ratio {wall / ideal:.2f}")
    print(f"     chain: {IDEAL_NOTE}")
    added = wall - median(fixed)
    print(f"   latency added by {latency:.0f} ms/call: {added:.2f} s = {added * 1000 / calls:.0f} ms per "
          f"dependent call (~{latency:.0f} if only they wait); fixed cost without latency {median(fixed):.2f} s "
          f"= {median(fixed) / wall * 100:.0f}% of the wall time")

    breakdowns = [b for b in (step_breakdown(r, latency) for r in slow) if b]
    if breakdowns:
        rows = []
        for index, step in enumerate(STEPS):
            rows.append((step, breakdowns[0][index][1], f"{median([b[index][2] for b in breakdowns]):.0f}",
                         f"{breakdowns[0][index][1] * latency:.0f}",
                         f"{median([b[index][3] for b in breakdowns]):.0f}"))
        edge = [e for e in (edges(r) for r in slow) if e]
        print("\n   per step (activity span from the orchestration history, incl. its host hop; median ms):")
        print(textwrap.indent(table(rows, ("step", "calls", "span", "calls x lat", "other")), "   "))
        if edge:
            print(f"   POST -> orchestration started: {median([e[0] for e in edge]):.0f} ms; "
                  f"orchestration completed -> client sees Completed: {median([e[1] for e in edge]):.0f} ms")

    print("\n   CPU used per onboarding (median s; all processes share the machine's cores):")
    rows = []
    for label, runs_ in ((f"{latency:.0f} ms latency", slow), ("no latency", fast)):
        cpu = {name: median([r["cpu"][name] for r in runs_]) for name in runs_[0]["cpu"]}
        rows.append((label, *(f"{cpu[n]:.2f}" for n in ("host", "simulator", "azurite", "client")),
                     f"{sum(cpu.values()):.2f}", f"{median([r['seconds'] for r in runs_]):.2f}"))
    print(textwrap.indent(table(rows, ("run", "host", "simulator", "azurite", "bench client", "sum", "wall")), "   "))
    spans = [orchestration_seconds(r) for r in slow]
    lazy_spans = [orchestration_seconds(r) for r in lazy]
    lazy_ratio = None
    if all(spans) and all(lazy_spans):
        lazy_ratio = median(lazy_spans) / bound
        print(f"   orchestration span (history) with the status polled every {POLL_S * 1000:.0f} ms: "
              f"{median(spans):.2f} s; every 250 ms: {median(lazy_spans):.2f} s (n={len(lazy)}) "
              f"-> polling load costs {(median(spans) - median(lazy_spans)) * 1000:+.0f} ms")
    share = (polls["host"] + polls["azurite"]) / (POLL_S * 1000)
    print(f"   one status GET: {polls['wall']:.1f} ms wall, {polls['host']:.1f} ms host CPU + "
          f"{polls['azurite']:.1f} ms Azurite CPU; polled every {POLL_S * 1000:.0f} ms that is {share:.0%} of a core")

    # -- 2. requests
    by_origin = [Counter(r["origin"] for r in run["records"]) for run in slow]
    by_pattern = Counter()
    for run in slow:
        by_pattern.update(f"{r['origin']:<8} {pattern(r)}" for r in run["records"])
    print(f"\n2. Azure requests per onboarding (median over {len(slow)}; warm-up onboarding: {len(warm['records'])})")
    origins = ("graph", "vault", "login", "identity")
    print("   " + ", ".join(f"{o} {median([c[o] for c in by_origin]):g}" for o in origins)
          + f", total {total_calls}")
    statuses = Counter(r["status"] for run in slow for r in run["records"])
    print(f"   statuses: {dict(sorted(statuses.items()))}")
    rows = [(name, f"{count / len(slow):g}") for name, count in sorted(by_pattern.items())]
    print(textwrap.indent(table(rows, ("origin   method path", "per onboarding")), "   "))

    # -- 3. cold start
    print(f"\n3. cold start (fresh interpreter: import wall time and peak RSS, median of {args.cold_runs}, "
          "interleaved)")
    rows = []
    base = cold["bare DFApp"]
    base_s, base_kib = median([s["seconds"] for s in base]), median([s["hwmKiB"] for s in base])
    for name, samples in cold.items():
        seconds, kib = median([s["seconds"] for s in samples]), median([s["hwmKiB"] for s in samples])
        rows.append((name, f"{seconds * 1000:.0f} ms", f"{seconds / base_s:.2f}x", f"{kib / 1024:.1f} MiB",
                     f"{kib / base_kib:.2f}x", ",".join(samples[0]["heavy"]) or "-"))
    print(textwrap.indent(table(rows, ("import", "time", "vs bare", "peak RSS", "vs bare", "heavy SDKs loaded")),
                          "   "))

    fa = cold["function_app"]
    fa_s, fa_kib = median([s["seconds"] for s in fa]), median([s["hwmKiB"] for s in fa])
    print("\nsummary")
    summary = [
        ("onboarding wall, 50 ms/call (median)", f"{wall:.2f} s"),
        (f"lower bound ({calls} dependent calls x 50 ms + cert)", f"{bound:.2f} s"),
        ("ratio (aim <= 1.3)", f"{wall / bound:.2f}"),
        ("ratio vs data-dependency bound", f"{wall / ideal:.2f}"),
        ("ratio, orchestration span with 250 ms status polling",
         f"{lazy_ratio:.2f}" if lazy_ratio is not None else "n/a"),
        ("same onboarding, no latency", f"{median(fixed):.2f} s"),
        ("requests per onboarding graph/vault/login/identity",
         "/".join(f"{median([c[o] for c in by_origin]):g}" for o in origins)),
        ("cold import function_app vs bare DFApp", f"{fa_s * 1000:.0f} vs {base_s * 1000:.0f} ms "
                                                   f"({fa_s / base_s:.2f}x)"),
        ("peak RSS function_app vs bare DFApp", f"{fa_kib / 1024:.1f} vs {base_kib / 1024:.1f} MiB "
                                                f"({fa_kib / base_kib:.2f}x)"),
    ]
    print(table(summary, ("measure", "value")))
    print(f"(bench ran {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
