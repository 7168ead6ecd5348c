"""Key Vault authentication and authorisation in the simulator: the 401 challenge, tokens of the wrong
tenant or audience, principals without vault access, the managed identity, api-version.

Only official SDKs: azure-identity credentials, azure-keyvault-* clients, and azure-core's
PipelineClient where a request must be sent without the Key Vault challenge policy."""

from __future__ import annotations

import uuid

import pytest
from azure.core import PipelineClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.rest import HttpRequest
from azure.identity import ManagedIdentityCredential
from azure.keyvault.certificates import CertificateClient, CertificatePolicy, KeyVaultCertificate

API = "2026-04-01"


def test_challenge_shape(simulator, vault_url, home):
    """A request without a token gets 401 and the challenge that names the vault's tenant."""
    with PipelineClient(base_url=vault_url) as client:
        response = client.send_request(HttpRequest("GET", f"{vault_url}certificates?api-version={API}"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{simulator.info["authorityHost"]}/{home["tenantId"]}", '
        'resource="https://vault.azure.net"')
    assert response.json() == {"error": {"code": "Unauthorized",
                                         "message": "AKV10000: Request is missing a Bearer or PoP token."}}


def _raw_client(vault_url, credential, scope="https://vault.azure.net/.default") -> PipelineClient:
    return PipelineClient(base_url=vault_url, policies=[BearerTokenCredentialPolicy(credential, scope)])


def test_api_version_is_required(vault_url, provisioner_credential):
    with _raw_client(vault_url, provisioner_credential) as client:
        missing = client.send_request(HttpRequest("GET", f"{vault_url}certificates"))
        unknown = client.send_request(HttpRequest("GET", f"{vault_url}certificates?api-version=1999-01-01"))
        fine = client.send_request(HttpRequest("GET", f"{vault_url}certificates?api-version={API}"))
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "BadParameter"
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == (
        "The specified version (1999-01-01) is not recognized. Consider using the latest supported version "
        f"({API}).")
    assert fine.status_code == 200
    assert "value" in fine.json()


def test_token_for_another_audience_is_refused(vault_url, provisioner_credential):
    with _raw_client(vault_url, provisioner_credential, "https://graph.microsoft.com/.default") as client:
        response = client.send_request(HttpRequest("GET", f"{vault_url}certificates?api-version={API}"))
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("AKV10022: Invalid audience.")
    assert "WWW-Authenticate" in response.headers


def test_managed_identity_uses_the_vault(vault_url, managed_identity_credential):
    client = CertificateClient(vault_url, managed_identity_credential, verify_challenge_resource=False)
    name = f"mi-{uuid.uuid4().hex[:10]}"
    made = client.begin_create_certificate(name, CertificatePolicy(issuer_name="Self", subject="CN=mi")).result()
    assert isinstance(made, KeyVaultCertificate)
    assert client.get_certificate(name).cer == made.cer


def test_token_from_another_tenant_is_refused(vault_url, managed_identity_env, customer, home):
    """The customer tenant's managed identity has a valid Key Vault token, but for the wrong tenant."""
    credential = ManagedIdentityCredential(client_id=customer["managedIdentity"]["clientId"])
    client = CertificateClient(vault_url, credential, verify_challenge_resource=False)
    with pytest.raises(ClientAuthenticationError) as error:
        client.get_certificate("anything")
    assert error.value.status_code == 401
    assert error.value.error.message.startswith("AKV10032: Invalid issuer.")
    assert home["tenantId"] in error.value.error.message


def test_the_challenge_tenant_binds_single_tenant_credentials(vault_url, simulator, customer):
    """azure-identity refuses to get a token for the challenge's (home) tenant with a credential that is
    configured for another tenant: the challenge names the vault's tenant."""
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(customer["tenantId"], customer["provisioner"]["clientId"],
                                        customer["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    client = CertificateClient(vault_url, credential, verify_challenge_resource=False)
    with pytest.raises(ClientAuthenticationError):
        client.get_certificate("anything")


def test_principal_without_vault_access_gets_403(vault_admin, vault_clients, home):
    vault_admin.admin("PUT", "/vault", {"access": ["managedIdentity"]})
    with pytest.raises(HttpResponseError) as error:
        vault_clients.certificates.get_certificate("anything")
    assert error.value.status_code == 403
    assert error.value.error.code == "Forbidden"
    assert error.value.error.innererror == {"code": "ForbiddenByRbac"}
    assert error.value.error.message.startswith("Caller is not authorized to perform action on resource.")
    assert home["provisioner"]["servicePrincipalId"] in error.value.error.message
    assert "Microsoft.KeyVault/vaults/certificates/read" in error.value.error.message
