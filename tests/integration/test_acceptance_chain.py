"""Issue 2's acceptance chain, with the official SDKs only: Key Vault makes a certificate, Graph registers an
app carrying it, CertificateCredential for that app gets a token whose roles are what was granted, and the
managed-identity endpoint gives the provisioner a token."""

from __future__ import annotations

import base64

import jwt
from azure.identity import ManagedIdentityCredential
from azure.keyvault.certificates import CertificatePolicy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import GRAPH_APP_ID, prefer_create, resource_sp, role_id, run, unique

GRANTED = ["Organization.Read.All", "User.Read.All"]


def test_key_vault_certificate_to_graph_app_to_certificate_token(simulator, customer, vault_clients, graph_kit,
                                                                   managed_identity_env):
    # 1. Key Vault creates the certificate (exportable here, so CertificateCredential can hold the key).
    name = unique("chain")
    policy = CertificatePolicy(issuer_name="Self", subject="CN=certauth chain", validity_in_months=6,
                               exportable=True, key_type="RSA", key_size=2048, content_type="application/x-pkcs12")
    certificate = vault_clients.certificates.begin_create_certificate(name, policy=policy).result()
    assert certificate.cer
    pfx = base64.b64decode(vault_clients.secrets.get_secret(name).value)
    key, cert, _ = pkcs12.load_key_and_certificates(pfx, None)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)

    async def register() -> str:
        credential = graph_kit.secret_credential(customer)
        async with credential:
            client = graph_kit.client(credential)
            # 2. Graph upserts an application carrying that certificate (dates are the certificate's).
            app = await client.applications_with_unique_name(name).patch(Application(
                display_name="certauth chain", key_credentials=[KeyCredential(
                    type="AsymmetricX509Cert", usage="Verify", key=bytes(certificate.cer),
                    start_date_time=certificate.properties.not_before,
                    end_date_time=certificate.properties.expires_on)]), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            graph = await resource_sp(client, GRAPH_APP_ID)
            for value in GRANTED:
                await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(
                    AppRoleAssignment(principal_id=sp.id, resource_id=graph.id, app_role_id=role_id(graph, value)))
            return app.app_id

    app_id = run(register())

    # 3. CertificateCredential for the new app: a token whose roles are exactly what was granted.
    async def token() -> str:
        credential = graph_kit.certificate_credential(customer["tenantId"], app_id, pem)
        async with credential:
            return (await credential.get_token("https://graph.microsoft.com/.default")).token

    claims = jwt.decode(run(token()), options={"verify_signature": False})
    assert claims["appid"] == app_id
    assert claims["tid"] == customer["tenantId"]
    assert claims["roles"] == GRANTED

    # 4. The managed-identity endpoint gives the provisioner (the Function App's identity) a token.
    managed = ManagedIdentityCredential()
    mi_claims = jwt.decode(managed.get_token("https://graph.microsoft.com/.default").token,
                           options={"verify_signature": False})
    assert mi_claims["oid"] == simulator.home["managedIdentity"]["principalId"]
    assert set(mi_claims["roles"]) == set(simulator.info["defaultProvisionerRoles"])
