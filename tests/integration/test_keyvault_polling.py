"""shared.keyvault's wait for a new certificate against the simulated vault: polled at once, then with backoff from
CREATION_POLL_FIRST (not the SDK's every 5 s), and no read of the key before a signature."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from shared import keyvault
from shared.keyvault import CertificateVault
from tests.integration.conftest import unique

CREATION_SECONDS = 2.0


def _now(simulator) -> datetime:
    return datetime.fromisoformat(simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))


@pytest.fixture
def vault(simulator, vault_url, provisioner_credential):
    client = CertificateVault(vault_url, provisioner_credential, verify_challenge_resource=False)
    yield client
    client.close()


def _served(simulator, since: int, name: str) -> list[dict]:
    return [r for r in simulator.requests_since(since)["requests"] if r["origin"] == "vault" and name in r["path"]]


def test_a_creation_of_two_seconds_is_seen_within_the_backoff_not_five_seconds_later(simulator, vault,
                                                                                      vault_admin):
    name = unique("polled")
    vault_admin.admin("PUT", "/vault", {"creationDelaySeconds": CREATION_SECONDS})
    since = simulator.requests_since(0)["next"]
    started = time.monotonic()
    info, created = vault.ensure(name, "CN=polled", 12, 2048, False, _now(simulator))
    elapsed = time.monotonic() - started
    assert created
    assert len(info.thumbprint) == 40
    # The polls' waits: at once, then 0.5, 0.75, 1.125 s ... : the one that sees the end comes less than the last
    # wait late; the SDK's poller (at once, then every 5 s) would have seen it after 5 s.
    polls = [r for r in _served(simulator, since, name) if r["method"] == "GET" and "/pending" in r["path"]]
    waits, total = [], 0.0
    wait = keyvault.CREATION_POLL_FIRST
    while total < CREATION_SECONDS:
        waits.append(wait)
        total += wait
        wait = min(wait * keyvault.CREATION_POLL_FACTOR, keyvault.CREATION_POLL_MAX)
    assert len(polls) == 1 + len(waits), polls
    assert CREATION_SECONDS <= elapsed < CREATION_SECONDS + waits[-1] + 1.0, elapsed
    creates = [r for r in _served(simulator, since, name) if r["method"] == "POST" and r["path"].split("?")[0]
               .endswith("/create")]
    assert [r["status"] for r in creates] == [202]


def test_a_signature_needs_no_read_of_the_key(simulator, vault):
    name = unique("signed")
    info, _ = vault.ensure(name, "CN=signed", 12, 2048, False, _now(simulator))
    der = base64.b64decode(info.cer)
    digest = hashlib.sha256(b"certauth").digest()
    since = simulator.requests_since(0)["next"]
    signature = vault.sign(info.key_id, "RS256", digest, der)
    served = _served(simulator, since, name)
    assert [(r["method"], r["path"].split("?")[0].rsplit("/", 1)[-1]) for r in served if r["status"] < 400] == [
        ("POST", "sign")]
    # The vault's signature verifies with the certificate's public key: the key it used is the certificate's.
    public_key = x509.load_der_x509_certificate(der).public_key()
    public_key.verify(signature, b"certauth", padding.PKCS1v15(), hashes.SHA256())


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert keyvault.retry_after_seconds("3") == 3.0
    assert keyvault.retry_after_seconds(None) == 0.0
    assert keyvault.retry_after_seconds("soon") == 0.0
    assert keyvault.retry_after_seconds("-4") == 0.0
    assert keyvault.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
