"""shared.signing against Key Vault (the simulator, azure-keyvault-secrets unmodified): the signing key is created
on first use, the newest enabled version signs, the two most recent enabled versions verify."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared import signing
from shared.signing import SigningKeys, TokenRejected, make_token, read_token

ONBOARDING = "72f988bf-86f1-41af-91ab-2d7cd011db47.0123456789abcdef0123"


@pytest.fixture
def secret_name() -> str:
    return f"certauth-signing-test-{uuid.uuid4().hex[:8]}"


def test_standalone_secrets_take_versions_and_the_latest_is_served(vault_clients, secret_name) -> None:
    secrets = vault_clients.secrets
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret(secret_name)
    first = secrets.set_secret(secret_name, "one", content_type="text/plain", tags={"a": "b"})
    second = secrets.set_secret(secret_name, "two")
    assert first.properties.version != second.properties.version
    assert secrets.get_secret(secret_name).value == "two"
    assert secrets.get_secret(secret_name, first.properties.version).value == "one"
    versions = list(secrets.list_properties_of_secret_versions(secret_name))
    assert {v.version for v in versions} == {first.properties.version, second.properties.version}
    assert all(v.enabled for v in versions)
    secrets.update_secret_properties(secret_name, first.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as disabled:
        secrets.get_secret(secret_name, first.properties.version)
    assert disabled.value.status_code == 403
    assert secret_name in {s.name for s in secrets.list_properties_of_secrets()}
    with pytest.raises(HttpResponseError) as too_big:
        secrets.set_secret(secret_name, "x" * (25 * 1024 + 1))
    assert too_big.value.status_code == 400


def test_the_signing_key_is_created_on_first_use_and_rotates(simulator, vault_clients, secret_name,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(signing, "REFRESH_FLOOR_SECONDS", 0.0)
    secrets = vault_clients.secrets
    keys = SigningKeys(secrets, secret_name)
    first = keys.current()
    assert len(first.key) == signing.KEY_BYTES
    created = list(secrets.list_properties_of_secret_versions(secret_name))
    assert [v.version for v in created] == [first.version]
    token = make_token(first, "status", ONBOARDING, 2**40)

    # Rotation: an operator adds a version (a second later: Key Vault dates are whole seconds). A token naming
    # it makes this worker re-read the vault.
    simulator.advance_clock(1)
    rotated = secrets.set_secret(secret_name, signing._b64url(b"r" * 32))
    newer = make_token(signing.SigningKey(rotated.properties.version, b"r" * 32), "status", ONBOARDING, 2**40)
    accepted = keys.accepted(rotated.properties.version)
    assert set(accepted) == {first.version, rotated.properties.version}
    assert read_token(token, accepted, "status", ONBOARDING)["s"] == ONBOARDING
    assert read_token(newer, accepted, "status", ONBOARDING)["s"] == ONBOARDING
    assert SigningKeys(secrets, secret_name).current().version == rotated.properties.version

    # A third version retires the first: only the two most recent enabled versions verify.
    simulator.advance_clock(1)
    third = secrets.set_secret(secret_name, signing._b64url(b"t" * 32))
    accepted = keys.accepted(third.properties.version)
    assert set(accepted) == {rotated.properties.version, third.properties.version}
    with pytest.raises(TokenRejected):
        read_token(token, accepted, "status", ONBOARDING)

    # A disabled version neither signs nor verifies: the one before it comes back.
    secrets.update_secret_properties(secret_name, third.properties.version, enabled=False)
    fresh = SigningKeys(secrets, secret_name)
    assert fresh.current().version == rotated.properties.version
    assert set(fresh.accepted(first.version)) == {first.version, rotated.properties.version}
