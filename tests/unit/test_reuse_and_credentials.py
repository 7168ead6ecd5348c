"""Process-wide reuse (aged on the orchestration clock, bounded) and the single-tenant guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import reuse
from shared.credentials import provisioner_credential
from shared.settings import Settings, SettingsError

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
HOME = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CUSTOMER = "0f6b2c11-3e5d-4f38-a9f1-6b0d8c3a2e17"


class Client:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _fresh():
    reuse.clear()
    yield
    reuse.clear()


def test_reused_while_the_orchestration_clock_stays_within_max_age():
    first = reuse.shared("k", T0, Client)
    assert reuse.shared("k", T0 + reuse.MAX_AGE, Client) is first
    later = reuse.shared("k", T0 + reuse.MAX_AGE + timedelta(seconds=1), Client)
    assert later is not first
    assert first.closed


def test_a_build_may_use_the_cache_itself():
    outer = reuse.shared("outer", T0, lambda: (reuse.shared("inner", T0, Client), Client()))
    assert outer[0] is reuse.shared("inner", T0, Client)


def test_the_cache_is_bounded_and_closes_what_it_drops():
    clients = [reuse.shared(("tenant", i), T0, Client) for i in range(reuse.MAX_ITEMS + 3)]
    assert [c.closed for c in clients[:3]] == [True, True, True]
    assert not any(c.closed for c in clients[3:])


def test_without_an_onboarding_app_only_the_home_tenant_can_be_onboarded():
    settings = Settings(home_tenant_id=HOME, provisioner_client_id=None)
    with pytest.raises(SettingsError, match="CERTAUTH_PROVISIONER_CLIENT_ID"):
        provisioner_credential(settings, CUSTOMER, T0)
    assert provisioner_credential(settings, HOME, T0) is not None
