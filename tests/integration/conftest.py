"""Fixtures for tests that talk to the simulator (sandbox.azure) through the official SDKs."""

from __future__ import annotations

import os

import pytest

from sandbox.azure import Simulator


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    """One simulator process for the session; its CA bundle is what every SDK in this process trusts."""
    state_dir = tmp_path_factory.mktemp("sandbox-azure")
    with Simulator("--tenants", "2", state_dir=state_dir) as sim:
        saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        # requests (MSAL, azure-core) reads REQUESTS_CA_BUNDLE; httpx (msgraph) and aiohttp read SSL_CERT_FILE.
        os.environ["REQUESTS_CA_BUNDLE"] = sim.info["caBundle"]
        os.environ["SSL_CERT_FILE"] = sim.info["caBundle"]
        try:
            yield sim
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def home(simulator) -> dict:
    """The home tenant (where the vault and the product's managed identity live)."""
    return simulator.home


@pytest.fixture
def customer(simulator) -> dict:
    """A customer tenant (not the home tenant)."""
    return next(t for t in simulator.info["tenants"] if not t["home"])


@pytest.fixture
def clean_faults(simulator):
    """Reset faults and replication delay after a test that sets them."""
    yield simulator
    simulator.set_faults([], {})
