"""Fixtures for tests that talk to the simulator (sandbox.azure) through the official SDKs.

The simulator itself (`simulator`, `home`, `customer`, `clean_faults`) is in tests/conftest.py: e2e tests use it too."""

from __future__ import annotations

import pytest

# -- Key Vault: credentials and clients (official SDKs only) --------------------------------------------
# Credentials are function-scoped on purpose: each has its own token cache, so a test that moves the
# sandbox clock past a token's lifetime cannot leave a stale token behind for the next test.


@pytest.fixture
def provisioner_credential(simulator, home):
    """ClientSecretCredential of the home tenant's seeded provisioner, against the simulator's authority."""
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                        home["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    yield credential
    credential.close()


@pytest.fixture
def managed_identity_env(simulator, monkeypatch):
    """The App Service managed-identity variables, pointing at the simulator's identity endpoint."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", simulator.info["identityEndpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", simulator.info["identityHeader"])
    monkeypatch.delenv("MSI_ENDPOINT", raising=False)
    monkeypatch.delenv("MSI_SECRET", raising=False)
    return simulator.info


@pytest.fixture
def managed_identity_credential(managed_identity_env):
    """ManagedIdentityCredential (system-assigned: the home tenant's managed identity)."""
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential()
    yield credential
    credential.close()


@pytest.fixture
def vault_url(simulator) -> str:
    """The simulated vault's URL (home tenant)."""
    return simulator.info["vaultUrl"]


@pytest.fixture
def vault_clients(vault_url, provisioner_credential):
    """CertificateClient, KeyClient and SecretClient for the provisioner. The vault is on loopback, so the
    challenge's resource (vault.azure.net) cannot match its host: verify_challenge_resource=False."""
    from types import SimpleNamespace

    from azure.keyvault.certificates import CertificateClient
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.secrets import SecretClient

    options = {"verify_challenge_resource": False}
    clients = SimpleNamespace(
        credential=provisioner_credential,
        certificates=CertificateClient(vault_url, provisioner_credential, **options),
        keys=KeyClient(vault_url, provisioner_credential, **options),
        secrets=SecretClient(vault_url, provisioner_credential, **options),
    )
    yield clients
    for client in (clients.certificates, clients.keys, clients.secrets):
        client.close()


@pytest.fixture
def vault_admin(simulator):
    """The vault's admin routes (access list, creation delay); restores the defaults afterwards."""
    import urllib.error

    try:
        simulator.admin("GET", "/vault")
    except urllib.error.HTTPError as exc:
        pytest.fail(f"GET /_sandbox/vault answered {exc.code}: sandbox.azure.keyvault.admin_routes must be "
                    "served on the login origin (server.py: apps['login'].add_routes(keyvault.admin_routes))")
    yield simulator
    simulator.admin("PUT", "/vault", {"access": None, "creationDelaySeconds": 0, "failNextCreations": 0,
                                      "creationPolls": 0, "enablePurgeProtection": False,
                                      "softDeleteRetentionInDays": 90})


# -- Microsoft Graph: msgraph-sdk clients against the simulator (official SDKs only) ----------------------
# msgraph-sdk is async-only and a client belongs to one event loop, so fixtures hand out factories that
# build a client (and its credential) inside the test's own `asyncio.run`.


class GraphKit:
    """Builds msgraph-sdk clients for the simulator's Graph origin, and test certificates on its clock."""

    GRAPH_SCOPE = "https://graph.microsoft.com/.default"

    def __init__(self, simulator) -> None:
        self.simulator = simulator
        self.info = simulator.info

    def secret_credential(self, tenant: dict, identity: str = "provisioner"):
        """azure.identity.aio.ClientSecretCredential of a seeded identity (provisioner / consentApp)."""
        from azure.identity.aio import ClientSecretCredential

        seed = tenant[identity]
        return ClientSecretCredential(tenant["tenantId"], seed["clientId"], seed["clientSecret"],
                                      authority=self.info["authorityHost"], disable_instance_discovery=True)

    def certificate_credential(self, tenant_id: str, client_id: str, pem: bytes):
        """azure.identity.aio.CertificateCredential for an app whose certificate (with key) is `pem`."""
        from azure.identity.aio import CertificateCredential

        return CertificateCredential(tenant_id, client_id, certificate_data=pem,
                                     authority=self.info["authorityHost"], disable_instance_discovery=True)

    def assertion_credential(self, tenant_id: str, client_id: str, certificate: TestCertificate):
        """azure.identity.aio.ClientAssertionCredential whose assertions are signed here (as Key Vault would)."""
        import uuid

        import jwt
        from azure.identity.aio import ClientAssertionCredential

        token_url = f"{self.info['authorityHost']}/{tenant_id}/oauth2/v2.0/token"

        def assertion() -> str:
            now = int(self.sandbox_epoch())
            claims = {"aud": token_url, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
                      "nbf": now, "iat": now, "exp": now + 600}
            return jwt.encode(claims, certificate.private_key, algorithm="RS256",
                              headers={"x5t": certificate.x5t})

        return ClientAssertionCredential(tenant_id, client_id, assertion,
                                         authority=self.info["authorityHost"], disable_instance_discovery=True)

    def client(self, credential):
        """A GraphServiceClient whose base URL is the simulator and whose token goes only to its host.

        msgraph-sdk 1.65: the auth provider derives the scope from the request host unless `scopes` is given,
        and attaches tokens only to `allowed_hosts`; the adapter's `base_url` replaces graph.microsoft.com.
        The HTTP client keeps the SDK's default middleware (retry handler, redirect, URL replace)."""
        import ssl
        from urllib.parse import urlsplit

        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from msgraph import GraphRequestAdapter, GraphServiceClient
        from msgraph.graph_request_adapter import options
        from msgraph_core import GraphClientFactory

        host = urlsplit(self.info["graphUrl"]).hostname
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[self.GRAPH_SCOPE], allowed_hosts=[host])
        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=self.info["caBundle"]), timeout=30)
        http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = self.info["graphUrl"]
        return GraphServiceClient(request_adapter=adapter)

    # -- sandbox clock and certificates -----------------------------------------------------------
    def sandbox_epoch(self) -> float:
        """Sandbox time (POSIX seconds), read from the simulator."""
        return float(self.simulator.admin("GET", "/clock")["epochSeconds"])

    def certificate(self, common_name: str = "certauth test", days: float = 365,
                    not_before_offset: float = -3600) -> TestCertificate:
        """A self-signed RSA-2048 certificate valid from sandbox now + offset for `days`."""
        return TestCertificate.create(common_name, self.sandbox_epoch() + not_before_offset, days)


class TestCertificate:
    """A self-signed certificate with its private key (DER, PEM, thumbprints)."""

    __test__ = False  # not a pytest test class

    def __init__(self, certificate, private_key) -> None:
        import base64
        import hashlib

        from cryptography.hazmat.primitives import serialization

        self.certificate = certificate
        self.private_key = private_key
        self.der = certificate.public_bytes(serialization.Encoding.DER)
        self.pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()) + \
            certificate.public_bytes(serialization.Encoding.PEM)
        self.sha1 = hashlib.sha1(self.der).digest()
        self.x5t = base64.urlsafe_b64encode(self.sha1).decode().rstrip("=")
        self.not_before = certificate.not_valid_before_utc
        self.not_after = certificate.not_valid_after_utc

    @classmethod
    def create(cls, common_name: str, not_before_epoch: float, days: float) -> TestCertificate:
        from datetime import UTC, datetime, timedelta

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = datetime.fromtimestamp(int(not_before_epoch), tz=UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(start)
                       .not_valid_after(start + timedelta(days=days)).sign(key, hashes.SHA256()))
        return cls(certificate, key)


@pytest.fixture
def graph_kit(simulator) -> GraphKit:
    """Factories for msgraph-sdk clients, credentials and certificates (see GraphKit)."""
    return GraphKit(simulator)


@pytest.fixture
def restore_grants(simulator):
    """Give every seeded provisioner its default Graph roles back after a test that changes them."""
    yield simulator
    for tenant in simulator.info["tenants"]:
        simulator.grant(tenant["tenantId"], simulator.info["defaultProvisionerRoles"])


# -- helpers shared by the Graph tests (msgraph-sdk is async; each test runs its coroutine) --------------

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


def run(coro):
    """Run a test's coroutine on a fresh event loop (one msgraph client per loop)."""
    import asyncio

    return asyncio.run(coro)


def prefer_create():
    """RequestConfiguration with `Prefer: create-if-missing` (the upserts)."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    config = RequestConfiguration()
    config.headers.add("Prefer", "create-if-missing")
    return config


def unique(prefix: str = "certauth-test") -> str:
    """A uniqueName no other test uses."""
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def resource_sp(client, app_id: str):
    """The resource SP found by appId filter, as the product does (never hard-coded per tenant)."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.service_principals.service_principals_request_builder import (
        ServicePrincipalsRequestBuilder,
    )

    page = await client.service_principals.get(RequestConfiguration(
        query_parameters=ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=f"appId eq '{app_id}'")))
    [sp] = page.value
    return sp


def role_id(sp, value: str):
    """The id of the app role `value` on a resource service principal."""
    return next(r.id for r in sp.app_roles if r.value == value)


@pytest.fixture
def product_env(simulator, azurite, monkeypatch):
    """The product's settings pointed at the sandbox, as make up wires them (shared/ called in this process)."""
    from shared.settings import get_settings

    info = simulator.info
    values = {
        "GRAPH_BASE_URL": info["graphUrl"], "AZURE_AUTHORITY_HOST": info["authorityHost"],
        "KEY_VAULT_URL": info["vaultUrl"], "TABLES_CONNECTION_STRING": azurite.connection_string,
        "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE": "false", "AZURE_INSTANCE_DISCOVERY": "false",
        "CERTAUTH_PROVISIONER_CLIENT_ID": simulator.home["consentApp"]["clientId"],
        "CERTAUTH_VERIFIER_CLIENT_ID": simulator.home["verifierApp"]["clientId"],
        "CERTAUTH_HOME_TENANT_ID": info["homeTenantId"], "IDENTITY_ENDPOINT": info["identityEndpoint"],
        "IDENTITY_HEADER": info["identityHeader"], "EXCHANGE_ADMIN_URL": info["exchangeUrl"],
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def directory_steps(onboarding, certificate: dict, now) -> dict:
    """The automatic method's directory steps after the certificate, in order, each asserted ok: what each answered
    (app, key, sp, consent, role)."""
    import asyncio

    app = asyncio.run(onboarding.ensure_application())
    assert app["ok"], app
    key = asyncio.run(onboarding.ensure_key_credential(app, certificate))
    assert key["ok"], key
    sp = asyncio.run(onboarding.ensure_service_principal(app, now))
    assert sp["ok"], sp
    consent = asyncio.run(onboarding.grant_permissions(sp["servicePrincipalId"]))
    assert consent["ok"], consent
    role = asyncio.run(onboarding.ensure_directory_role(sp["servicePrincipalId"], consent["changes"]))
    assert role["ok"], role
    return {"app": app, "key": key, "sp": sp, "consent": consent, "role": role}
