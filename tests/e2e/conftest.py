"""Fixtures for end-to-end tests through the sandbox Functions host (``python -m sandbox.host``).

The host runs as a subprocess in its own process group, serving ``tests/host_app`` (or the product's
app) against the session's Azurite.  Tests stop only the processes they started, by process group.
Durable timers are driven by advancing the host's sandbox clock, never by sleeping.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient

from sandbox.process import kill_group, stop_group
from shared.keyvault import certificate_name
from shared.onboarding import application_unique_name
from shared.state import onboarding_id

REPO = Path(__file__).resolve().parents[2]
HOST_APP = REPO / "tests" / "host_app"
TERMINAL = {"Completed", "Failed", "Terminated"}


def free_port() -> int:
    """A loopback port nothing listens on now (the host binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HostProcess:
    """One ``python -m sandbox.host`` child process."""

    def __init__(self, connection_string: str, *, app_dir: Path = HOST_APP, task_hub: str | None = None,
                 extra_args: list[str] | None = None, keys_file: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.connection_string = connection_string
        self.app_dir = app_dir
        self.task_hub = task_hub or f"T{uuid.uuid4().hex[:12]}"
        self.extra_args = extra_args or []
        self.keys_file = keys_file
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.stderr_lines: list[str] = []

    port = 0  # any free port, unless a subclass chose one

    def launch(self, timeout: float = 30) -> HostProcess:
        env = {**os.environ, "AzureWebJobsStorage": self.connection_string, "PYTHONPATH": str(REPO),
               "SANDBOX_HOST_LOG_LEVEL": "WARNING", **self.env}
        args = [sys.executable, "-m", "sandbox.host", "--port", str(self.port), "--task-hub", self.task_hub,
                *self.extra_args]
        if self.keys_file:
            args += ["--keys-file", self.keys_file]
        self.proc = subprocess.Popen(args, cwd=self.app_dir, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump_stdout, args=(self.proc, lines), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self.proc,), daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise RuntimeError("sandbox host did not become ready:\n"
                               + "\n".join(self.stderr_lines[-30:])) from None
        if line is None:
            self.proc.wait(timeout=5)
            raise RuntimeError(f"sandbox host exited ({self.proc.returncode}):\n" + "\n".join(self.stderr_lines[-30:]))
        self.info = json.loads(line)
        return self

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:
            if line.strip().startswith("{"):
                lines.put(line)
        lines.put(None)

    def _pump_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self.stderr_lines.append(line.rstrip())

    @property
    def base_url(self) -> str:
        return self.info["baseUrl"]

    @property
    def function_key(self) -> str:
        return self.info["functionKey"]

    @property
    def admin_key(self) -> str:
        return self.info["adminKey"]

    def stop(self) -> int | None:
        """SIGTERM to the host's process group; SIGKILL if it does not stop."""
        return stop_group(self.proc)

    def kill(self) -> None:
        """kill -9 (the whole group: the host and anything it started)."""
        kill_group(self.proc)

    # ---- HTTP helpers ---------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def call(self, method: str, path: str, *, key: str | None = "function", **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key == "function":
            headers["x-functions-key"] = self.function_key
        elif key == "admin":
            headers["x-functions-key"] = self.admin_key
        elif key:
            headers["x-functions-key"] = key
        return requests.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def advance(self, seconds: float) -> dict:
        response = requests.post(self.url("/_sandbox/clock"), json={"advanceSeconds": seconds}, timeout=10)
        response.raise_for_status()
        return response.json()

    def now(self) -> dict:
        return requests.get(self.url("/_sandbox/clock"), timeout=10).json()

    def start(self, orchestrator: str, body: Any = None, instance_id: str | None = None) -> dict:
        """Start through the test app's HTTP starter (the Microsoft sample); return the 202 payload."""
        path = f"/api/start/{orchestrator}/{instance_id}" if instance_id else f"/api/orchestrators/{orchestrator}"
        response = self.call("POST", path, data=json.dumps(body) if body is not None else None)
        assert response.status_code == 202, response.text
        return response.json()

    def status(self, instance_id: str, history: bool = False) -> dict | None:
        query = "?showHistory=true&showHistoryOutput=true" if history else ""
        response = self.call("GET", f"/runtime/webhooks/durabletask/instances/{instance_id}{query}", key="admin")
        if response.status_code == 404:
            return None
        return response.json()

    def wait(self, instance_id: str, until: Callable[[dict], bool] | None = None, timeout: float = 20,
             advance: float | None = None, history: bool = False) -> dict:
        """Poll the status until `until` (default: terminal); optionally advance the clock between polls."""
        until = until or (lambda status: status["runtimeStatus"] in TERMINAL)
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.status(instance_id, history=history)
            if status is not None and until(status):
                return status
            if advance:
                self.advance(advance)
            time.sleep(0.02)
        raise AssertionError(f"instance {instance_id} did not reach the expected state; last status: {status}\n"
                             + "\n".join(self.stderr_lines[-20:]))


@pytest.fixture(scope="session")
def storage_connection(azurite) -> str:
    return azurite.connection_string


@pytest.fixture(scope="module")
def host(storage_connection) -> HostProcess:
    """A sandbox host serving tests/host_app, shared by the tests of one module."""
    process = HostProcess(storage_connection).launch()
    yield process
    code = process.stop()
    assert code == 0, "the host did not stop cleanly on SIGTERM:\n" + "\n".join(process.stderr_lines[-20:])


@pytest.fixture
def make_host(storage_connection):
    """Factory for extra hosts (restarts, other options); all are stopped at the end of the test."""
    started: list[HostProcess] = []

    def factory(**kwargs) -> HostProcess:
        process = HostProcess(storage_connection, **kwargs)
        started.append(process)
        return process

    yield factory
    for process in started:
        process.stop()


# -- the product (function_app) on the sandbox host, wired to the simulator as `make up` wires it -------

TERMINAL_ONBOARDING = {"Completed", "Failed", "Terminated"}


class Product(HostProcess):
    """The product's Function App on a sandbox host, with its own client helpers."""

    def __init__(self, simulator, connection_string: str, env: dict[str, str] | None = None) -> None:
        from sandbox.up import host_settings

        # The product's state (TABLES_CONNECTION_STRING) and the host's task hub (AzureWebJobsStorage) go
        # through the simulator's `tables` / `taskhub` proxies in front of this Azurite: fault rules and hold
        # points reach Table Storage. `connection_string` stays Azurite itself, for tests that read state.
        settings = host_settings({"connectionString": connection_string}, simulator.info)
        assert "TABLES_CONNECTION_STRING" in settings, "the session simulator serves no tables proxy"
        settings["SANDBOX_HOST_LOG_LEVEL"] = "INFO"  # the product's logs are scanned for secrets
        # The product builds links, redirect URIs and pages from CERTAUTH_PUBLIC_BASE_URL, never from the Host
        # header: the host gets a port chosen here, so the setting can name it before the host starts.
        self.port = free_port()
        settings["CERTAUTH_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{self.port}"
        settings.update(env or {})  # extra application settings (e.g. CERTAUTH_ALLOW_EXPORTABLE_KEYS)
        super().__init__(connection_string, app_dir=REPO, env=settings,
                         extra_args=["--clock-url", simulator.info["clockUrl"],
                                     "--ca-bundle", simulator.info["caBundle"]])
        self.simulator = simulator
        self.responses: list[str] = []  # every body the product answered (scanned for secrets)
        self.post_answers: list[str] = []  # the bodies of POST /api/onboardings: the only place for a status URL

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the product's API with the function key; keep the body."""
        response = self.call(method, f"/api{path}", **kwargs)
        self.responses.append(response.text)
        if method == "POST" and path == "/onboardings":
            self.post_answers.append(response.text)
        return response

    def onboard(self, body: dict) -> dict:
        """POST /api/onboardings; the 202 body."""
        response = self.api("POST", "/onboardings", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    def onboarding(self, onboarding_id: str) -> dict:
        """GET /api/onboardings/{id}: 202 while it can progress, 200 once terminal (the README's table)."""
        response = self.api("GET", f"/onboardings/{onboarding_id}")
        assert response.status_code in (200, 202), response.text
        body = response.json()
        terminal = body["status"] in ("completed", "failed", "expired", "retired")
        assert response.status_code == (200 if terminal else 202), (response.status_code, body["status"])
        return body

    def history(self, onboarding_id: str) -> dict:
        """The orchestration's status with history, inputs and outputs (the durable admin API)."""
        document = self.status(onboarding_id, history=True)
        self.responses.append(json.dumps(document))
        return document

    def finish(self, onboarding_id: str, timeout: float = 90) -> dict:
        """Follow the status until the onboarding ends. Whenever the orchestration waits on a durable timer
        (a retry's backoff), move the sandbox clock to that timer: no wall-clock sleeping."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.onboarding(onboarding_id)
            if status["runtimeStatus"] in TERMINAL_ONBOARDING:
                return status
            document = self.status(onboarding_id, history=True) or {}
            events = document.get("historyEvents") or []
            fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
            pending = [e for e in events if e["EventType"] == "TimerCreated" and e.get("EventId") not in fired]
            if pending:
                now = datetime.fromisoformat(self.simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
                due = max(datetime.fromisoformat(e["FireAt"].replace("Z", "+00:00")) for e in pending)
                if due > now:
                    self.simulator.advance_clock((due - now).total_seconds() + 0.5)
            time.sleep(0.05)  # polling the status, not waiting for time to pass
        raise AssertionError(f"onboarding {onboarding_id} did not finish:\n" + "\n".join(self.stderr_lines[-30:]))


@pytest.fixture(scope="module")
def product(simulator, azurite):
    """The product on a sandbox host for one test module; stopped (by process group) at its end."""
    process = Product(simulator, azurite.connection_string).launch()
    yield process
    process.stop()


# -- what exists for one onboarding ----------------------------------------------------------------------

GRAPH_PERMISSIONS = {"Contacts.ReadWrite", "User.Read.All", "Organization.Read.All"}
# The default profile (shared/catalog.py): Graph for contacts, Exchange Online PowerShell; no EWS.
EXCHANGE_PERMISSIONS = {"Exchange.ManageAsApp"}
ALL_PERMISSIONS = GRAPH_PERMISSIONS | EXCHANGE_PERMISSIONS


@pytest.fixture(scope="module")
def vault(simulator):
    """Key Vault as an operator sees it (the home provisioner), to count certificate versions."""
    home = simulator.home
    credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                        home["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    client = CertificateClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False)
    yield client
    client.close()


def objects_of(simulator, vault, tenant_id: str, mailbox: str) -> dict:
    """Everything that exists for one (tenant, mailbox) onboarding, counted."""
    oid = onboarding_id(tenant_id, mailbox)
    state = simulator.tenant_state(tenant_id)
    apps = [a for a in state["applications"] if a.get("uniqueName") == application_unique_name(oid)]
    app_ids = {a["appId"] for a in apps}
    sps = [s for s in state["servicePrincipals"] if s["appId"] in app_ids]
    sp_ids = {s["id"] for s in sps}
    assignments = [a for a in state["appRoleAssignments"] if a["principalId"] in sp_ids]
    roles = [r for r in state["roleAssignments"] if r["principalId"] in sp_ids]
    versions = list(vault.list_properties_of_certificate_versions(certificate_name(oid))) if apps else []
    return {"applications": len(apps), "keys": sum(len(a["keyCredentials"]) for a in apps),
            "servicePrincipals": len(sps), "appRoleAssignments": len(assignments),
            "roleAssignments": len(roles), "certificateVersions": len(versions)}


ONE_OF_EACH = {"applications": 1, "keys": 1, "servicePrincipals": 1, "appRoleAssignments": len(ALL_PERMISSIONS),
               "roleAssignments": 1, "certificateVersions": 1}


# -- a loopback webhook receiver (alert sinks) --------------------------------------------------------------

class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records every POST body and can answer 500 to the next N."""

    def __init__(self) -> None:
        import http.server

        receiver = self
        self.lock = threading.Lock()
        self.received: list[dict] = []  # bodies answered 2xx, in order
        self.attempts: list[int] = []  # the status of every request
        self.failures_left = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver.lock:
                    status = 500 if receiver.failures_left > 0 else 202
                    receiver.failures_left = max(0, receiver.failures_left - 1)
                    receiver.attempts.append(status)
                    if status < 300:
                        receiver.received.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass  # the URL's query would be logged

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        # A Logic App trigger's URL shape: the signature is the secret the product must never reveal.
        self.secret = uuid.uuid4().hex
        self.url = (f"http://127.0.0.1:{self.server.server_address[1]}/workflows/alerts/triggers/manual/paths/invoke"
                    f"?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.secret}")

    def fail_next(self, count: int) -> None:
        """Answer 500 to the next `count` requests."""
        with self.lock:
            self.failures_left = count

    def bodies(self) -> list[dict]:
        with self.lock:
            return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook():
    """A loopback webhook receiver for one test module; stopped at its end."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def state(azurite):
    """The product's Table Storage, read directly in Azurite (not through the fault proxies)."""
    from shared.state import StateStore

    store = StateStore(azurite.connection_string)
    yield store
    store.close()


# -- headless Chromium (the progress page) ---------------------------------------------------------------------

# Debian's chromium, headless, with nothing that phones home (updates, sync, QUIC probes).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable (CHROMIUM, default Debian's /usr/bin/chromium: Playwright's own browser downloads
    don't work here); skips, saying why, when it or Playwright is missing."""
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.access(executable, os.X_OK):
        pytest.skip(f"no Chromium at {executable}: `make test` installs Debian's chromium (apt-get), or set "
                    "CHROMIUM=<path>")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: requirements-dev.txt pins it (`make test` installs it)")
    return executable


@pytest.fixture(scope="module")
def browser(chromium):
    """Headless Chromium through Playwright's sync API, for one test module. Not for the session: while Playwright's
    sync API runs, its event loop is the thread's running loop, so asyncio.run() in any later test would fail."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
