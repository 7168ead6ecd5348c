"""The offline world for benchmarks that run the product: Azurite + the Azure simulator + the product's
Function App on a sandbox host, wired the way ``make up`` wires them. Stands alone (no tests/ imports).

    with World(tenants=2) as world:          # everything it started is stopped on exit, by process group
        world.consent(customer_tenant_id)
        status, seconds = world.onboard({"tenantId": ..., "serviceMailbox": ...})
        world.set_hop_delay(100)              # the Durable backend's per-hop cost (sandbox host)
        ids = [world.start(body)[0] for body in bodies]; world.wait_all(ids)   # many at once

Call :func:`prepare_ca` before anything imports aiohttp (the SDKs build their SSL context from
``SSL_CERT_FILE`` when they are imported), as ``tests/conftest.py`` does.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from sandbox import faketime
from sandbox.process import stop_group

REPO = Path(__file__).resolve().parent.parent
TERMINAL = {"Completed", "Failed", "Terminated"}


def prepare_ca() -> Path:
    """Mint the sandbox CA in a fresh directory and make this process trust it (before aiohttp is imported).
    Returns the directory (the simulator reuses the CA from it); it is removed by :class:`World`."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from sandbox.azure.tls import BUNDLE, ensure_ca

    state = Path(tempfile.mkdtemp(prefix="certauth-bench-"))
    ensure_ca(state)
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(state / BUNDLE)
    return state


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of one process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:          # fields after "(comm)": state ppid pgrp ... utime(12) stime(13)
            total += int(fields[11]) + int(fields[12])
    return total / tick


class ProductHost:
    """``python -m sandbox.host`` serving ``function_app:app`` in its own process group."""

    def __init__(self, settings: dict[str, str], clock_url: str, ca_bundle: str, clock_file: str) -> None:
        self.settings = settings
        self.clock_file = clock_file
        self.args = ["--port", "0", "--task-hub", f"Bench{uuid.uuid4().hex[:10]}", "--clock-url", clock_url,
                     "--ca-bundle", ca_bundle]
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.stderr_tail: list[str] = []

    def start(self, timeout: float = 60) -> ProductHost:
        # The product's wall clock follows the sandbox clock, as in `make up` (sandbox/faketime.py).
        env = faketime.environment(self.clock_file, {**os.environ, **self.settings, "PYTHONPATH": str(REPO),
                                                     "SANDBOX_HOST_LOG_LEVEL": "WARNING"})
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox.host", *self.args], cwd=REPO, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        lines: queue.Queue = queue.Queue()

        def pump_out() -> None:
            for line in self.proc.stdout:
                if line.strip().startswith("{"):
                    lines.put(line)
            lines.put(None)

        def pump_err() -> None:
            for line in self.proc.stderr:
                self.stderr_tail = [*self.stderr_tail[-49:], line.rstrip()]

        threading.Thread(target=pump_out, daemon=True).start()
        threading.Thread(target=pump_err, daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.stop()
            raise RuntimeError("the sandbox host did not start:\n" + "\n".join(self.stderr_tail[-20:]))
        self.info = json.loads(line)
        return self

    def stop(self) -> None:
        """SIGTERM the host's process group; SIGKILL if it lingers."""
        stop_group(self.proc)

    @property
    def base_url(self) -> str:
        return self.info["baseUrl"]


class World:
    """Azurite, the simulator (``tenants`` tenants; the first is home) and the product host; a context manager
    that stops everything it started, in reverse order, even when a start fails."""

    def __init__(self, tenants: int = 2, state_dir: Path | None = None) -> None:
        self.tenants = tenants
        self.state_dir = state_dir  # from prepare_ca(); made here when None
        self._stack = ExitStack()
        self.azurite = self.simulator = self.host = None
        self._session = None

    def __enter__(self) -> World:
        try:
            if self.state_dir is None:
                self.state_dir = prepare_ca()
            self._stack.callback(shutil.rmtree, self.state_dir, True)
            from sandbox.azure import Simulator
            from sandbox.azurite import Azurite
            from sandbox.up import host_settings

            self.azurite = self._stack.enter_context(Azurite())
            # The simulator fronts Azurite with its tables / taskhub proxies, and host_settings points the
            # product's state and the host's task hub at them (as `make up` does).
            self.simulator = self._stack.enter_context(
                Simulator("--tenants", str(self.tenants), state_dir=self.state_dir,
                          tables_upstream=self.azurite.connection_string))
            settings = host_settings({"connectionString": self.azurite.connection_string}, self.simulator.info)
            self.host = ProductHost(settings, self.simulator.info["clockUrl"], self.simulator.info["caBundle"],
                                    self.simulator.info["clockFile"])
            self._stack.callback(self.host.stop)
            self.host.start()
            import requests

            self._session = requests.Session()
            self._session.headers["x-functions-key"] = self.host.info["functionKey"]
            self._stack.callback(self._session.close)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each service (process group) and by this process."""
        return {"host": group_cpu_seconds(self.host.proc.pid),
                "simulator": group_cpu_seconds(self.simulator.process.pid),
                "azurite": group_cpu_seconds(self.azurite.pid), "client": time.process_time()}

    # -- tenants ----------------------------------------------------------------------------------------
    @property
    def customers(self) -> list[dict]:
        return [t for t in self.simulator.info["tenants"] if not t["home"]]

    def consent(self, tenant_id: str) -> str:
        """The customer's administrator consents to the product's onboarding app (the admin-consent
        redirect an onboarding link leads to). Returns the redirect location."""
        return self.simulator.consent(tenant_id, state="bench")

    # -- the host --------------------------------------------------------------------------------------
    def host_admin(self, method: str, path: str, **kwargs):
        """A call to the host's admin or durable webhook routes (master key)."""
        response = self._session.request(method, f"{self.host.base_url}{path}", timeout=30,
                                         headers={"x-functions-key": self.host.info["adminKey"]}, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_hop_delay(self, milliseconds: float) -> dict:
        """The Durable backend's per-hop cost on the sandbox host (sandbox/host/engine.py); its throttles too."""
        return self.host_admin("PUT", "/admin/sandbox/durable", json={"hopDelayMs": milliseconds})

    def durable(self) -> dict:
        """The host's Durable throttles and per-hop cost."""
        return self.host_admin("GET", "/admin/sandbox/durable")

    def instances(self) -> dict[str, dict]:
        """Every orchestration instance's status, by id (the durable webhook's list, one page)."""
        return {s["instanceId"]: s for s in self.host_admin("GET", "/runtime/webhooks/durabletask/instances"
                                                                   "?top=100000")}

    # -- the product's API -------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs):
        return self._session.request(method, f"{self.host.base_url}/api{path}", timeout=30, **kwargs)

    def start(self, body: dict) -> tuple[str, float]:
        """POST /api/onboardings; (the onboarding id, when it was posted: wall-clock epoch seconds)."""
        posted = time.time()
        response = self.api("POST", "/onboardings", json=body)
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/onboardings: {response.status_code} {response.text}")
        return response.json()["id"], posted

    def wait_all(self, ids: list[str], poll: float = 0.25, timeout: float = 300) -> dict[str, dict]:
        """Poll the instance list until every one of `ids` is terminal; their last statuses, by id."""
        deadline = time.perf_counter() + timeout
        wanted = set(ids)
        while time.perf_counter() < deadline:
            seen = {i: s for i, s in self.instances().items() if i in wanted}
            if len(seen) == len(wanted) and all(s["runtimeStatus"] in TERMINAL for s in seen.values()):
                return seen
            time.sleep(poll)
        raise RuntimeError(f"{len(wanted)} onboardings did not all finish within {timeout} s:\n"
                           + "\n".join(self.host.stderr_tail[-20:]))

    def onboard(self, body: dict, poll: float = 0.02, timeout: float = 60) -> tuple[dict, float]:
        """POST /api/onboardings and poll its status until it ends; returns (status, seconds from POST to end)."""
        started = time.perf_counter()
        response = self.api("POST", "/onboardings", json=body)
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/onboardings: {response.status_code} {response.text}")
        onboarding = response.json()["id"]
        deadline = started + timeout
        while time.perf_counter() < deadline:
            status = self.api("GET", f"/onboardings/{onboarding}").json()
            if status.get("runtimeStatus") in TERMINAL:
                return status, time.perf_counter() - started
            time.sleep(poll)
        raise RuntimeError(f"onboarding {onboarding} did not finish within {timeout} s:\n"
                           + "\n".join(self.host.stderr_tail[-20:]))
