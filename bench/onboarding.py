"""Automatic onboarding: wall time against the bound its data dependencies allow, under a flat and a realistic Azure
latency profile; the Azure requests one onboarding makes; the cold start of ``function_app`` against a bare DFApp.

``python -m bench.onboarding [--runs 5] [--latency-ms 50] [--realistic-runs 3] [--cold-runs 7]``

1. Latency.  Azurite + the simulator + the product (``function_app`` on a sandbox host), wired as ``make up``
   wires them; one customer tenant consents to the onboarding app.  A warm-up onboarding (no latency) pays the
   host's lazy imports.  Then, each onboarding a new mailbox (a new certificate, app and service principal),
   timed from the POST to the status API answering Completed (polled every 20 ms):
   - ``--runs`` with ``latencyMs`` on every Azure call (the flat profile, bench/_profiles.py);
   - ``--runs`` with no latency at all: the **floor**, what the sandbox itself costs (host hops, SDKs, Table
     Storage, the status polling), measured in the same run;
   - ``--realistic-runs`` with the realistic profile (bench/_profiles.py, sources in bench/README.md): per-route
     latency for the token endpoint, Graph reads and writes, Key Vault; certificate creation pending for seconds;
     replication delay on new service principals; a per-hop cost on the sandbox host's Durable engine.
   **The bound that can be met** = the data-dependency chain under the profile + the floor.  The chain is
   IDEAL_DAG below: the calls the onboarding made, ordered only by what each needs from another (independent
   calls run side by side; the consent POSTs count once); its longest path under the profile's per-call latency,
   plus the certificate's creation where its pending poll is, plus the replication wait where a call references
   the new service principal.  With a flat latency L it is ``IDEAL_CHAIN x L + creation``.  The line
   ``ratio vs data-dependency bound with floor`` is wall / (chain + floor).  Also shown: the critical path as
   implemented (the longest chain of calls each issued after the previous one answered, from the simulator's
   request times), the activities of the orchestration and how many ran one after another (each is two queue
   hops on the Azure Storage provider), and certificate creation alone (the simulator's key generation).
2. Requests per onboarding: the simulator's request log (``GET /_sandbox/requests``), by origin and by method +
   path pattern.
3. Cold start: fresh interpreters, interleaved, import wall time and peak RSS (VmHWM) printed by the child.
   After the world has stopped, in the caller's environment: ``import function_app`` vs ``import
   azure.durable_functions as df; df.DFApp()`` (and the Key Vault activity's lazy imports), with bytecode (one
   untimed warm-up child per kind writes __pycache__, PYTHONDONTWRITEBYTECODE removed) and without (``-B`` and an
   empty PYTHONPYCACHEPREFIX: every module compiles). While the world runs: the first Graph activity as the
   product does it (after ``import function_app``: shared.graph's Directory, its client built, one upsert against
   the simulator, the answer read as shared/graph_answers.py's Answer) against ``import msgraph``, and ``import
   msgraph`` + a first deserialization through msgraph's model (what the product avoids: msgraph-sdk-python#909).

Every process it starts (Azurite, simulator, host, cold-start children) is stopped by process group, on
errors too.  Prints a summary table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _profiles as profiles  # noqa: E402  (after sys.path)
from bench._world import World, prepare_ca  # noqa: E402

POLL_S = 0.02
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")
AZURE_ORIGINS = ("login", "graph", "vault", "identity", "exchange")


# -- the data-dependency chain ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One call of the ideal onboarding: which requests it is (origin, method, a regular expression searched in the
    path with its query), what it needs first, and what it waits for besides its own latency."""

    name: str
    origin: str
    method: str
    path: str
    after: tuple[str, ...] = ()
    creation: bool = False         # the certificate's creation completes before this poll answers
    replicated: str | None = None  # references the service principal that call created: waits for its replication
    optional: bool = False         # a token a warm process may hold already: absent when the onboarding made none


TOKEN = r"/oauth2/v2\.0/token(\?|$)"
CERTIFICATE = r"^/certificates/[^/?]+/?(\?|$)"
SP = "PATCH servicePrincipal (upsert)"
# The calls one onboarding needs, each after only what its request is made of (the order is topological). Tokens
# are per process (the managed identity's, cached) or per tenant; an independent call runs beside the others; the
# CryptographyClient's key read before `sign` is not needed (the key id comes with the certificate).
#   certificate: GET certificate (reuse?) | app management policy (the lifetime cap) -> POST create
#                -> GET pending (+ creation) -> GET certificate (cer, key id)
#   directory:   onboarding app's token -> PATCH application -> PATCH servicePrincipal -> GET grants / roles
#                -> POST appRoleAssignedTo x n, POST roleAssignments (once the service principal has replicated)
#   then:        PATCH keyCredentials (needs the cer) and sign the client assertion (needs the key id and appId)
#                -> the proof's token (needs the key, the consent and the service principal's sign-in)
IDEAL_DAG = (
    Call("onboarding app token", "login", "POST", TOKEN, optional=True),
    Call("GET app management policy", "graph", "GET", r"/policies/defaultAppManagementPolicy",
         after=("onboarding app token",)),
    Call("GET certificate (reuse?)", "vault", "GET", CERTIFICATE),
    Call("POST certificate create", "vault", "POST", r"/certificates/[^/?]+/create(\?|$)",
         after=("GET certificate (reuse?)", "GET app management policy")),
    Call("GET pending (+ creation)", "vault", "GET", r"/certificates/[^/?]+/pending(\?|$)",
         after=("POST certificate create",), creation=True),
    Call("GET certificate (cer, key id)", "vault", "GET", CERTIFICATE, after=("GET pending (+ creation)",)),
    Call("PATCH application (upsert)", "graph", "PATCH", r"/applications\(uniqueName=",
         after=("onboarding app token",)),
    Call("GET keyCredentials", "graph", "GET", r"/applications/[^/?(]+\?", after=("PATCH application (upsert)",)),
    Call("PATCH keyCredentials (merge)", "graph", "PATCH", r"/applications/[^/?(]+(\?|$)",
         after=("GET certificate (cer, key id)", "GET keyCredentials", "PATCH application (upsert)")),
    Call(SP, "graph", "PATCH", r"/servicePrincipals\(appId=", after=("PATCH application (upsert)",)),
    Call("GET appRoleAssignments", "graph", "GET", r"/servicePrincipals/[^/?(]+/appRoleAssignments", after=(SP,)),
    Call("POST appRoleAssignedTo (consent)", "graph", "POST", r"/appRoleAssignedTo(\?|$)",
         after=("GET appRoleAssignments",), replicated=SP),
    Call("GET roleAssignments", "graph", "GET", r"/roleManagement/directory/roleAssignments\?", after=(SP,)),
    Call("POST roleAssignments", "graph", "POST", r"/roleManagement/directory/roleAssignments(\?|$)",
         after=("GET roleAssignments",), replicated=SP),
    Call("sign (client assertion)", "vault", "POST", r"/keys/.+/sign(\?|$)",
         after=("GET certificate (cer, key id)", "PATCH application (upsert)")),
    Call("proof token", "login", "POST", TOKEN, replicated=SP,
         after=("PATCH keyCredentials (merge)", "sign (client assertion)", "POST appRoleAssignedTo (consent)",
                "POST roleAssignments")),
    Call("Exchange proof", "exchange", "POST", r"/InvokeCommand(\?|$)", after=("proof token",)),
)


def _matches(call: Call, record: dict) -> bool:
    return record["origin"] == call.origin and record["method"] == call.method and \
        re.search(call.path, record["path"]) is not None


def ideal_calls(records: list[dict]) -> list[tuple[Call, list[dict]]]:
    """The calls of IDEAL_DAG this onboarding made, each with its requests; calls it did not make drop out and pass
    their prerequisites on. Calls sharing a matcher (two token requests, two certificate reads) take the requests in
    order; with fewer requests than calls, optional ones (a token a warm process holds) go first."""
    ordered = sorted(records, key=lambda r: r["started"])
    groups: dict[tuple, list[Call]] = {}
    for call in IDEAL_DAG:
        groups.setdefault((call.origin, call.method, call.path), []).append(call)
    taken: dict[str, list[dict]] = {}
    for calls in groups.values():
        found = [r for r in ordered if _matches(calls[0], r)]
        if len(calls) == 1:
            if found:
                taken[calls[0].name] = found
            continue
        kept = calls if len(found) >= len(calls) else [c for c in calls if not c.optional]
        for call, record in zip(kept, found, strict=False):
            taken[call.name] = [record]
    present = [(call, taken[call.name]) for call in IDEAL_DAG if call.name in taken]
    names = {call.name for call, _ in present}
    resolved: dict[str, tuple[str, ...]] = {}
    for call in IDEAL_DAG:   # prerequisites of absent calls pass on (IDEAL_DAG is in topological order)
        deps: list[str] = []
        for dep in call.after:
            deps.extend([dep] if dep in names else resolved.get(dep, ()))
        resolved[call.name] = tuple(dict.fromkeys(deps))
    return [(Call(call.name, call.origin, call.method, call.path, resolved[call.name], call.creation,
                  call.replicated if call.replicated in names else None, call.optional), found)
            for call, found in present]


@dataclass
class Chain:
    """The data-dependency chain of one onboarding under a profile."""

    seconds: float           # its longest path: per-call latency + creation + replication waits
    levels: int              # calls on the longest path by count (IDEAL_CHAIN)
    path: list[str]          # the calls on the path that sets `seconds`
    creation_s: float
    replication_s: float     # time on that path spent waiting for replication


def chain(records: list[dict], profile: profiles.Profile, creation_s: float) -> Chain:
    """The longest path through the calls this onboarding made (ideal_calls) under `profile`."""
    calls = ideal_calls(records)
    end: dict[str, float] = {}
    level: dict[str, int] = {}
    via: dict[str, str | None] = {}
    waited: dict[str, float] = {}
    replication = profile.replication.get("servicePrincipal", 0.0)
    for call, _ in calls:
        start, before = 0.0, None
        for dep in call.after:
            if end[dep] > start:
                start, before = end[dep], dep
        wait = 0.0
        if call.replicated is not None and end[call.replicated] + replication > start:
            wait = end[call.replicated] + replication - start
            start, before = end[call.replicated] + replication, call.replicated
        duration = profile.call_ms(call.origin, call.method) / 1000 + (creation_s if call.creation else 0.0)
        end[call.name] = start + duration
        via[call.name] = before
        waited[call.name] = wait + (waited[before] if before else 0.0)
        level[call.name] = 1 + max((level[d] for d in call.after), default=0)
    if not end:
        return Chain(0.0, 0, [], 0.0, 0.0)
    last = max(end, key=end.get)
    path, name = [], last
    while name is not None:
        path.append(name)
        name = via[name]
    on_path = {c.name: c for c, _ in calls if c.name in path}
    return Chain(end[last], max(level.values()), list(reversed(path)),
                 creation_s if any(c.creation for c in on_path.values()) else 0.0, waited[last])


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


def critical_path(intervals: list[tuple[float, float]]) -> int:
    """The number of items on the critical path: the longest chain of (start, end) intervals each of which started
    after the previous one had ended. Overlapping ones ran concurrently, so they count once. Greedy by end time
    gives the longest such chain."""
    count, last_end = 0, float("-inf")
    for start, finish in sorted(intervals, key=lambda i: i[1]):
        if start >= last_end:
            count, last_end = count + 1, finish
    return count


def calls_on_critical_path(records: list[dict]) -> int:
    return critical_path([(r["started"], r["finished"]) for r in records])


# -- the onboarding runs -----------------------------------------------------------------------------------------

def history(world: World, instance: str) -> list[dict]:
    return world.host_admin("GET", f"/runtime/webhooks/durabletask/instances/{instance}?showHistory=true"
                            ).get("historyEvents") or []


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_onboardings(world: World, tenant: str, label: str, runs: int, profile: profiles.Profile,
                    poll: float = POLL_S) -> list[dict]:
    """`runs` onboardings of new mailboxes, one after another, under `profile`; each with its requests and history."""
    profiles.apply(world, profile)
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
            results.append({"id": status["id"], "seconds": seconds, "records": records,
                            "events": history(world, status["id"]), "posted": posted, "seen": seen, "cpu": cpu})
    finally:
        profiles.clear(world)
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


def activities(run: dict) -> list[tuple[str, float, float]]:
    """(activity, scheduled, completed) from the history, seconds from the orchestration's start; steps that ran
    side by side overlap."""
    started = next((stamp(e["Timestamp"]) for e in run["events"] if e["EventType"] == "ExecutionStarted"), None)
    if started is None:
        return []
    return [(e.get("FunctionName") or "?", stamp(e["ScheduledTime"]) - started, stamp(e["Timestamp"]) - started)
            for e in run["events"] if e["EventType"] in ("TaskCompleted", "TaskFailed") and e.get("ScheduledTime")]


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

CHILD_HEAD = "import json, sys, time\nstarted = time.perf_counter()\nextra = {}\n"
CHILD_TAIL = """
seconds = extra.pop("seconds", time.perf_counter() - started)
hwm = extra.pop("hwmKiB", None) or next(int(line.split()[1]) for line in open("/proc/self/status")
                                        if line.startswith("VmHWM:"))
heavy = sorted(m for m in ("msgraph", "azure.keyvault.certificates", "azure.keyvault.keys", "azure.identity")
               if m in sys.modules)
print(json.dumps({"seconds": seconds, "hwmKiB": hwm, "heavy": heavy, **extra}))
"""
HWM = 'next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))'

# After the world has stopped (a quieter machine).
COLD = {
    "bare DFApp": "import azure.durable_functions as df\ndf.DFApp()",
    "function_app": "import function_app",
    # what the certificate activity imports lazily (shared/keyvault.py, credentials.py)
    "function_app + Key Vault activity imports": (
        "import function_app\nfrom azure.keyvault.certificates import CertificateClient\n"
        "from azure.identity import DefaultAzureCredential"),
}
NO_BYTECODE = ("bare DFApp", "function_app")

# While the world runs (the first Graph activity calls the simulator): the product's own path against msgraph's
# import. FIRST_GRAPH times what follows `import function_app` (reported as importSeconds): shared.graph's
# Directory, its client built, one real call (upsert_application; Graph's answer read as shared/graph_answers.py's
# Answer), as tests/integration/test_graph_cold_start.py's child; then, untimed, the rest of that test's calls, to
# count the msgraph model modules reading their answers loaded.
FIRST_GRAPH = """import function_app
extra["importSeconds"] = time.perf_counter() - started
started = time.perf_counter()
import asyncio
from azure.identity import ClientSecretCredential
from shared.graph import Directory, OffLoopCredential, graph_client
from shared.settings import Settings
a = json.loads(sys.argv[1])
async def first():
    credential = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"],
                                        authority=a["authorityHost"], disable_instance_discovery=True)
    directory = Directory(graph_client(Settings(graph_base_url=a["graphUrl"]), OffLoopCredential(credential)))
    app = await directory.upsert_application(a["uniqueName"], "certauth bench cold start", {})
    assert app["created"] and app["appId"], app
    extra["seconds"] = time.perf_counter() - started
    extra["hwmKiB"] = """ + HWM + """
    sp = await directory.upsert_service_principal(app["appId"])
    await directory.resource_roles(a["graphAppId"])
    await directory.app_role_assignments(sp["id"])
    await directory.application_by_unique_name(a["uniqueName"])
asyncio.run(first())
extra["models"] = sum(1 for m in sys.modules if m.startswith("msgraph.generated.models."))"""
FIRST_DESERIALIZATION = (
    "from msgraph.generated.models.service_principal import ServicePrincipal\n"
    "from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory\n"
    "JsonParseNodeFactory().get_root_parse_node('application/json', b'{\"id\": \"1\", \"appId\": \"2\"}')"
    ".get_object_value(ServicePrincipal)\n"
    "extra['models'] = sum(1 for m in sys.modules if m.startswith('msgraph.generated.models.'))")
GRAPH = {
    "first Graph activity (after import function_app)": FIRST_GRAPH,
    "import msgraph alone": "import msgraph",
    # what the product avoids: msgraph's model reading its first object imports the model modules of Entity's
    # subtypes (msgraph-sdk-python#909)
    "import msgraph + first deserialization through msgraph's model": "import msgraph\n" + FIRST_DESERIALIZATION,
}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def with_bytecode(env: dict) -> dict:
    """`env` with bytecode written and read in __pycache__ (this environment sets PYTHONDONTWRITEBYTECODE)."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def cold_child(name: str, code: str, env: dict, argv: tuple[str, ...] = (), flags: tuple[str, ...] = ()) -> dict:
    """One fresh interpreter in its own process group; what it printed."""
    proc = subprocess.Popen([sys.executable, *flags, "-c", CHILD_HEAD + code + CHILD_TAIL, *argv], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"cold start child '{name}' hung") from None
    if proc.returncode != 0:
        raise RuntimeError(f"cold start child '{name}' failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def cold_start(runs: int, env: dict, kinds: dict[str, str], argv=lambda name: (), bytecode: bool = True
               ) -> dict[str, list[dict]]:
    """Fresh interpreters, one of each kind per round (interleaved). With `bytecode`, one untimed warm-up child per
    kind first writes __pycache__; without, `-B` and an empty PYTHONPYCACHEPREFIX: every module compiles."""
    flags: tuple[str, ...] = ()
    empty = None
    if bytecode:
        env = with_bytecode(env)
        for name in kinds:
            cold_child(name, kinds[name], env, argv(name))
    else:
        empty = tempfile.mkdtemp(prefix="certauth-bench-nopyc-")
        env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        flags = ("-B",)
    samples: dict[str, list[dict]] = {name: [] for name in kinds}
    try:
        for round_ in range(runs):
            names = list(kinds) if round_ % 2 == 0 else list(reversed(kinds))
            for name in names:
                samples[name].append(cold_child(name, kinds[name], env, argv(name), flags))
    finally:
        if empty is not None:
            shutil.rmtree(empty, ignore_errors=True)
    return samples


def graph_cold_start(world: World, runs: int) -> dict[str, list[dict]]:
    """GRAPH's children against the running simulator (the home tenant's provisioner, a new app each)."""
    home, info = world.simulator.home, world.simulator.info

    def argv(name: str) -> tuple[str, ...]:
        if name not in GRAPH or GRAPH[name] is not FIRST_GRAPH:
            return ()
        return (json.dumps({"graphUrl": info["graphUrl"], "authorityHost": info["authorityHost"],
                            "tenantId": home["tenantId"], "clientId": home["provisioner"]["clientId"],
                            "clientSecret": home["provisioner"]["clientSecret"], "graphAppId": GRAPH_APP_ID,
                            "uniqueName": f"certauth-bench-cold-{uuid.uuid4().hex[:12]}"}),)

    # os.environ trusts the sandbox CA now (prepare_ca): httpx reads SSL_CERT_FILE, as on the host.
    return cold_start(runs, {**os.environ, "PYTHONPATH": str(REPO)}, GRAPH, argv)


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



def chains(runs: list[dict], profile: profiles.Profile, creation_s: float) -> list[Chain]:
    return [chain(r["records"], profile, creation_s) for r in runs]


def hop_note(runs: list[dict], hop_ms: float) -> str:
    """How many activities ran one after another, and what their queue hops cost on the Azure Storage provider."""
    spans = [activities(r) for r in runs]
    sequential = int(median([critical_path([(s, e) for _, s, e in one]) for one in spans]))
    total = int(median([len(one) for one in spans]))
    hops = 2 * sequential + 1   # the start, then each activity's work item and its result
    return (f"{total} activities, {sequential} one after another: {hops} queue hops on the critical path "
            f"(the start, then each activity's work item and result) = {hops * hop_ms / 1000:.1f} s at "
            f"{hop_ms:.0f} ms per hop")


def describe(chain_: Chain, profile: profiles.Profile) -> str:
    parts = [f"{chain_.seconds - chain_.creation_s - chain_.replication_s:.2f} s of calls"]
    if chain_.creation_s:
        parts.append(f"{chain_.creation_s * 1000:.0f} ms certificate creation")
    if chain_.replication_s:
        parts.append(f"{chain_.replication_s:.1f} s replication wait")
    return " + ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="onboardings per flat setting (latency, none)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--realistic-runs", type=int, default=3, help="onboardings under the realistic profile")
    parser.add_argument("--cold-runs", type=int, default=7)
    args = parser.parse_args(argv)
    latency = args.latency_ms
    flat, realistic = profiles.flat(latency), profiles.realistic()
    began = time.perf_counter()
    # SIGTERM unwinds like Ctrl-C, so the world's exit stack stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    child_env = {**os.environ, "PYTHONPATH": str(REPO)}  # cold start: the environment as given, no sandbox CA
    state_dir = prepare_ca()  # before anything imports aiohttp
    none = profiles.Profile(name="none")
    with World(tenants=2, state_dir=state_dir) as world:
        tenant = world.customers[0]["tenantId"]
        world.consent(tenant)
        throttles = world.durable()
        warm = run_onboardings(world, tenant, "warmup", 1, none)[0]
        slow = run_onboardings(world, tenant, "latency", args.runs, flat)
        fast = run_onboardings(world, tenant, "nolatency", args.runs, none)
        # The status polling itself loads the host and Azurite (2 shared cores): the same with a 250 ms poll.
        lazy = run_onboardings(world, tenant, "slowpoll", max(2, args.runs // 2), flat, poll=0.25)
        real = run_onboardings(world, tenant, "realistic", args.realistic_runs, realistic) \
            if args.realistic_runs else []
        creation = certificate_creation_ms(world)
        polls = poll_cost_ms(world, fast[-1]["id"])
        graph_cold = graph_cold_start(world, args.cold_runs)  # the simulator idle, no latency
    cold = cold_start(args.cold_runs, child_env, COLD)  # after the world has stopped: a quieter machine
    cold_nopyc = cold_start(args.cold_runs, child_env, {k: COLD[k] for k in NO_BYTECODE}, bytecode=False)

    # -- 1. latency
    walls = [r["seconds"] for r in slow]
    floor = median([r["seconds"] for r in fast])
    wall = median(walls)
    creation_ms = median(creation)
    total_calls = int(median([len(r["records"]) for r in slow]))
    calls = int(median([calls_on_critical_path(r["records"]) for r in slow]))
    flat_chains = chains(slow, flat, creation_ms / 1000)
    ideal = median([c.seconds for c in flat_chains])
    levels = int(median([c.levels for c in flat_chains]))
    bound = ideal + floor
    print(f"\n1. onboarding wall time, {latency:.0f} ms per Azure call, {args.runs} onboardings "
          f"(POST -> status Completed, polled every {POLL_S * 1000:.0f} ms)")
    print(f"   wall: median {wall:.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); warm-up (first, lazy imports) "
          f"{warm['seconds']:.2f} s")
    print(f"   floor (the same onboarding with no latency, {args.runs} runs): median {floor:.2f} s "
          f"(min {min(r['seconds'] for r in fast):.2f}, max {max(r['seconds'] for r in fast):.2f})")
    print(f"   certificate creation (RSA 2048 self-signed, simulator, no latency): median {creation_ms:.0f} ms "
          f"({', '.join(f'{c:.0f}' for c in creation)})")
    print(f"   data-dependency chain: IDEAL_CHAIN = {levels} calls x {latency:.0f} ms + {creation_ms:.0f} ms = "
          f"{ideal:.2f} s")
    print(textwrap.indent(textwrap.fill(" -> ".join(flat_chains[0].path), 110), "     "))
    print(f"   ratio vs data-dependency bound with floor: {wall / bound:.2f} (wall {wall:.2f} s / bound {bound:.2f} s "
          f"= {levels} x {latency:.0f} ms + {creation_ms:.0f} ms + floor {floor:.2f} s; aim <= 1.3: "
          f"{'met' if wall / bound <= 1.3 else 'NOT met'})")
    print(f"   ratio vs data-dependency bound without the floor: {wall / ideal:.2f}; latency added by "
          f"{latency:.0f} ms/call: {wall - floor:.2f} s = {(wall - floor) / (ideal or 1):.2f}x the chain's")
    print(f"   critical path as implemented: {calls} of the {total_calls} calls one after another (each issued after "
          f"the previous answered; concurrent calls count once) = {calls * latency / 1000:.2f} s of latency")
    print(f"   {hop_note(slow, profiles.HOP_MS)} (not in the sandbox's own floor)")
    print(f"   host throttles: maxConcurrentActivityFunctions {throttles['maxConcurrentActivityFunctions']}, "
          f"maxConcurrentOrchestratorFunctions {throttles['maxConcurrentOrchestratorFunctions']}")

    rows = []
    by_name: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for run in slow:   # the same activity in every run: by name and occurrence (completion order varies)
        seen: Counter = Counter()
        for name, start, end in sorted(activities(run), key=lambda a: a[1]):
            by_name.setdefault((name, seen[name]), []).append((start, end))
            seen[name] += 1
    spans = [v for v in by_name.values() if len(v) == len(slow)]
    if spans:
        for (name, _), samples in sorted(by_name.items(), key=lambda kv: median([s for s, _ in kv[1]])):
            start, end = median([s for s, _ in samples]) * 1000, median([e for _, e in samples]) * 1000
            rows.append((name, f"{start:.0f}", f"{end:.0f}", f"{end - start:.0f}"))
        print(f"\n   activities (from the orchestration history, ms after it started, median of {len(slow)}; "
              "overlapping ones ran side by side; each span includes its host hops):")
        print(textwrap.indent(table(rows, ("activity", "scheduled", "completed", "span")), "   "))
    edge = [e for e in (edges(r) for r in slow) if e]
    if edge:
        print(f"   POST -> orchestration started: {median([e[0] for e in edge]):.0f} ms; "
              f"orchestration completed -> client sees Completed: {median([e[1] for e in edge]):.0f} ms")

    print("\n   CPU used per onboarding (median s; all processes share the machine's cores):")
    rows = []
    for label, runs_ in ((f"{latency:.0f} ms latency", slow), ("no latency (floor)", fast), ("realistic", real)):
        if not runs_:
            continue
        cpu = {name: median([r["cpu"][name] for r in runs_]) for name in runs_[0]["cpu"]}
        rows.append((label, *(f"{cpu[n]:.2f}" for n in ("host", "simulator", "azurite", "client")),
                     f"{sum(cpu.values()):.2f}", f"{median([r['seconds'] for r in runs_]):.2f}"))
    print(textwrap.indent(table(rows, ("run", "host", "simulator", "azurite", "bench client", "sum", "wall")), "   "))
    spans_ = [orchestration_seconds(r) for r in slow]
    lazy_spans = [orchestration_seconds(r) for r in lazy]
    lazy_ratio = None
    if all(spans_) and all(lazy_spans):
        lazy_ratio = median(lazy_spans) / bound
        print(f"   orchestration span (history) with the status polled every {POLL_S * 1000:.0f} ms: "
              f"{median(spans_):.2f} s; every 250 ms: {median(lazy_spans):.2f} s (n={len(lazy)}) "
              f"-> polling load costs {(median(spans_) - median(lazy_spans)) * 1000:+.0f} ms")
    share = (polls["host"] + polls["azurite"]) / (POLL_S * 1000)
    print(f"   one status GET: {polls['wall']:.1f} ms wall, {polls['host']:.1f} ms host CPU + "
          f"{polls['azurite']:.1f} ms Azurite CPU; polled every {POLL_S * 1000:.0f} ms that is {share:.0%} of a core")

    # -- 1b. realistic profile
    real_wall = real_bound = None
    if real:
        real_walls = [r["seconds"] for r in real]
        real_wall = median(real_walls)
        creation_real = max(realistic.creation_seconds, creation_ms / 1000)
        real_chains = chains(real, realistic, creation_real)
        real_ideal = median([c.seconds for c in real_chains])
        real_bound = real_ideal + floor
        print(f"\n1b. realistic profile (bench/_profiles.py, sources in bench/README.md), {len(real)} onboardings")
        print(f"   token {profiles.TOKEN_MS} ms, managed identity {profiles.IDENTITY_MS} ms, Graph GET "
              f"{profiles.GRAPH_READ_MS} ms / write {profiles.GRAPH_WRITE_MS} ms, Key Vault {profiles.VAULT_MS} ms, "
              f"Exchange {profiles.EXCHANGE_MS} ms; certificate creation {profiles.CREATION_S:g} s; service "
              f"principal replication {profiles.SP_REPLICATION_S:g} s; Durable queue hop {profiles.HOP_MS} ms")
        print(f"   wall: median {real_wall:.2f} s (min {min(real_walls):.2f}, max {max(real_walls):.2f})")
        print(f"   data-dependency chain: {real_ideal:.2f} s ({describe(real_chains[0], realistic)})")
        print(textwrap.indent(textwrap.fill(" -> ".join(real_chains[0].path), 110), "     "))
        print(f"   ratio vs data-dependency bound with floor (realistic profile): {real_wall / real_bound:.2f} "
              f"(wall {real_wall:.2f} s / bound {real_bound:.2f} s = chain {real_ideal:.2f} s + floor {floor:.2f} s)")
        print(f"   {hop_note(real, profiles.HOP_MS)} (inside the wall time here)")
        retries = Counter(e.get("FunctionName") for r in real for e in r["events"] if e["EventType"] == "TaskFailed")
        timers = sum(1 for r in real for e in r["events"] if e["EventType"] == "TimerFired")
        statuses = Counter(rec["status"] for r in real for rec in r["records"] if rec["status"] >= 400)
        print(f"   waits seen: durable timers fired {timers / len(real):g} per onboarding; failed activity attempts "
              f"{dict(retries) or 'none'}; error answers {dict(sorted(statuses.items())) or 'none'}")

    # -- 2. requests
    by_origin = [Counter(r["origin"] for r in run["records"]) for run in slow]
    by_pattern = Counter()
    for run in slow:
        by_pattern.update(f"{r['origin']:<8} {pattern(r)}" for r in run["records"])
    print(f"\n2. Azure requests per onboarding (median over {len(slow)}; warm-up onboarding: {len(warm['records'])})")
    origins = ("graph", "vault", "login", "identity", "exchange")
    print("   " + ", ".join(f"{o} {median([c[o] for c in by_origin]):g}" for o in origins)
          + f", total {total_calls}")
    statuses = Counter(r["status"] for run in slow for r in run["records"])
    print(f"   statuses: {dict(sorted(statuses.items()))}")
    used = {(r["path"], r["started"]) for run in slow for _, found in ideal_calls(run["records"]) for r in found}
    rows = [(name, f"{count / len(slow):g}") for name, count in sorted(by_pattern.items())]
    print(textwrap.indent(table(rows, ("origin   method path", "per onboarding")), "   "))
    extra = Counter(f"{r['origin']} {pattern(r)}" for run in slow for r in run["records"]
                    if (r["path"], r["started"]) not in used)
    print("   not on the data-dependency chain (redundant, or needed only as implemented): "
          + (", ".join(f"{k} x{v / len(slow):g}" for k, v in sorted(extra.items())) or "none"))

    # -- 3. cold start
    print(f"\n3. cold start (fresh interpreters: import wall time and peak RSS VmHWM, median of {args.cold_runs}, "
          "interleaved; bytecode written by one untimed warm-up child per kind)")

    def rows_of(samples: dict[str, list[dict]], base_name: str) -> list[tuple]:
        base = samples[base_name]
        base_s, base_kib = median([s["seconds"] for s in base]), median([s["hwmKiB"] for s in base])
        rows = []
        for name, runs_ in samples.items():
            seconds, kib = median([s["seconds"] for s in runs_]), median([s["hwmKiB"] for s in runs_])
            models = median([s["models"] for s in runs_]) if "models" in runs_[0] else None
            rows.append((name, f"{seconds * 1000:.0f} ms", f"{seconds / base_s:.2f}x", f"{kib / 1024:.1f} MiB",
                         f"{kib / base_kib:.2f}x", ",".join(runs_[0]["heavy"]) or "-",
                         "-" if models is None else f"{models:g}"))
        return rows

    headers = ("child", "time", "vs base", "peak RSS", "vs base", "heavy SDKs loaded", "msgraph models")
    print(textwrap.indent(table(rows_of(cold, "bare DFApp"), headers), "   "))
    print("   no bytecode (-B, PYTHONDONTWRITEBYTECODE=1, an empty PYTHONPYCACHEPREFIX: every module compiles):")
    print(textwrap.indent(table(rows_of(cold_nopyc, "bare DFApp"), headers), "   "))
    print("   first Graph activity (while the world runs; base: import msgraph alone; the product's child times what "
          "follows its `import function_app`: the client built and one upsert_application against the simulator, "
          "token included; peak RSS at that point; models counted after the test's remaining calls):")
    print(textwrap.indent(table(rows_of(graph_cold, "import msgraph alone"), headers), "   "))

    fa = cold["function_app"]
    fa_s, fa_kib = median([s["seconds"] for s in fa]), median([s["hwmKiB"] for s in fa])
    base_s = median([s["seconds"] for s in cold["bare DFApp"]])
    base_kib = median([s["hwmKiB"] for s in cold["bare DFApp"]])
    nfa_s = median([s["seconds"] for s in cold_nopyc["function_app"]])
    nfa_kib = median([s["hwmKiB"] for s in cold_nopyc["function_app"]])
    nbase_s = median([s["seconds"] for s in cold_nopyc["bare DFApp"]])
    nbase_kib = median([s["hwmKiB"] for s in cold_nopyc["bare DFApp"]])
    first = graph_cold["first Graph activity (after import function_app)"]
    graph_s = median([s["seconds"] for s in first])
    graph_kib = median([s["hwmKiB"] for s in first])
    graph_import_s = median([s["importSeconds"] for s in first])
    msgraph_s = median([s["seconds"] for s in graph_cold["import msgraph alone"]]) or float("nan")
    avoided = graph_cold["import msgraph + first deserialization through msgraph's model"]
    avoided_s = median([s["seconds"] for s in avoided])
    print(f"   first Graph activity {graph_s * 1000:.0f} ms = {graph_s / msgraph_s:.2f}x import msgraph "
          f"({msgraph_s * 1000:.0f} ms; aim <= ~2x: {'met' if graph_s / msgraph_s <= 2 else 'NOT met'}); "
          f"msgraph's model would cost {avoided_s * 1000:.0f} ms ({avoided_s / msgraph_s:.2f}x); its child's "
          f"import function_app took {graph_import_s * 1000:.0f} ms")

    print("\nsummary")
    summary = [
        (f"onboarding wall, {latency:.0f} ms/call (median)", f"{wall:.2f} s"),
        ("floor: the same onboarding, no latency (median)", f"{floor:.2f} s"),
        (f"data-dependency chain ({levels} calls x {latency:.0f} ms + certificate creation)", f"{ideal:.2f} s"),
        ("ratio vs data-dependency bound with floor (aim <= 1.3)", f"{wall / bound:.2f}"),
        (f"critical path as implemented ({calls} of {total_calls} calls)", f"{calls * latency / 1000:.2f} s"),
        ("ratio, orchestration span with 250 ms status polling",
         f"{lazy_ratio:.2f}" if lazy_ratio is not None else "n/a"),
    ]
    if real:
        summary += [("onboarding wall, realistic profile (median)", f"{real_wall:.2f} s"),
                    ("ratio vs data-dependency bound with floor, realistic profile", f"{real_wall / real_bound:.2f}")]
    summary += [
        ("requests per onboarding graph/vault/login/identity/exchange",
         "/".join(f"{median([c[o] for c in by_origin]):g}" for o in origins)),
        ("cold import function_app vs bare DFApp", f"{fa_s * 1000:.0f} vs {base_s * 1000:.0f} ms "
                                                   f"({fa_s / base_s:.2f}x)"),
        ("peak RSS function_app vs bare DFApp", f"{fa_kib / 1024:.1f} vs {base_kib / 1024:.1f} MiB "
                                                f"({fa_kib / base_kib:.2f}x)"),
        ("cold import, no bytecode, function_app vs bare DFApp", f"{nfa_s * 1000:.0f} vs {nbase_s * 1000:.0f} ms "
                                                                 f"({nfa_s / nbase_s:.2f}x)"),
        ("peak RSS, no bytecode, function_app vs bare DFApp", f"{nfa_kib / 1024:.1f} vs {nbase_kib / 1024:.1f} MiB "
                                                              f"({nfa_kib / nbase_kib:.2f}x)"),
        ("first Graph activity vs import msgraph (aim <= ~2x)", f"{graph_s * 1000:.0f} vs {msgraph_s * 1000:.0f} ms "
                                                                f"({graph_s / msgraph_s:.2f}x), "
                                                                f"{graph_kib / 1024:.1f} MiB"),
        ("import msgraph + first deserialization through its model (avoided)",
         f"{avoided_s * 1000:.0f} ms ({avoided_s / msgraph_s:.2f}x import msgraph)"),
    ]
    print(table(summary, ("measure", "value")))
    print(f"(bench ran {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
