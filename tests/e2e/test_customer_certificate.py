"""The customer's own certificate end to end: a PFX imported before the run (and found nowhere afterwards), bad
PFX files refused with 400, and a CSR for the customer's CA (trustme) merged while the onboarding waits."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.keyvault import certificate_name
from shared.state import onboarding_id
from tests.conftest import customers
from tests.customer_pfx import make_pfx, sign_for_csr, sign_other_key, utc
from tests.e2e.test_onboarding import secrets_scan


def _now(simulator):
    return utc(float(simulator.admin("GET", "/clock")["epochSeconds"]))


def _mailbox(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@contoso.com"


def _thumbprint(certificate: x509.Certificate) -> str:
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def _wait_for_status(product, instance: str, wanted: str, timeout: float = 60) -> dict:
    """Poll the status (short sleeps, no time passes on the sandbox clock) until it says `wanted`."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = product.onboarding(instance)
        if status["status"] == wanted:
            return status
        assert status["runtimeStatus"] not in ("Failed", "Completed", "Terminated"), status
        time.sleep(0.1)
    raise AssertionError(f"onboarding {instance} never said {wanted}: {status}")


def test_a_pfx_is_imported_and_found_nowhere(simulator, product, vault, admin_consent):
    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    mailbox = _mailbox("pfx")
    password = f"Pfx-{uuid.uuid4().hex}"
    pfx, certificate = make_pfx(password, _now(simulator), common_name="customer's own")
    pfx_b64 = base64.b64encode(pfx).decode()
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox,
                               "certificate": {"pfx": pfx_b64, "password": password}})
    assert started["id"] == onboarding_id(tenant, mailbox)
    status = product.finish(started["id"])
    assert status["status"] == "completed", status
    assert status["certificate"]["thumbprint"] == _thumbprint(certificate)
    stored = vault.get_certificate(certificate_name(started["id"]))
    assert stored.policy.exportable is False
    assert hashlib.sha1(bytes(stored.cer)).hexdigest().upper() == _thumbprint(certificate)
    app = next(a for a in simulator.tenant_state(tenant)["applications"]
               if a["appId"] == status["application"]["appId"])
    thumbprints = {base64.b64decode(k["customKeyIdentifier"]).hex().upper() for k in app["keyCredentials"]}
    assert _thumbprint(certificate) in thumbprints
    history = product.history(started["id"])
    assert '"imported": true' in str(history).replace("True", "true").replace("'", '"')
    secrets_scan(simulator, product, started["id"], extra={
        "PFX (base64)": pfx_b64[200:260], "PFX (base64, start)": pfx_b64[:60], "PFX password": password,
        "PFX (hex)": pfx[100:130].hex()})


def test_the_secrets_scan_catches_the_pfx_password(simulator, product):
    """The extra patterns are not vacuous: a password in the logs is caught (after the happy path above)."""
    instance = _any_started(product)
    leak = f"debug Pfx-caught-{uuid.uuid4().hex}"
    product.stderr_lines.append(leak)
    try:
        with pytest.raises(AssertionError, match="PFX password found in logs"):
            secrets_scan(simulator, product, instance, extra={"PFX password": leak})
    finally:
        product.stderr_lines.remove(leak)


def _any_started(product) -> str:
    import re

    for text in product.post_answers:
        match = re.search(r'"id": "([0-9a-f-]{36}\.[0-9a-f]{20})"', text)
        if match:
            return match.group(1)
    raise AssertionError("no onboarding started in this module yet")


@pytest.mark.parametrize(("case", "target", "code"), [
    ("wrong password", "certificate.password", "WrongPasswordOrNotPfx"),
    ("no private key", "certificate.pfx", "NoPrivateKey"),
    ("expired", "certificate.pfx", "CertificateExpired"),
    ("weak key", "certificate.pfx", "WeakKey"),
])
def test_bad_pfx_files_get_400_naming_the_problem(simulator, product, vault, case, target, code):
    from azure.core.exceptions import ResourceNotFoundError

    tenant = customers(simulator)[1]["tenantId"]
    mailbox = _mailbox("badpfx")
    now = _now(simulator)
    password = f"Bad-{uuid.uuid4().hex}"
    pfx, _ = {"wrong password": lambda: make_pfx("another one", now),
              "no private key": lambda: make_pfx(password, now, with_key=False),
              "expired": lambda: make_pfx(password, now, days=-3),
              "weak key": lambda: make_pfx(password, now, key_size=1024)}[case]()
    response = product.api("POST", "/onboardings", json={
        "tenantId": tenant, "serviceMailbox": mailbox,
        "certificate": {"pfx": base64.b64encode(pfx).decode(), "password": password}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["target"]) == (code, target), error
    assert password not in response.text
    # Nothing was imported or started.
    with pytest.raises(ResourceNotFoundError):
        vault.get_certificate(certificate_name(onboarding_id(tenant, mailbox)))
    assert product.status(onboarding_id(tenant, mailbox)) is None


def test_a_csr_is_signed_by_the_customer_ca_merged_and_the_onboarding_completes(simulator, product, admin_consent):
    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    mailbox = _mailbox("csr")
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox,
                               "certificate": {"issuer": "customer"}})
    instance = started["id"]
    waiting = _wait_for_status(product, instance, "waitingForCertificate")
    assert waiting["csrUrl"].endswith(f"/api/onboardings/{instance}/csr")
    assert waiting["certificateUploadUrl"].endswith(f"/api/onboardings/{instance}/certificate")

    response = product.api("GET", f"/onboardings/{instance}/csr")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/pkcs10")
    csr = x509.load_pem_x509_csr(response.content)
    assert csr.is_signature_valid
    csr_der = csr.public_bytes(serialization.Encoding.DER)

    ca, now = trustme.CA(), _now(simulator)
    refused = product.api("POST", f"/onboardings/{instance}/certificate", data=sign_other_key(ca, csr_der, now))
    assert refused.status_code == 400, refused.text
    assert (refused.json()["error"]["code"], refused.json()["error"]["target"]) == ("CertificateKeyMismatch", "body")
    assert product.onboarding(instance)["status"] == "waitingForCertificate"  # it still waits

    signed = sign_for_csr(ca, csr_der, now)
    merged = product.api("POST", f"/onboardings/{instance}/certificate", data=signed)
    assert merged.status_code == 202, merged.text
    leaf = x509.load_pem_x509_certificates(signed)[0]
    assert merged.json()["certificate"]["thumbprint"] == _thumbprint(leaf)

    status = product.finish(instance)
    assert status["status"] == "completed", status
    assert status["certificate"]["thumbprint"] == _thumbprint(leaf)
    assert "csrUrl" not in status
    # Nothing waits any more.
    again = product.api("POST", f"/onboardings/{instance}/certificate", data=signed)
    assert again.status_code == 409, again.text
    assert product.api("GET", f"/onboardings/{instance}/csr").status_code == 409
