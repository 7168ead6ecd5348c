"""Shared fixtures. Services needed by tests are started here, once per session, and stopped at the end
of the session whether the tests pass or fail (so `make test` needs no separate up/down step)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import faketime
from sandbox.azure import Simulator
from sandbox.azure.tls import BUNDLE, ensure_ca
from sandbox.azurite import Azurite

# The session runs under libfaketime (tests/sandbox_clock.py): its state directory holds the clock file
# that the session's simulator writes, so this process and every process it starts see one clock.
# The sandbox CA exists before any test imports a client library: aiohttp builds its default SSL context
# when it is imported, from SSL_CERT_FILE as it is then, just as a deployed app reads its environment at
# start. The simulator started by the tests reuses this CA (same state directory).
_CLOCK_FILE = faketime.clock_file()
SANDBOX_STATE_DIR = _CLOCK_FILE.parent if _CLOCK_FILE else Path(tempfile.mkdtemp(prefix="certauth-sandbox-"))
ensure_ca(SANDBOX_STATE_DIR)
os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(SANDBOX_STATE_DIR / BUNDLE)
atexit.register(shutil.rmtree, SANDBOX_STATE_DIR, True)

_TESTS = Path(__file__).resolve().parent
_MARK_BY_DIR = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder (tests/unit → unit, …) so `-m unit` etc. select by kind."""
    for item in items:
        try:
            kind = item.path.resolve().relative_to(_TESTS).parts[0]
        except ValueError:
            continue
        mark = _MARK_BY_DIR.get(kind)
        if mark is not None:
            item.add_marker(mark)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite Table service (in memory, free loopback port) for the whole session."""
    with Azurite() as instance:
        yield instance


# -- the Entra ID / Graph / Key Vault simulator ------------------------------------------------------
# One tenant is home; the others are customers (e2e tests give each scenario its own tenant).
SIMULATOR_TENANTS = 10  # customers(simulator)[8]: the offboarding tests' own tenant


def customers(simulator) -> list[dict]:
    """The customer tenants, in a stable order."""
    return [t for t in simulator.info["tenants"] if not t["home"]]


@pytest.fixture(scope="session")
def simulator(azurite):
    """One simulator process for the session. It reuses the CA that tests/conftest.py made and that every
    SDK in this process trusts (REQUESTS_CA_BUNDLE for requests/MSAL, SSL_CERT_FILE for httpx and aiohttp).
    It fronts the session's Azurite with the `tables` / `taskhub` proxies (fault rules reach Table Storage)."""
    with Simulator("--tenants", str(SIMULATOR_TENANTS), state_dir=SANDBOX_STATE_DIR,
                   tables_upstream=azurite.connection_string) as sim:
        assert sim.info["caBundle"] == os.environ["SSL_CERT_FILE"]
        yield sim


@pytest.fixture
def home(simulator) -> dict:
    """The home tenant (where the vault and the product's managed identity live)."""
    return simulator.home


@pytest.fixture
def customer(simulator) -> dict:
    """The first customer tenant (not the home tenant)."""
    return customers(simulator)[0]


@pytest.fixture
def clean_faults(simulator):
    """Reset faults and replication delay after a test that sets them."""
    yield simulator
    simulator.set_faults([], {})


@pytest.fixture(scope="session")
def admin_consent(simulator):
    """A function that makes a customer tenant's administrator consent to the product's onboarding app,
    through the admin-consent endpoint (what an onboarding link leads to). Returns the redirect URL."""

    def consent(tenant_id: str) -> str:
        location = simulator.consent(tenant_id, state="consent")
        assert "admin_consent=True" in location
        return location

    return consent
