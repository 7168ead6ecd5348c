"""``python -m sandbox.up up|down|status``: the offline world in the background (``make up`` / ``make down``).

``up`` starts, each in its own process group and detached from the terminal:
  1. Azurite (``python -m sandbox.azurite``),
  2. the Entra / Graph / Key Vault simulator (``python -m sandbox.azure``), which owns the sandbox clock,
     seeded with ``SANDBOX_TENANTS`` tenants (default 3: home and two customers),
  3. the sandbox Functions host (``python -m sandbox.host``) serving ``function_app:app`` with the app
     settings wired to the two above, its wall clock following the sandbox clock (sandbox/faketime.py);
     ``SANDBOX_HOST_HOP_MS`` in the environment adds the Durable backend's per-hop cost (sandbox/host/engine.py),
then writes ``.sandbox/endpoints.json`` (host URL and keys, simulator URLs, clock, CA bundle, tenants) and
records the process ids in ``.sandbox/pids.json``.  ``down`` stops exactly those process groups and removes
both files.  Logs go to ``.sandbox/logs/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sandbox import faketime

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("SANDBOX_STATE_DIR") or REPO / ".sandbox")
PIDS = STATE / "pids.json"
ENDPOINTS = STATE / "endpoints.json"
LOGS = STATE / "logs"
# Home and two customers: one to consent to the onboarding app and one that has not.
DEFAULT_TENANTS = 3


class UpError(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return True


def _ours(pid: int, module: str) -> bool:
    """Whether pid still runs the command we started (guards against pid reuse)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return module.encode() in handle.read()
    except OSError:
        return _alive(pid)


def _read_pids() -> list[dict]:
    if not PIDS.exists():
        return []
    return json.loads(PIDS.read_text())


def _write_pids(entries: list[dict]) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    PIDS.write_text(json.dumps(entries, indent=2))


def _launch(name: str, module: str, args: list[str], env: dict, started: list[dict], timeout: float = 60) -> dict:
    """Start `python -m module`, wait for its one JSON line on stdout, return it."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path, err_path = LOGS / f"{name}.out", LOGS / f"{name}.log"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
    started.append({"name": name, "pid": proc.pid, "pgid": proc.pid, "module": module})
    _write_pids(started)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in out_path.read_text().splitlines():
            if line.strip().startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
        if proc.poll() is not None:
            raise UpError(f"{name} exited with {proc.returncode}; see {err_path}:\n"
                          + "\n".join(err_path.read_text().splitlines()[-15:]))
        time.sleep(0.05)
    raise UpError(f"{name} did not become ready within {timeout:.0f}s; see {err_path}")


def passed_through_settings(environ) -> dict[str, str]:
    """The product's application settings (CERTAUTH_*) set in `environ`, for `make up` to pass to the app."""
    return {name: value for name, value in environ.items() if name.startswith("CERTAUTH_")}


def host_settings(azurite: dict, simulator: dict) -> dict[str, str]:
    """App settings for the product, pointing it at the sandbox (as the real host gets app settings)."""
    tenants = simulator.get("tenants") or []
    home = simulator.get("homeTenantId") or next((t["tenantId"] for t in tenants if t.get("home")), "")
    settings = {
        # Through the simulator's Table Storage proxies when it serves them (fault rules reach them): the
        # host's task hub on `taskhub`, the product's own state on `tables`.
        "AzureWebJobsStorage": simulator.get("taskhubConnectionString") or azurite["connectionString"],
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "GRAPH_BASE_URL": simulator["graphUrl"],
        "AZURE_AUTHORITY_HOST": simulator.get("authorityHost") or simulator["loginUrl"],
        "KEY_VAULT_URL": simulator["vaultUrl"],
        "IDENTITY_ENDPOINT": simulator["identityEndpoint"],
        "IDENTITY_HEADER": simulator["identityHeader"],
        "REQUESTS_CA_BUNDLE": simulator["caBundle"],
        "SSL_CERT_FILE": simulator["caBundle"],
        "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE": "false",
        "AZURE_INSTANCE_DISCOVERY": "false",
        "CERTAUTH_HOME_TENANT_ID": home,
        # The product's multi-tenant onboarding app (seeded in the home tenant, federated with the
        # managed identity): its identity in customer tenants.
        "CERTAUTH_PROVISIONER_CLIENT_ID": next((t["consentApp"]["clientId"] for t in tenants
                                                if t.get("home") and "consentApp" in t), ""),
        # The manual method's read-only verifier (Application.Read.All, Organization.Read.All), seeded beside it.
        "CERTAUTH_VERIFIER_CLIENT_ID": next((t["verifierApp"]["clientId"] for t in tenants
                                             if t.get("home") and "verifierApp" in t), ""),
        # Exchange Online's admin API (https://outlook.office365.com on Azure): the Exchange proof's
        # InvokeCommand goes to {EXCHANGE_ADMIN_URL}/adminapi/beta/{tenant}/InvokeCommand. The token scope stays
        # https://outlook.office365.com/.default: the simulator's Exchange origin accepts that audience.
        "EXCHANGE_ADMIN_URL": simulator.get("exchangeUrl", ""),
        "TASKHUB_NAME": os.environ.get("TASKHUB_NAME", "certauth"),
        # The expiry monitor's NCRONTAB schedule: a binding expression (%CERTAUTH_EXPIRY_SCHEDULE%) has no default,
        # so the host cannot index the timer without it. Daily at 06:00 UTC, as the infrastructure sets it.
        "CERTAUTH_EXPIRY_SCHEDULE": "0 0 6 * * *",
    }
    if simulator.get("tablesConnectionString"):
        settings["TABLES_CONNECTION_STRING"] = simulator["tablesConnectionString"]
    return settings


def up(args: argparse.Namespace) -> int:
    existing = _read_pids()
    if existing and all(_alive(entry["pid"]) for entry in existing) and ENDPOINTS.exists():
        print(ENDPOINTS.read_text())
        print("sandbox: already up (make down to stop it)", file=sys.stderr)
        return 0
    if existing:
        down(args)
    try:
        tenants = int(os.environ.get("SANDBOX_TENANTS") or DEFAULT_TENANTS)
    except ValueError:
        tenants = 0
    if tenants < 1:
        print("sandbox: SANDBOX_TENANTS must be a whole number of tenants, at least 1 (the home tenant)",
              file=sys.stderr)
        return 2
    started: list[dict] = []
    base_env = dict(os.environ)
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base_env.get("PYTHONPATH")]))
    try:
        # Every process but the clock's owner follows the clock file; it exists before Azurite starts.
        clock_file = STATE / "azure" / faketime.CLOCK_FILE
        clock_file.parent.mkdir(parents=True, exist_ok=True)
        faketime.write_offset(clock_file, 0)
        azurite = _launch("azurite", "sandbox.azurite", [], faketime.environment(clock_file, base_env), started)
        # The simulator owns the clock (real time); the host follows the clock file it writes.
        simulator = _launch("azure", "sandbox.azure", ["--state-dir", str(STATE / "azure"),
                                                       "--tenants", str(tenants),
                                                       # a creation takes one poll more, as on Azure (5 s)
                                                       "--creation-polls", "1",
                                                       # the tables / taskhub proxies (fault rules reach them)
                                                       "--tables-upstream", azurite["connectionString"]],
                            faketime.without(base_env),
                            started)
        settings = host_settings(azurite, simulator)
        # Any CERTAUTH_* application setting in the environment of `make up` reaches the Function App and wins
        # over the sandbox's own (e.g. CERTAUTH_ALERT_WEBHOOK_URL pointing alerts at a person's own webhook).
        settings.update(passed_through_settings(os.environ))
        host_args = ["--app", args.app, "--port", str(args.port), "--keys-file", str(STATE / "host-keys.json"),
                     "--clock-url", simulator["clockUrl"], "--ca-bundle", simulator["caBundle"]]
        if not args.no_timers:
            host_args.append("--timers")
        host = _launch("host", "sandbox.host", host_args,
                       faketime.environment(simulator["clockFile"], dict(base_env, **settings)), started)
    except (UpError, KeyError) as error:
        print(f"sandbox: up failed: {error}", file=sys.stderr)
        down(args)
        return 1
    endpoints = {
        "host": {"baseUrl": host["baseUrl"], "functionKey": host["functionKey"], "adminKey": host["adminKey"],
                 "taskHub": host["taskHub"]},
        "azurite": {"connectionString": azurite["connectionString"], "tableEndpoint": azurite.get("tableEndpoint")},
        "simulator": {key: simulator.get(key) for key in ("loginUrl", "authorityHost", "graphUrl", "vaultUrl",
                                                          "identityEndpoint", "identityHeader", "adminUrl",
                                                          "tablesUrl", "taskhubUrl")},
        "clockUrl": simulator["clockUrl"],
        "clockFile": simulator["clockFile"],
        "caBundle": simulator["caBundle"],
        "homeTenantId": settings["CERTAUTH_HOME_TENANT_ID"],
        "tenants": simulator.get("tenants") or [],
        "settings": settings,
        "pids": {entry["name"]: entry["pid"] for entry in started},
    }
    fd = os.open(ENDPOINTS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # holds keys and seeded secrets
    with os.fdopen(fd, "w") as handle:
        json.dump(endpoints, handle, indent=2)
    print(json.dumps({"baseUrl": host["baseUrl"], "endpoints": str(ENDPOINTS)}))
    return 0


def down(args: argparse.Namespace | None = None) -> int:
    entries = _read_pids()
    for entry in reversed(entries):   # the host first, Azurite last
        pid = entry["pid"]
        if not _alive(pid) or not _ours(pid, entry["module"]):
            continue
        try:
            os.killpg(entry["pgid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry["pgid"], signal.SIGKILL)
        print(f"sandbox: stopped {entry['name']} (pid {pid})", file=sys.stderr)
    for path in (PIDS, ENDPOINTS):
        path.unlink(missing_ok=True)
    return 0


def status(args: argparse.Namespace) -> int:
    entries = _read_pids()
    for entry in entries:
        print(f"{entry['name']}: pid {entry['pid']} {'running' if _alive(entry['pid']) else 'stopped'}")
    return 0 if entries and all(_alive(e["pid"]) for e in entries) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.up", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--app", default="function_app:app")
    parser.add_argument("--port", type=int, default=7071, help="host port (0 = random)")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers on their schedule")
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "status": status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
