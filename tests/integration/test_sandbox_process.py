"""`python -m sandbox.azure` as a process: its JSON line, clean stop on SIGTERM and SIGINT, no orphan port."""

from __future__ import annotations

import signal
import socket
import urllib.parse
from pathlib import Path

import pytest

from sandbox.azure import Simulator


def _port_open(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((parts.hostname, parts.port)) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_prints_its_description_and_stops_cleanly(tmp_path, stop_signal):
    sim = Simulator("--tenants", "1", state_dir=tmp_path, start_timeout=10).start()
    try:
        info = sim.info
        for key in ("loginUrl", "graphUrl", "vaultUrl", "identityEndpoint", "identityHeader", "caBundle",
                    "clockUrl", "tenants"):
            assert info[key], key
        assert info["graphUrl"].endswith("/v1.0")
        assert info["clockUrl"] == info["loginUrl"] + "/_sandbox/clock"
        assert len(info["tenants"]) == 1
        assert info["tenants"][0]["provisioner"]["clientSecret"]
        assert "BEGIN CERTIFICATE" in Path(info["caBundle"]).read_text()
        urls = [info["loginUrl"], info["graphUrl"], info["vaultUrl"], info["identityEndpoint"]]
        assert all(_port_open(u) for u in urls)
        sim.process.send_signal(stop_signal)
        assert sim.process.wait(timeout=10) == 0
        assert not any(_port_open(u) for u in urls)
    finally:
        sim.stop()
