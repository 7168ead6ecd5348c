"""shared.keyvault against the simulated vault: a customer's PFX imported as non-exportable, and a CSR for the
customer's CA merged with the certificate a throw-away CA (trustme) signed."""

from __future__ import annotations

import hashlib

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.keyvault import CertificateRejected, CertificateVault, NothingPending
from tests.customer_pfx import make_pfx, sign_for_csr, sign_other_key, utc
from tests.integration.conftest import unique


@pytest.fixture
def vault(simulator, vault_url, provisioner_credential):
    client = CertificateVault(vault_url, provisioner_credential, verify_challenge_resource=False)
    yield client
    client.close()


def _now(simulator):
    return utc(float(simulator.admin("GET", "/clock")["epochSeconds"]))


def test_a_pfx_is_imported_non_exportable_once(simulator, vault, vault_clients):
    name, now = unique("pfx"), _now(simulator)
    pfx, certificate = make_pfx("Imp0rt!pw", now)
    info, imported = vault.import_pfx(name, pfx, "Imp0rt!pw", now)
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    assert (info.thumbprint, info.exportable, imported) == (thumbprint, False, True)
    policy = vault_clients.certificates.get_certificate_policy(name)
    assert (policy.exportable, str(policy.key_type).lower().endswith("rsa"), policy.key_size) == (False, True, 2048)
    again, imported_again = vault.import_pfx(name, pfx, "Imp0rt!pw", now)
    assert (again.version, imported_again) == (info.version, False)
    assert len(list(vault_clients.certificates.list_properties_of_certificate_versions(name))) == 1


def test_a_bad_pfx_never_reaches_the_vault(simulator, vault, vault_clients):
    from azure.core.exceptions import ResourceNotFoundError

    name, now = unique("pfx-bad"), _now(simulator)
    pfx, _ = make_pfx("right", now)
    with pytest.raises(CertificateRejected, match="wrong password"):
        vault.import_pfx(name, pfx, "wrong", now)
    with pytest.raises(ResourceNotFoundError):
        vault_clients.certificates.get_certificate(name)


def test_a_pfx_that_expires_on_the_sandbox_clock_is_refused(simulator, vault):
    name, now = unique("pfx-exp"), _now(simulator)
    pfx, _ = make_pfx("pw", now, days=2)
    simulator.advance_clock(3 * 86400)
    with pytest.raises(CertificateRejected) as caught:
        vault.import_pfx(name, pfx, "pw", _now(simulator))
    assert caught.value.code == "CertificateExpired"


def test_a_csr_is_merged_with_the_certificate_the_customer_ca_signed(simulator, vault):
    name, now = unique("csr"), _now(simulator)
    csr_der = vault.request_csr(name, 'CN="certauth csr"', 12, 2048)
    state = vault.csr_state(name)
    assert (state.status, state.csr_der) == ("pending", csr_der)
    assert vault.current(name) is None
    ca = trustme.CA()
    with pytest.raises(CertificateRejected) as caught:
        vault.merge(name, sign_other_key(ca, csr_der, now))
    assert (caught.value.field, caught.value.code) == ("body", "CertificateKeyMismatch")
    assert vault.csr_state(name).status == "pending"  # the refused certificate changed nothing
    signed = sign_for_csr(ca, csr_der, now)
    info = vault.merge(name, signed)
    leaf = x509.load_pem_x509_certificates(signed)[0]
    assert info.thumbprint == hashlib.sha1(leaf.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    assert not info.exportable
    assert vault.csr_state(name).status == "merged"
    assert vault.current(name).thumbprint == info.thumbprint
    with pytest.raises(NothingPending):
        vault.merge(name, signed)
