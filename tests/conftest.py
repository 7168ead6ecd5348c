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

from sandbox.azure.tls import BUNDLE, ensure_ca
from sandbox.azurite import Azurite

# The sandbox CA exists before any test imports a client library: aiohttp builds its default SSL context
# when it is imported, from SSL_CERT_FILE as it is then, just as a deployed app reads its environment at
# start. The simulator started by the tests reuses this CA (same state directory).
SANDBOX_STATE_DIR = Path(tempfile.mkdtemp(prefix="certauth-sandbox-"))
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
