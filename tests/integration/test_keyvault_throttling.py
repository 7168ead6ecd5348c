"""Key Vault creation throttling (20 software RSA key creations per 10 s per vault, service-limits page)
and azure-core honouring the 429's Retry-After."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificatePolicy, KeyVaultCertificate


def test_creation_throttling_is_honoured(simulator, vault_clients):
    client = vault_clients.certificates
    policy = CertificatePolicy(issuer_name="Self", subject="CN=throttle")
    simulator.advance_clock(10)  # start from an empty 10 s window (sandbox clock)
    prefix = f"thr-{uuid.uuid4().hex[:8]}"
    try:
        for i in range(20):
            client.begin_create_certificate(f"{prefix}-{i}", policy)

        # The 21st creation in the window: 429 with Retry-After (retries off to look at it).
        with pytest.raises(HttpResponseError) as throttled:
            client.begin_create_certificate(f"{prefix}-late", policy, retry_total=0)
        assert throttled.value.status_code == 429
        retry_after = int(throttled.value.response.headers["Retry-After"])
        assert 1 <= retry_after <= 10
        assert throttled.value.error.code == "Throttled"

        # Move the sandbox clock to within two seconds of the window's end: the next attempt is still
        # throttled, azure-core waits Retry-After (≤ 2 s) and retries, and the retry succeeds.
        simulator.advance_clock(max(0, retry_after - 2))
        mark = simulator.requests_since()["next"]
        made = client.begin_create_certificate(f"{prefix}-late", policy).result()
        assert isinstance(made, KeyVaultCertificate)
        statuses = [r["status"] for r in simulator.requests_since(mark)["requests"]
                    if r["method"] == "POST" and r["path"].startswith(f"/certificates/{prefix}-late/create")]
        assert statuses[0] == 429
        assert statuses[-1] == 202
    finally:
        simulator.advance_clock(10)  # leave an empty window for the next tests
