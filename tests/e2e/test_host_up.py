"""`python -m sandbox.up up|down` (make up / make down): the offline world in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from tests.e2e.conftest import REPO


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        return handle.read().split(") ")[-1].split()[0] != "Z"


def test_up_writes_endpoints_and_down_stops_exactly_those_processes(tmp_path):
    env = dict(os.environ, SANDBOX_STATE_DIR=str(tmp_path / "state"), PYTHONPATH=str(REPO))
    up = subprocess.run([sys.executable, "-m", "sandbox.up", "up", "--port", "0"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)
    state = tmp_path / "state"
    try:
        assert up.returncode == 0, up.stderr
        endpoints = json.loads((state / "endpoints.json").read_text())
        pids = endpoints["pids"]
        assert set(pids) == {"azurite", "azure", "host"}
        assert all(_alive(pid) for pid in pids.values())
        host = endpoints["host"]
        assert host["functionKey"]
        assert host["adminKey"]
        assert endpoints["caBundle"]
        assert endpoints["tenants"]
        status = requests.get(f"{host['baseUrl']}/admin/host/status",
                              headers={"x-functions-key": host["adminKey"]}, timeout=10)
        assert status.json()["state"] == "Running"
        # the host follows the simulator's clock: advancing it through the host moves the simulator's
        moved = requests.post(f"{host['baseUrl']}/_sandbox/clock", json={"advanceSeconds": 3600}, timeout=10).json()
        shared = requests.get(endpoints["clockUrl"], verify=endpoints["caBundle"], timeout=10).json()
        assert shared["offsetSeconds"] == moved["offsetSeconds"] >= 3600
        assert endpoints["settings"]["GRAPH_BASE_URL"] == endpoints["simulator"]["graphUrl"]
    finally:
        down = subprocess.run([sys.executable, "-m", "sandbox.up", "down"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    assert not (state / "pids.json").exists()
    assert not (state / "endpoints.json").exists()
