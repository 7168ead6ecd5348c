"""The manual method's script, run by the sandbox's administrator (tests/powershell_admin.py) against the
simulator's Graph: the tenant ends up as this script makes it, and a second run changes nothing.

The simulator has no delegated sign-in, so Connect-MgGraph's scopes become app roles of the tenant's seeded
provisioner (exactly those, no more), and the calls go with its app-only token. The directory state that
results is what the script's own calls produce, not what a parallel list in the test says."""

from __future__ import annotations

import base64
import uuid

import jwt
import pytest

from shared import catalog, powershell
from shared.onboarding import application_display_name, application_unique_name
from shared.settings import Settings
from shared.state import onboarding_id
from tests.conftest import customers
from tests.powershell_admin import GRAPH_CMDLETS, ScriptAdmin, UnknownCmdlet, UnknownConstruct

TENANT_INDEX = 4
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
def tenant(simulator):
    """Customer tenant 4; its provisioner's Graph roles are restored after the test."""
    tenant = customers(simulator)[TENANT_INDEX]
    yield tenant
    simulator.grant(tenant["tenantId"], simulator.info["defaultProvisionerRoles"])


def sign_in(simulator, tenant: dict, signed_in: list):
    """Connect-MgGraph's stand-in: the provisioner holds exactly the script's scopes, as app roles."""
    from azure.identity import ClientSecretCredential

    def connect(tenant_id: str, scopes: list[str]) -> str:
        signed_in.append((tenant_id, scopes))
        simulator.grant(tenant_id, scopes)
        credential = ClientSecretCredential(tenant_id, tenant["provisioner"]["clientId"],
                                            tenant["provisioner"]["clientSecret"],
                                            authority=simulator.info["authorityHost"], disable_instance_discovery=True)
        try:
            return credential.get_token(GRAPH_SCOPE).token
        finally:
            credential.close()

    return connect


def script_for(tenant_id: str, mailbox: str, certificate, profile_key: str, role_key: str | None) -> bytes:
    """The served script (UTF-8 with BOM) for one onboarding, from the product's own naming functions."""
    role = catalog.directory_role(role_key) if role_key else None
    identifier = onboarding_id(tenant_id, mailbox)
    return powershell.onboarding_script_bytes(
        tenant_id=tenant_id, onboarding_id=identifier, unique_name=application_unique_name(identifier),
        display_name=application_display_name(Settings(), mailbox),
        certificate_base64=base64.b64encode(certificate.der).decode(), thumbprint=certificate.sha1.hex(),
        not_before=certificate.not_before, not_after=certificate.not_after,
        required_resource_access=powershell.profile_access(catalog.profile(profile_key)),
        directory_role=(role.template_id, role.display_name) if role else None,
        verify_url=f"https://certauth.example/api/onboardings/{identifier}/verify")


def run_script(simulator, tenant: dict, script: bytes) -> ScriptAdmin:
    signed_in: list = []
    admin = ScriptAdmin(simulator.info["graphUrl"], sign_in(simulator, tenant, signed_in),
                        ca_bundle=simulator.info["caBundle"])
    try:
        admin.run(script)
    finally:
        admin.close()
    assert signed_in == [admin.connected]
    return admin


def ours(state: dict, unique_name: str) -> dict:
    """The objects of the onboarded app in a tenant_state snapshot."""
    apps = [a for a in state["applications"] if a.get("uniqueName") == unique_name]
    app_ids = {a["appId"] for a in apps}
    sps = [s for s in state["servicePrincipals"] if s["appId"] in app_ids]
    sp_ids = {s["id"] for s in sps}
    return {"applications": apps, "servicePrincipals": sps,
            "appRoleAssignments": [a for a in state["appRoleAssignments"] if a["principalId"] in sp_ids],
            "roleAssignments": [r for r in state["roleAssignments"] if r["principalId"] in sp_ids]}


def test_the_script_sets_up_the_tenant_and_a_second_run_changes_nothing(simulator, tenant, graph_kit):
    tenant_id = tenant["tenantId"]
    mailbox = f"o'brien+{uuid.uuid4().hex[:8]}@contoso.com"  # a quote and a plus: both legal in Exchange
    certificate = graph_kit.certificate("certauth script admin")
    profile = catalog.profile("exchange-contact-sync")
    role = catalog.directory_role("exchange-administrator")
    script = script_for(tenant_id, mailbox, certificate, profile.key, role.key)
    unique_name = application_unique_name(onboarding_id(tenant_id, mailbox))

    first = run_script(simulator, tenant, script)
    assert first.exit_code == 0, first.host_output
    assert first.connected == (tenant_id, ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
                                           "RoleManagement.ReadWrite.Directory"])
    state = simulator.tenant_state(tenant_id)
    objects = ours(state, unique_name)
    [app] = objects["applications"]
    assert app["displayName"] == application_display_name(Settings(), mailbox)
    assert "\u2013" in app["displayName"]
    assert "o'brien+" in app["displayName"]
    assert app["signInAudience"] == "AzureADMyOrg"
    [key] = app["keyCredentials"]
    assert (key["type"], key["usage"]) == ("AsymmetricX509Cert", "Verify")
    assert base64.b64decode(key["customKeyIdentifier"]) == certificate.sha1
    assert {(r["resourceAppId"], a["id"], a["type"]) for r in app["requiredResourceAccess"]
            for a in r["resourceAccess"]} == {(p.resource_app_id, p.app_role_id, "Role") for p in profile.permissions}
    assert len(objects["servicePrincipals"]) == 1
    resource_ids = {s["appId"]: s["id"] for s in state["servicePrincipals"]}
    assert {(a["resourceId"], a["appRoleId"]) for a in objects["appRoleAssignments"]} == \
        {(resource_ids[p.resource_app_id], p.app_role_id) for p in profile.permissions}
    [assignment] = objects["roleAssignments"]
    assert (assignment["roleDefinitionId"], assignment["directoryScopeId"]) == (role.template_id, "/")
    assert [(c.cmdlet, c.status) for c in first.writes()] == [
        ("new-mgapplication", 201), ("new-mgserviceprincipal", 201),
        *[("new-mgserviceprincipalapproleassignment", 201)] * len(profile.permissions),
        ("new-mgrolemanagementdirectoryroleassignment", 201)]
    assert f"Application (client) id, AppId: {app['appId']}" in first.host_output
    assert any("/verify" in line for line in first.host_output)

    # The certificate embedded in the script is the app's credential: a token with it carries the grants.
    from azure.identity import CertificateCredential

    credential = CertificateCredential(tenant_id, app["appId"], certificate_data=certificate.pem,
                                       authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    try:
        claims = jwt.decode(credential.get_token(GRAPH_SCOPE).token, options={"verify_signature": False})
    finally:
        credential.close()
    graph_roles = {p.value for p in profile.permissions if p.resource_app_id == catalog.MICROSOFT_GRAPH}
    assert graph_roles <= set(claims["roles"])

    second = run_script(simulator, tenant, script)
    assert second.exit_code == 0
    assert second.writes() == []
    assert ours(simulator.tenant_state(tenant_id), unique_name) == objects
    assert "App registration exists: " + app["appId"] in second.host_output
    assert "Directory role already assigned: Exchange Administrator" in second.host_output


def test_without_a_role_the_script_asks_no_role_scope_and_assigns_no_role(simulator, tenant, graph_kit):
    tenant_id = tenant["tenantId"]
    mailbox = f"no-role-{uuid.uuid4().hex[:8]}@contoso.com"
    script = script_for(tenant_id, mailbox, graph_kit.certificate("certauth no role"), "graph-contact-sync", None)

    admin = run_script(simulator, tenant, script)
    assert admin.exit_code == 0
    assert admin.connected == (tenant_id, ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"])
    assert not any("roleManagement" in call.url for call in admin.calls)
    objects = ours(simulator.tenant_state(tenant_id), application_unique_name(onboarding_id(tenant_id, mailbox)))
    assert len(objects["appRoleAssignments"]) == 3
    assert objects["roleAssignments"] == []


def test_a_cmdlet_the_mapping_does_not_know_fails_and_is_named():
    admin = ScriptAdmin("https://graph.invalid/v1.0", lambda tenant, scopes: "token")
    with pytest.raises(UnknownCmdlet, match="Remove-MgUser"):
        admin.run("Connect-MgGraph -TenantId 'x' -Scopes 'Application.ReadWrite.All'\n"
                  "Remove-MgUser -UserId 'x'\n")
    assert admin.calls == []
    assert "remove-mguser" not in GRAPH_CMDLETS


@pytest.mark.parametrize("script", [
    'Write-Host "expandable $x"',  # double-quoted strings expand: the generator never emits them
    "$x = 1; $x += 1",
    "Get-MgApplication | Remove-MgApplication",
    "& 'Get-MgApplication'",
])
def test_constructs_the_evaluator_does_not_know_fail_loudly(script):
    with pytest.raises((UnknownConstruct, UnknownCmdlet)):
        ScriptAdmin("https://graph.invalid/v1.0", lambda tenant, scopes: "token").run(script)


def test_an_existing_app_gets_the_new_certificate_and_the_missing_permissions_and_keeps_its_keys(
        simulator, tenant, graph_kit):
    tenant_id = tenant["tenantId"]
    mailbox = f"drift-{uuid.uuid4().hex[:8]}@contoso.com"
    unique_name = application_unique_name(onboarding_id(tenant_id, mailbox))
    old, new = graph_kit.certificate("certauth old"), graph_kit.certificate("certauth new")
    assert run_script(simulator, tenant, script_for(tenant_id, mailbox, old, "graph-contact-sync", None)).exit_code == 0

    profile = catalog.profile("exchange-contact-sync")
    again = run_script(simulator, tenant, script_for(tenant_id, mailbox, new, profile.key, "exchange-administrator"))
    assert again.exit_code == 0
    assert [(c.cmdlet, c.method, c.status) for c in again.writes()] == [
        ("update-mgapplication", "PATCH", 204), ("update-mgapplication", "PATCH", 204),
        ("new-mgserviceprincipalapproleassignment", "POST", 201),
        ("new-mgrolemanagementdirectoryroleassignment", "POST", 201)]
    [app] = ours(simulator.tenant_state(tenant_id), unique_name)["applications"]
    assert sorted(base64.b64decode(k["customKeyIdentifier"]) for k in app["keyCredentials"]) == \
        sorted([old.sha1, new.sha1])
    assert {a["id"] for r in app["requiredResourceAccess"] for a in r["resourceAccess"]} == \
        {p.app_role_id for p in profile.permissions}

    settled = run_script(simulator, tenant, script_for(tenant_id, mailbox, new, profile.key, "exchange-administrator"))
    assert settled.writes() == []
