"""Shared fixtures. Services needed by tests are started here, once per session, and stopped at the end
of the session whether the tests pass or fail (so `make test` needs no separate up/down step)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.azurite import Azurite

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
