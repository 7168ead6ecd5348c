"""Microsoft's Azure CLI against the simulator: sign-in, Microsoft Graph and Key Vault commands.

Opt-in (`make test-azcli`, which installs the CLI in .venv-azcli and sets CERTAUTH_AZ_CLI): the CLI is a
second, independent client written by Microsoft, so what it needs from Entra ID, Graph and Key Vault is
what Azure does. Each test runs commands as a person would type them and asserts the exit code and the
output, and where it matters what the simulator now holds. The tests run in file order and share the
objects they create (an application, its service principal, a vault certificate).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import uuid
from pathlib import Path

import jwt
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from .conftest import AZ_CLI, VAULT_NAME, AzCli

if not AZ_CLI:
    pytest.skip("set CERTAUTH_AZ_CLI to an az executable (make test-azcli)", allow_module_level=True)

GRAPH = "https://graph.microsoft.com"
RUN = uuid.uuid4().hex[:8]
APP_NAME = f"azcli-app-{RUN}"
# What the tests create, shared in file order: appId, objectId, spId, certFile.
created: dict[str, str] = {}


def _needs(*keys: str) -> list[str]:
    """Values an earlier test created; fail (not skip) when it did not."""
    missing = [k for k in keys if k not in created]
    if missing:
        pytest.fail(f"an earlier command failed, so there is no {', '.join(missing)} (see that test)")
    return [created[k] for k in keys]


@pytest.fixture(scope="module")
def provisioner(simulator) -> dict:
    """The home tenant's seeded provisioner (client secret), as `az login` is given it."""
    home = simulator.home
    return {"tenantId": home["tenantId"], **home["provisioner"]}


def _login_secret(az: AzCli, provisioner: dict, config_dir: Path | None = None):
    # --skip-subscription-discovery: the sandbox has no Azure Resource Manager to list subscriptions from.
    return az.run("login", "--service-principal", "-u", provisioner["clientId"], "-p", provisioner["clientSecret"],
                  "--tenant", provisioner["tenantId"], "--allow-no-subscriptions", "--skip-subscription-discovery",
                  config_dir=config_dir)


@pytest.fixture(scope="module")
def secret_login(az, provisioner):
    """`az login` as the provisioner with its client secret, once for the module."""
    return _login_secret(az, provisioner)


@pytest.fixture
def signed_in(secret_login):
    """The commands below need the provisioner signed in."""
    if secret_login.returncode != 0:
        pytest.fail(f"`{secret_login.command()}` failed (test_login_with_client_secret), so this command cannot "
                    f"run: {secret_login.error()}")
    return secret_login


@pytest.fixture(scope="module")
def vault_certificate(simulator, provisioner) -> dict:
    """A Key Vault certificate made with the Python SDK (as tests/e2e's `vault` fixture does); the CLI reads it.
    The provisioner may use the vault: it is in the vault's default access list (sandbox/azure/keyvault.py)."""
    access = simulator.admin("GET", "/vault")["access"]
    assert provisioner["servicePrincipalId"] in access
    credential = ClientSecretCredential(provisioner["tenantId"], provisioner["clientId"], provisioner["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    client = CertificateClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False)
    name = f"azcli-{RUN}"
    certificate = client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    client.close()
    return {"name": name, "cer": bytes(certificate.cer), "thumbprint": bytes(certificate.properties.x509_thumbprint)}


# -- sign-in ---------------------------------------------------------------------------------------------

def test_login_with_client_secret(secret_login, provisioner):
    """az login --service-principal -p <secret>: a tenant-level account for the provisioner in AzureCloud."""
    assert secret_login.returncode == 0, secret_login.describe()
    accounts = secret_login.json()
    assert len(accounts) == 1, secret_login.describe()
    account = accounts[0]
    assert account["tenantId"] == provisioner["tenantId"]
    assert account["cloudName"] == "AzureCloud"
    assert account["user"] == {"name": provisioner["clientId"], "type": "servicePrincipal"}


def test_get_access_token_for_graph(az, signed_in, provisioner):
    """az account get-access-token --resource Graph: a token issued to the provisioner, for Graph, in its tenant."""
    result = az.ok("account", "get-access-token", "--resource", GRAPH)
    token = result.json()
    assert token["tokenType"] == "Bearer"
    assert token["tenant"] == provisioner["tenantId"]
    claims = jwt.decode(token["accessToken"], options={"verify_signature": False})
    assert claims["aud"].rstrip("/") == GRAPH
    assert claims["tid"] == provisioner["tenantId"]
    assert claims["appid"] == provisioner["clientId"]
    assert "Application.ReadWrite.All" in claims["roles"]


def test_rest_get_organization(az, signed_in, provisioner):
    """az rest GET /v1.0/organization: the CLI picks Graph's token for a graph.microsoft.com URL."""
    result = az.ok("rest", "--method", "get", "--url", f"{GRAPH}/v1.0/organization")
    organizations = result.json()["value"]
    assert [o["id"] for o in organizations] == [provisioner["tenantId"]]


# -- applications and service principals ------------------------------------------------------------------

def test_ad_app_create(az, signed_in, simulator, provisioner):
    """az ad app create --display-name: the application exists in the tenant under that name."""
    app = az.ok("ad", "app", "create", "--display-name", APP_NAME).json()
    assert app["displayName"] == APP_NAME
    uuid.UUID(app["appId"])
    created.update(appId=app["appId"], objectId=app["id"])
    state = simulator.tenant_state(provisioner["tenantId"])
    assert [a["displayName"] for a in state["applications"] if a["appId"] == app["appId"]] == [APP_NAME]


def test_ad_app_credential_reset_create_cert(az, signed_in, simulator, provisioner):
    """az ad app credential reset --create-cert --append: a new self-signed certificate, its public key on the
    app, its private key in a PEM file the CLI writes."""
    (app_id,) = _needs("appId")
    result = az.ok("ad", "app", "credential", "reset", "--id", app_id, "--create-cert", "--append")
    output = result.json()
    assert output["appId"] == app_id
    assert output["tenant"] == provisioner["tenantId"]
    pem = Path(output["fileWithCertAndPrivateKey"]).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    serialization.load_pem_private_key(pem, password=None)  # the file holds the key too
    app = next(a for a in simulator.tenant_state(provisioner["tenantId"])["applications"] if a["appId"] == app_id)
    # Graph defaults customKeyIdentifier to the certificate's SHA-1 thumbprint (keycredential resource page).
    thumbprint = base64.b64encode(certificate.fingerprint(hashes.SHA1())).decode()
    assert [k["customKeyIdentifier"] for k in app["keyCredentials"]] == [thumbprint], app["keyCredentials"]
    created["certFile"] = output["fileWithCertAndPrivateKey"]


def test_ad_sp_create(az, signed_in, simulator, provisioner):
    """az ad sp create --id <appId>: the application's service principal."""
    (app_id,) = _needs("appId")
    sp = az.ok("ad", "sp", "create", "--id", app_id).json()
    assert sp["appId"] == app_id
    assert sp["displayName"] == APP_NAME
    created["spId"] = sp["id"]
    state = simulator.tenant_state(provisioner["tenantId"])
    assert [s["id"] for s in state["servicePrincipals"] if s["appId"] == app_id] == [sp["id"]]


def test_ad_sp_show(az, signed_in):
    """az ad sp show --id <appId>: found by its servicePrincipalNames (the CLI's lambda filter)."""
    app_id, sp_id = _needs("appId", "spId")
    sp = az.ok("ad", "sp", "show", "--id", app_id).json()
    assert (sp["id"], sp["appId"]) == (sp_id, app_id)


def test_ad_app_list_filter(az, signed_in):
    """az ad app list --filter "displayName eq '…'": exactly the application created above."""
    (app_id,) = _needs("appId")
    apps = az.ok("ad", "app", "list", "--filter", f"displayName eq '{APP_NAME}'").json()
    assert [a["appId"] for a in apps] == [app_id]


def test_login_with_certificate_from_credential_reset(az, provisioner):
    """az login --certificate with the PEM that `credential reset --create-cert` wrote (another profile)."""
    app_id, cert_file, _ = _needs("appId", "certFile", "spId")
    profile = az.new_profile()
    login = az.run("login", "--service-principal", "-u", app_id, "--certificate", cert_file, "--tenant",
                   provisioner["tenantId"], "--allow-no-subscriptions", "--skip-subscription-discovery",
                   config_dir=profile)
    assert login.returncode == 0, login.describe()
    token = az.ok("account", "get-access-token", "--resource", GRAPH, config_dir=profile).json()
    claims = jwt.decode(token["accessToken"], options={"verify_signature": False})
    assert claims["appid"] == app_id


def _b64(text: str) -> bytes:
    """Decode base64 or base64url, padded or not (the CLI prints JWK members and signatures as it gets them)."""
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text) if "-" in text or "_" in text else base64.b64decode(text)


def _self_signed(common_name: str) -> tuple[bytes, x509.Certificate]:
    """A key and a self-signed certificate valid from an hour ago; PEM of both (key first, as the CLI reads it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + certificate.public_bytes(serialization.Encoding.PEM)
    return pem, certificate


def test_login_with_certificate(az, signed_in, provisioner, tmp_path):
    """az login --certificate with a PEM whose public key was registered on a new app through Graph
    (`az rest` PATCH keyCredentials), independent of `credential reset`."""
    name = f"azcli-certlogin-{RUN}"
    app = az.ok("ad", "app", "create", "--display-name", name).json()
    pem, certificate = _self_signed(name)
    der = certificate.public_bytes(serialization.Encoding.DER)
    body = {"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "displayName": name,
                                "key": base64.b64encode(der).decode()}]}
    az.ok("rest", "--method", "patch", "--url", f"{GRAPH}/v1.0/applications/{app['id']}",
          "--headers", "Content-Type=application/json", "--body", json.dumps(body))
    az.ok("ad", "sp", "create", "--id", app["appId"])
    pem_file = tmp_path / "login.pem"
    pem_file.write_bytes(pem)
    profile = az.new_profile()
    login = az.run("login", "--service-principal", "-u", app["appId"], "--certificate", str(pem_file), "--tenant",
                   provisioner["tenantId"], "--allow-no-subscriptions", "--skip-subscription-discovery",
                   config_dir=profile)
    assert login.returncode == 0, login.describe()
    assert login.json()[0]["user"] == {"name": app["appId"], "type": "servicePrincipal"}
    token = az.ok("account", "get-access-token", "--resource", GRAPH, config_dir=profile).json()
    claims = jwt.decode(token["accessToken"], options={"verify_signature": False})
    assert (claims["appid"], claims["tid"]) == (app["appId"], provisioner["tenantId"])


# -- Key Vault ---------------------------------------------------------------------------------------------

def test_keyvault_certificate_show(az, signed_in, vault_certificate):
    """az keyvault certificate show --vault-name: the certificate the SDK created, with its thumbprint and DER."""
    result = az.ok("keyvault", "certificate", "show", "--vault-name", VAULT_NAME, "-n", vault_certificate["name"])
    shown = result.json()
    assert shown["name"] == vault_certificate["name"]
    assert shown["x509ThumbprintHex"] == vault_certificate["thumbprint"].hex().upper()
    assert base64.b64decode(shown["cer"]) == vault_certificate["cer"]


def test_keyvault_key_show(az, signed_in, vault_certificate):
    """az keyvault key show: the certificate's key, public part only, the same modulus as the certificate."""
    key = az.ok("keyvault", "key", "show", "--vault-name", VAULT_NAME, "-n", vault_certificate["name"]).json()
    public = x509.load_der_x509_certificate(vault_certificate["cer"]).public_key()
    assert int.from_bytes(_b64(key["key"]["n"]), "big") == public.public_numbers().n
    assert key["key"].get("d") is None


def test_keyvault_key_sign(az, signed_in, vault_certificate):
    """az keyvault key sign -a RS256 --digest: a signature the certificate's public key verifies."""
    digest = hashlib.sha256(f"azcli {RUN}".encode()).digest()
    result = az.ok("keyvault", "key", "sign", "--vault-name", VAULT_NAME, "-n", vault_certificate["name"],
                   "-a", "RS256", "--digest", base64.b64encode(digest).decode())
    output = result.json()
    assert output["algorithm"] == "RS256"
    public = x509.load_der_x509_certificate(vault_certificate["cer"]).public_key()
    public.verify(_b64(output["signature"]), digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def test_keyvault_key_and_secret_list(az, signed_in, vault_certificate):
    """az keyvault key list / secret list --include-managed: a certificate's key and secret are listed under its
    name, marked managed (without the flag the CLI leaves managed ones out: keyvault/custom.py list_keys)."""
    keys = az.ok("keyvault", "key", "list", "--vault-name", VAULT_NAME, "--include-managed").json()
    assert [k.get("managed") for k in keys if k["name"] == vault_certificate["name"]] == [True], keys
    secrets = az.ok("keyvault", "secret", "list", "--vault-name", VAULT_NAME, "--include-managed").json()
    assert [s.get("managed") for s in secrets if s["name"] == vault_certificate["name"]] == [True], secrets


# -- sign-out (last: it ends the module's session) -----------------------------------------------------------

def test_logout(az, signed_in):
    """az logout: no account is left in the profile."""
    az.ok("logout")
    assert az.ok("account", "list").json() == []


# The CLI's own housekeeping, refused by the proxy and tolerated by the CLI: on its first run in a profile it
# looks for newer CLI versions (azure/cli/core/util.py: handle_version_update → AME_STORAGE_BASE_URL).
CLI_HOUSEKEEPING = {"azcliprod.blob.core.windows.net:443"}


def test_no_request_left_the_sandbox(az, intercept_proxy):
    """Every Azure host the CLI asked for was one the sandbox serves: the proxy refused only the CLI's
    version check (a command that needs another service, e.g. Resource Manager, shows up here)."""
    assert any(d.action == "intercepted" for d in intercept_proxy.log), "the CLI sent nothing through the proxy"
    refused = sorted({d.target for d in intercept_proxy.log if d.action == "refused"} - CLI_HOUSEKEEPING)
    assert refused == []
