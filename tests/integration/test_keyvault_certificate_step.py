"""shared.keyvault against the simulated vault: reuse, and a creation that outlives one attempt."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.keyvault import CertificateVault, CreationPending
from tests.integration.conftest import unique


def _now(simulator) -> datetime:
    return datetime.fromisoformat(simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))


@pytest.fixture
def vault(simulator, vault_url, provisioner_credential):
    client = CertificateVault(vault_url, provisioner_credential, verify_challenge_resource=False)
    yield client
    client.close()


def test_a_valid_certificate_is_reused(simulator, vault):
    name = unique("reuse")
    first, created = vault.ensure(name, "CN=reuse", 12, 2048, False, _now(simulator))
    again, created_again = vault.ensure(name, "CN=reuse", 12, 2048, False, _now(simulator))
    assert (created, created_again) == (True, False)
    assert again.thumbprint == first.thumbprint
    assert not again.exportable


def test_a_slow_creation_is_picked_up_by_a_later_attempt(simulator, vault, vault_admin):
    name = unique("slow")
    vault_admin.admin("PUT", "/vault", {"creationDelaySeconds": 120})
    with pytest.raises(CreationPending):
        vault.ensure(name, "CN=slow", 12, 2048, False, _now(simulator), wait_seconds=0.2)
    # The next attempt finds the creation pending (Key Vault refuses a second create with 409).
    with pytest.raises(CreationPending, match="earlier attempt"):
        vault.ensure(name, "CN=slow", 12, 2048, False, _now(simulator), wait_seconds=0.2)
    simulator.advance_clock(121)
    info, _ = vault.ensure(name, "CN=slow", 12, 2048, False, _now(simulator), wait_seconds=0.2)
    assert len(info.thumbprint) == 40
    versions = list(vault._certificates.list_properties_of_certificate_versions(name))
    assert len(versions) == 1
