"""`make demo`'s script (`python -m sandbox.demo`) against a world started by `python -m sandbox.up up`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...); None when gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields


def _descendants(roots: set[int]) -> set[int]:
    """The roots and every live process below them, or in their process groups."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            table[int(entry)] = (int(fields[1]), int(fields[2]))
    found = {pid for pid in roots if pid in table}
    found |= {pid for pid, (_, pgrp) in table.items() if pgrp in roots}
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        if not more:
            return found
        found |= more


def _ports(endpoints: dict) -> set[int]:
    urls = [endpoints["host"]["baseUrl"], endpoints["azurite"]["tableEndpoint"], endpoints["clockUrl"],
            *(url for url in endpoints["simulator"].values() if isinstance(url, str) and "://" in url)]
    return {urllib.parse.urlsplit(url).port for url in urls if url}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(90)
def test_demo_onboards_prints_what_was_created_and_down_leaves_nothing_running(tmp_path):
    state = tmp_path / "state"
    env = dict(os.environ, SANDBOX_STATE_DIR=str(state), PYTHONPATH=str(REPO), SANDBOX_TENANTS="4")

    def sandbox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)

    up = sandbox("sandbox.up", "up", "--port", "0", "--no-timers")
    processes: set[int] = set()
    ports: set[int] = set()
    try:
        assert up.returncode == 0, up.stderr
        endpoints = json.loads((state / "endpoints.json").read_text())
        processes = _descendants(set(endpoints["pids"].values()))
        ports = _ports(endpoints)
        assert len(endpoints["tenants"]) == 4   # SANDBOX_TENANTS: home and three customers
        # The host follows the simulator's clock file (one clock for every process).
        host_env = Path(f"/proc/{endpoints['pids']['host']}/environ").read_bytes().split(b"\0")
        assert f"FAKETIME_TIMESTAMP_FILE={endpoints['clockFile']}".encode() in host_env
        demo = sandbox("sandbox.demo", "--timeout", "60", timeout=90)
    finally:
        down = sandbox("sandbox.up", "down", timeout=60)
    assert down.returncode == 0, down.stderr
    assert demo.returncode == 0, demo.stdout + demo.stderr

    out = demo.stdout
    assert "the customer's administrator consents" in out
    # The demo prints each step it sees while polling; a fast step can pass between two polls, so the
    # steps seen must be in order, not all present.
    order = ["accepted", "certificate", "application", "servicePrincipal", "consent", "directoryRole", "proof",
             "record", "completed"]
    seen = re.findall(r"^\[\s*\d+\.\d\ds\] \w+\s+step: (\w+)$", out, re.M)
    assert seen, out
    assert seen == sorted(seen, key=order.index), out
    assert seen[-1] == "completed", out
    assert re.search(rf"^  app id\s+{GUID}$", out, re.M), out
    assert re.search(rf"^  application object id\s+{GUID}$", out, re.M), out
    assert re.search(rf"^  service principal id\s+{GUID}$", out, re.M), out
    assert re.search(r"^\s+thumbprint \(SHA-1\)\s+[0-9A-F]{40}$", out, re.M), out
    assert re.search(r"^\s+notAfter\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", out, re.M), out
    assert re.search(r"^  directory role\s+Exchange Administrator$", out, re.M), out
    proof = out.split("proof token roles", 1)[1]
    # The default profile: Graph for contacts, Exchange Online PowerShell; no EWS (off in Exchange Online 2027-04-01).
    assert re.search(r"Office 365 Exchange Online: Exchange\.ManageAsApp$", proof, re.M), out
    assert "full_access_as_app" not in out
    assert re.search(r"Microsoft Graph: Contacts\.ReadWrite, Organization\.Read\.All, User\.Read\.All$",
                     proof, re.M), out

    # `down` stopped everything `up` started (children included) and freed every port.
    assert len(processes) > len(endpoints["pids"])   # Azurite's node process, below sandbox.azurite
    assert ports
    assert not {pid for pid in processes if _stat(pid)}
    assert not {port for port in ports if _listening(port)}
    assert not (state / "pids.json").exists()
    assert not (state / "endpoints.json").exists()


def test_up_refuses_a_tenant_count_it_cannot_seed_and_starts_nothing(tmp_path):
    env = dict(os.environ, SANDBOX_STATE_DIR=str(tmp_path), PYTHONPATH=str(REPO), SANDBOX_TENANTS="none")
    up = subprocess.run([sys.executable, "-m", "sandbox.up", "up", "--port", "0"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=60)
    assert up.returncode == 2
    assert "SANDBOX_TENANTS" in up.stderr
    assert not (tmp_path / "pids.json").exists()
