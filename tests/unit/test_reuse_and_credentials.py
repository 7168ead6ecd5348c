"""Process-wide reuse (bounded, never closing what another activity may still use) and the single-tenant
guard."""

from __future__ import annotations

import pytest

from shared import reuse
from shared.credentials import provisioner_credential
from shared.settings import Settings, SettingsError

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


def test_one_object_per_key_for_the_life_of_the_process():
    first = reuse.shared("k", Client)
    assert reuse.shared("k", Client) is first
    assert reuse.shared("other", Client) is not first


def test_a_build_may_use_the_cache_itself():
    outer = reuse.shared("outer", lambda: (reuse.shared("inner", Client), Client()))
    assert outer[0] is reuse.shared("inner", Client)


def test_the_cache_is_bounded_and_never_closes_what_it_drops():
    # An activity (or a poller thread it started) may still use a dropped client: closing it would break
    # that call. It is released when its last user lets go of it.
    in_use = reuse.shared(("tenant", 0), Client)
    clients = [in_use] + [reuse.shared(("tenant", i), Client) for i in range(1, reuse.MAX_ITEMS + 3)]
    assert reuse.shared(("tenant", 0), Client) is not in_use   # dropped: a new one is built
    assert not any(c.closed for c in clients)

def test_without_an_onboarding_app_only_the_home_tenant_can_be_onboarded():
    settings = Settings(home_tenant_id=HOME, provisioner_client_id=None)
    with pytest.raises(SettingsError, match="CERTAUTH_PROVISIONER_CLIENT_ID"):
        provisioner_credential(settings, CUSTOMER)
    assert provisioner_credential(settings, HOME) is not None
