"""Key Vault as strict as Azure: lifetime actions on the sandbox clock, creations that take polls, the pending
operation's CSR and merge, purge protection, the api-versions Microsoft's clients send, and unknown routes.

Only the official SDKs and plain HTTPS; the sandbox clock is moved, never waited for.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificateClient, CertificatePolicy, KeyVaultCertificate
from azure.keyvault.keys import KeyClient
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from shared.keyvault import CertificateVault

DAY = 86400
VAULT_SCOPE = "https://vault.azure.net/.default"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sandbox_now(simulator) -> datetime:
    return datetime.fromtimestamp(simulator.advance_clock(0)["epochSeconds"], tz=UTC)


def notifications(simulator, name: str) -> list[dict]:
    return simulator.admin("GET", f"/vault/notifications?certificate={name}")["value"]


class RawVault:
    """Plain HTTPS to the simulated vault, with or without the provisioner's token."""

    def __init__(self, simulator, credential) -> None:
        self.base = simulator.info["vaultUrl"].rstrip("/")
        self.context = ssl.create_default_context(cafile=simulator.info["caBundle"])
        self.credential = credential

    def call(self, method: str, path: str, body: dict | None = None, token: bool = True):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {self.credential.get_token(VAULT_SCOPE).token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def raw_vault(simulator, provisioner_credential) -> RawVault:
    return RawVault(simulator, provisioner_credential)


@pytest.fixture
def vault_settings(vault_admin):
    """The vault admin routes; creation polls and soft-delete settings restored afterwards."""
    yield vault_admin
    vault_admin.admin("PUT", "/vault", {"creationPolls": 0, "enablePurgeProtection": False,
                                        "softDeleteRetentionInDays": 90})


# -- 1. lifetime actions ---------------------------------------------------------------------------------

def test_default_policy_auto_renews_and_the_products_policy_only_notifies(simulator, vault_clients, vault_url,
                                                                           provisioner_credential):
    client = vault_clients.certificates
    default_name, product_name = unique("autorenew"), unique("product")

    # Key Vault's default policy: no lifetime actions sent, AutoRenew at 80 % shown in the policy returned.
    made = client.begin_create_certificate(default_name, CertificatePolicy.get_default()).result()
    assert isinstance(made, KeyVaultCertificate)
    [action] = made.policy.lifetime_actions
    assert (action.action, action.lifetime_percentage, action.days_before_expiry) == ("AutoRenew", 80, None)

    # The product's certificate step, as tests/integration/test_keyvault_certificate_step.py calls it.
    vault = CertificateVault(vault_url, provisioner_credential, verify_challenge_resource=False)
    try:
        info, created = vault.ensure(product_name, "CN=certauth product", 12, 2048, False, sandbox_now(simulator))
    finally:
        vault.close()
    assert created
    [product_action] = client.get_certificate_policy(product_name).lifetime_actions
    assert product_action.action == "EmailContacts"

    # Nothing is due before 80 % of the lifetime.
    lifetime = made.properties.expires_on - made.properties.not_before
    simulator.advance_clock((made.properties.not_before + lifetime * 0.79 - sandbox_now(simulator)).total_seconds())
    assert len(list(client.list_properties_of_certificate_versions(default_name))) == 1
    assert notifications(simulator, product_name) == []

    # Past 80 %: the next request sees the renewed version, with a new key and a fresh validity.
    simulator.advance_clock(lifetime.total_seconds() * 0.02)
    renewed_at = sandbox_now(simulator)
    versions = list(client.list_properties_of_certificate_versions(default_name))
    assert len(versions) == 2
    latest = client.get_certificate(default_name)
    assert latest.properties.version != made.properties.version
    assert abs((latest.properties.not_before - renewed_at).total_seconds()) < 60
    assert latest.properties.expires_on - latest.properties.not_before >= timedelta(days=365)
    old_key = x509.load_der_x509_certificate(made.cer).public_key().public_numbers()
    new_key = x509.load_der_x509_certificate(latest.cer).public_key().public_numbers()
    assert old_key != new_key
    assert [n["actionType"] for n in notifications(simulator, default_name)] == ["AutoRenew"]

    # The product's certificate is not renewed behind certauth's back; its contacts are told, once.
    product_versions = list(client.list_properties_of_certificate_versions(product_name))
    assert [v.version for v in product_versions] == [info.version]
    [told] = notifications(simulator, product_name)
    assert (told["actionType"], told["version"], told["trigger"]) == ("EmailContacts", info.version,
                                                                     {"lifetime_percentage": 80})
    simulator.advance_clock(DAY)
    client.get_certificate(product_name)
    assert len(notifications(simulator, product_name)) == 1


def test_lifetime_action_triggers_are_checked(vault_clients):
    from azure.keyvault.certificates import CertificatePolicyAction, LifetimeAction

    client = vault_clients.certificates
    for action, fragment in ((LifetimeAction(CertificatePolicyAction.auto_renew, lifetime_percentage=100),
                              "lifetime_percentage"),
                             (LifetimeAction(CertificatePolicyAction.email_contacts, days_before_expiry=12 * 27 + 1),
                              "days_before_expiry")):
        policy = CertificatePolicy(issuer_name="Self", subject="CN=bad trigger", validity_in_months=12,
                                   lifetime_actions=[action])
        with pytest.raises(HttpResponseError) as refused:
            client.begin_create_certificate(unique("trigger"), policy)
        assert refused.value.status_code == 400
        assert refused.value.error.code == "BadParameter"
        assert fragment in refused.value.error.message


# -- 2. creations that take polls, 3. the CSR and merge ----------------------------------------------------

def test_the_sdk_poller_waits_for_a_creation_that_takes_a_poll_more(simulator, vault_clients, vault_settings):
    name = unique("polls")
    vault_settings.admin("PUT", "/vault", {"creationPolls": 1})
    mark = simulator.requests_since()["next"]
    result = vault_clients.certificates.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert isinstance(result, KeyVaultCertificate)
    polls = [r for r in simulator.requests_since(mark)["requests"]
             if r["method"] == "GET" and r["path"].startswith(f"/certificates/{name}/pending")]
    assert len(polls) == 2  # one inProgress (the SDK then sleeps 5 s), one completed


def test_raw_polls_and_the_csr_of_the_new_key(raw_vault, vault_settings):
    name = unique("rawpolls")
    vault_settings.admin("PUT", "/vault", {"creationPolls": 2})
    status, _, text = raw_vault.call("POST", f"/certificates/{name}/create?api-version=7.6",
                                           {"policy": {"x509_props": {"subject": "CN=raw polls"}}})
    assert status == 202
    created = json.loads(text)
    assert created["status"] == "inProgress"
    csr = x509.load_der_x509_csr(base64.b64decode(created["csr"]))
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "raw polls"

    pending = f"/certificates/{name}/pending?api-version=7.6"
    answers = [json.loads(raw_vault.call("GET", pending)[2])["status"] for _ in range(3)]
    assert answers == ["inProgress", "inProgress", "completed"]
    status, _, text = raw_vault.call("GET", f"/certificates/{name}/?api-version=7.6")
    assert status == 200
    issued = x509.load_der_x509_certificate(base64.b64decode(json.loads(text)["cer"]))
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert issued.public_key().public_bytes(*spki) == csr.public_key().public_bytes(*spki)


def _ca_sign(csr: x509.CertificateSigningRequest, now: datetime) -> bytes:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certauth test CA")])
    signed = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name)
              .public_key(csr.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=180))
              .sign(ca_key, hashes.SHA256()))
    return signed.public_bytes(serialization.Encoding.DER)


def test_issuer_unknown_waits_for_the_merge_of_the_signed_certificate(simulator, vault_clients):
    client = vault_clients.certificates
    name = unique("merge")
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=certauth customer CA", validity_in_months=6)
    client.begin_create_certificate(name, policy)  # its poller keeps polling until the merge
    operation = client.get_certificate_operation(name)
    assert operation.status == "inProgress"
    assert operation.issuer_name == "Unknown"
    csr = x509.load_der_x509_csr(operation.csr)
    simulator.advance_clock(DAY)
    assert client.get_certificate_operation(name).status == "inProgress"  # no CA: it waits

    stranger = x509.CertificateSigningRequestBuilder().subject_name(csr.subject).sign(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), hashes.SHA256())
    with pytest.raises(HttpResponseError) as mismatch:
        client.merge_certificate(name, [_ca_sign(stranger, sandbox_now(simulator))])
    assert mismatch.value.status_code == 400
    assert mismatch.value.error.code == "BadParameter"

    signed = _ca_sign(csr, sandbox_now(simulator))
    merged = client.merge_certificate(name, [signed])
    assert merged.cer == signed
    assert client.get_certificate_operation(name).status == "completed"
    assert client.get_certificate(name).properties.version == merged.properties.version


# -- 4. purge protection --------------------------------------------------------------------------------

def test_purge_protection_keeps_deleted_certificates_until_their_purge_date(vault_clients, vault_settings):
    client = vault_clients.certificates
    vault_settings.admin("PUT", "/vault", {"enablePurgeProtection": True, "softDeleteRetentionInDays": 30})
    name = unique("protected")
    made = client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert made.properties.recovery_level == "CustomizedRecoverable"
    assert made.properties.recoverable_days == 30

    deleted = client.begin_delete_certificate(name).result()
    assert deleted.scheduled_purge_date - deleted.deleted_on == timedelta(days=30)
    with pytest.raises(HttpResponseError) as refused:
        client.purge_deleted_certificate(name)
    assert refused.value.status_code == 403
    assert refused.value.error.code == "Forbidden"
    assert "purge protection is enabled" in refused.value.error.message
    assert client.get_deleted_certificate(name).name == name

    vault_settings.admin("PUT", "/vault", {"enablePurgeProtection": False, "softDeleteRetentionInDays": 90})
    assert client.get_deleted_certificate(name).properties.recovery_level == "Recoverable+Purgeable"
    client.purge_deleted_certificate(name)
    with pytest.raises(HttpResponseError):
        client.get_deleted_certificate(name)


# -- 5. api-versions, 6. unknown routes and the list routes az uses -----------------------------------------

def test_the_api_versions_microsofts_clients_send(simulator, vault_clients, vault_url, provisioner_credential,
                                                  raw_vault):
    name = unique("apiversions")
    made = vault_clients.certificates.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    options = {"verify_challenge_resource": False}
    # azure-cli's pins: certificates and secrets 7.4, keys 7.6-preview.2 (keyvault/_client_factory.py).
    certificates = CertificateClient(vault_url, provisioner_credential, api_version="7.4", **options)
    keys = KeyClient(vault_url, provisioner_credential, api_version="7.6-preview.2", **options)
    secrets = SecretClient(vault_url, provisioner_credential, api_version="7.4", **options)
    try:
        assert certificates.get_certificate(name).cer == made.cer
        assert keys.get_key(name).id == made.key_id
        assert secrets.get_secret(name).properties.content_type == "application/x-pkcs12"
    finally:
        for client in (certificates, keys, secrets):
            client.close()

    status, _, text = raw_vault.call("GET", f"/certificates/{name}/?api-version=7.9")
    assert status == 400
    assert json.loads(text)["error"] == {
        "code": "BadParameter",
        "message": "The specified version (7.9) is not recognized. Consider using the latest supported version "
                   "(2026-04-01)."}


def test_unknown_routes_challenge_first_then_answer_as_key_vault(raw_vault):
    status, headers, _ = raw_vault.call("GET", "/settings?api-version=7.6", token=False)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer authorization=")
    status, headers, text = raw_vault.call("GET", "/settings?api-version=7.6")
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert "404 - File or directory not found." in text
    status, _, _ = raw_vault.call("PUT", "/certificates/some-name/nothing?api-version=7.6", {})
    assert status == 404


def test_key_and_secret_lists(vault_clients):
    name = unique("listed")
    made = vault_clients.certificates.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert name in {k.name for k in vault_clients.keys.list_properties_of_keys()}
    assert name in {s.name for s in vault_clients.secrets.list_properties_of_secrets()}
    [key_version] = vault_clients.keys.list_properties_of_key_versions(name)
    assert key_version.version == made.properties.version
    [secret_version] = vault_clients.secrets.list_properties_of_secret_versions(name)
    assert secret_version.version == made.properties.version
    assert secret_version.managed is True
