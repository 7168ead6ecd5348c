"""The manual method's PowerShell script: what a Global Administrator runs to set up one onboarding.

The script does with the Microsoft Graph PowerShell modules what the automatic method does with Graph calls:
the app registration (found by its uniqueName, else created with it, the display-name convention, the
profile's requiredResourceAccess and the certificate's public part as a keyCredential), its service
principal, one app role assignment per permission (admin consent) and, optionally, a directory role. It is
idempotent: each object that exists already is kept, so the admin can run it again after any failure.

Safe generation. Customer-derived text (the display name carries the service mailbox; the prefix is a
setting) reaches the script only as the value of a variable assignment, written as single-quoted literals
joined with ``[char]0x....`` pieces:

- a single-quoted literal expands nothing (no ``$var``, ``$(...)``, backtick escapes); inside it each single
  quote is doubled, including U+2018, U+2019, U+201A and U+201B, which PowerShell's tokenizer also reads as
  single quotes (System.Management.Automation.Language.CharExtensions.IsSingleQuote);
- every character outside printable ASCII is a ``[char]0x....`` expression, so the script is pure ASCII:
  Windows PowerShell 5.1 reads a .ps1 without a BOM in the ANSI code page, where an en dash's UTF-8 bytes
  become three characters and bytes 0x91/0x92 become quotes. The script is served UTF-8 with a BOM anyway
  (:func:`onboarding_script_bytes`); being ASCII it reads the same whichever encoding is assumed. It also
  keeps curly quotes and control characters (newlines) out of every literal;
- GUIDs are checked and written in canonical form; the certificate is checked as base64 of an X.509
  certificate whose SHA-1 thumbprint is the one given; dates are written by this module;
- nothing customer-derived is placed in a command, expression, here-string or comment position: comments and
  commands are fixed text, so a ``#>`` or ``<#`` in a value is just two characters of a literal.

Cmdlets (Microsoft.Graph.Applications and Microsoft.Graph.Identity.Governance, v2; each page is under
learn.microsoft.com/powershell/module/<module>/<cmdlet>): Get-MgApplication -Filter, New-MgApplication (it
takes -UniqueName: the create is keyed by the same alternate key the automatic method's upsert uses, so the
documented cmdlet serves and no raw Invoke-MgGraphRequest is needed), Get-MgApplication -ApplicationId -Property
and Update-MgApplication (an existing app: the certificate added to its keys, read with $select=keyCredentials so
the others are sent back whole), Get-MgServicePrincipal -Filter,
New-MgServicePrincipal, Get-MgServicePrincipalAppRoleAssignment -All, New-MgServicePrincipalAppRoleAssignment,
Get-MgRoleManagementDirectoryRoleAssignment -Filter and New-MgRoleManagementDirectoryRoleAssignment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from .graph import odata_string

REQUIRED_MODULES = ("Microsoft.Graph.Applications", "Microsoft.Graph.Identity.Governance")
# Delegated scopes the script signs in with: the app and its service principal, the app role assignments
# (admin consent), and the directory role only when one is asked.
BASE_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
ROLE_SCOPE = "RoleManagement.ReadWrite.Directory"
# The characters PowerShell's tokenizer takes for a single quote (CharExtensions.IsSingleQuote).
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
BOM = "\ufeff".encode()

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_THUMBPRINT = re.compile(r"[0-9a-fA-F]{40}")


# -- quoting --------------------------------------------------------------------------------------------

def quote_literal(text: str) -> str:
    """`text` as a PowerShell single-quoted literal, each single quote (ASCII or typographic) doubled."""
    return "'" + "".join(c + c if c in SINGLE_QUOTES else c for c in text) + "'"


def string_expression(value: str) -> str:
    """A PowerShell expression (expression mode) whose value is `value`, in pure ASCII: single-quoted
    literals of its printable-ASCII runs joined by `+` with a ``[char]0x....`` per other UTF-16 code unit.

    It always starts with a literal, so `+` concatenates strings ([char] + [char] would add numbers)."""
    pieces: list[str] = []
    run: list[str] = []
    for character in value:
        if " " <= character <= "~":
            run.append(character)
            continue
        if run:
            pieces.append(quote_literal("".join(run)))
            run = []
        encoded = character.encode("utf-16-le", "surrogatepass")
        pieces.extend(f"[char]0x{int.from_bytes(encoded[i:i + 2], 'little'):04X}" for i in range(0, len(encoded), 2))
    if run:
        pieces.append(quote_literal("".join(run)))
    if not pieces or not pieces[0].startswith("'"):
        pieces.insert(0, "''")
    return " + ".join(pieces)


# -- validation -----------------------------------------------------------------------------------------

def _text(value: object, name: str) -> str:
    """`value` if it is a non-empty string without control characters, line or paragraph separators or lone
    surrogates; ValueError otherwise. (They would be safe as [char] pieces, but no name or address holds them.)"""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    refused = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")})
    if refused:
        raise ValueError(f"{name} must not contain control characters ({', '.join(refused)})")
    return value


def _guid(value: object, name: str) -> str:
    """`value` in canonical (lower-case) GUID form; ValueError unless it is a GUID."""
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise ValueError(f"{name} must be a GUID (8-4-4-4-12 hexadecimal digits)")
    return value.lower()


def _utc(value: object, name: str) -> datetime:
    """`value` as an aware UTC datetime; ValueError for anything else."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _certificate(der_base64: object, thumbprint: object, not_before: datetime, not_after: datetime) -> str:
    """The certificate's DER as canonical base64, once it is checked: base64 of an X.509 certificate whose
    SHA-1 is `thumbprint`, valid for the whole of [not_before, not_after]."""
    from cryptography import x509

    if not isinstance(der_base64, str):
        raise ValueError("certificate must be base64 (a string)")
    try:
        der = base64.b64decode(re.sub(r"[ \t\r\n]", "", der_base64), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("certificate must be base64 of the certificate's DER") from None
    try:
        parsed = x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError("certificate is base64 but not an X.509 certificate (DER)") from None
    if not isinstance(thumbprint, str) or not _THUMBPRINT.fullmatch(thumbprint):
        raise ValueError("thumbprint must be the certificate's SHA-1 thumbprint (40 hexadecimal digits)")
    if hashlib.sha1(der).hexdigest() != thumbprint.lower():
        raise ValueError("thumbprint is not the SHA-1 of the certificate")
    if not parsed.not_valid_before_utc <= not_before < not_after <= parsed.not_valid_after_utc:
        raise ValueError("the key's dates must lie inside the certificate's validity, start before end")
    return base64.b64encode(der).decode()


def profile_access(profile) -> dict[str, list[tuple[str, str]]]:
    """A catalog PermissionProfile as `required_resource_access`: resource appId → [(value, app role id)]."""
    return {resource: [(p.value, p.app_role_id) for p in permissions]
            for resource, permissions in profile.by_resource().items()}


def script_filename(tenant_id: str) -> str:
    """The file name the script is served under (Content-Disposition)."""
    return f"certauth-{_guid(tenant_id, 'tenant_id')}.ps1"


def scopes_for(directory_role: object) -> tuple[str, ...]:
    """The delegated scopes the script signs in with."""
    return BASE_SCOPES + ((ROLE_SCOPE,) if directory_role else ())


# -- the script -----------------------------------------------------------------------------------------

def _assign(variable: str, value: str) -> str:
    """`$variable = <value as a safe string expression>`."""
    return f"${variable} = {string_expression(value)}"


def _module_check(modules: tuple[str, ...]) -> list[str]:
    """Lines that stop the script, naming what to install, when a Microsoft Graph module it needs is missing."""
    return [
        "$modulesMissing = $false",
        "foreach ($module in @(" + ", ".join(quote_literal(m) for m in modules) + ")) {",
        "    if (-not (Get-Module -ListAvailable -Name $module)) {",
        "        Write-Host ('Missing PowerShell module: ' + $module)",
        "        $modulesMissing = $true",
        "    }",
        "}",
        "if ($modulesMissing) {",
        "    Write-Host 'Install the Microsoft Graph modules, then run this script again:'",
        "    Write-Host ('    Install-Module " + ", ".join(modules) + " -Scope CurrentUser')",
        "    exit 1",
        "}",
    ]


def _onboarding_values(tenant: str, unique_name: str, display_name: str, onboarding_id: str | None) -> list[str]:
    """The assignments of the values that name one onboarding's app (the setup and the removal script alike)."""
    return [
        "# This onboarding's values.",
        _assign("tenantId", tenant),
        _assign("uniqueName", _text(unique_name, "unique_name")),
        _assign("applicationFilter", "uniqueName eq " + odata_string(unique_name)),
        _assign("displayName", _text(display_name, "display_name")),
        _assign("onboardingId", _text(onboarding_id, "onboarding_id") if onboarding_id is not None else "-"),
    ]


def onboarding_script(*, tenant_id: str, unique_name: str, display_name: str, certificate_base64: str,
                      thumbprint: str, not_before: datetime, not_after: datetime,
                      required_resource_access: Mapping[str, Sequence[tuple[str, str]]],
                      directory_role: tuple[str, str] | None = None, onboarding_id: str | None = None,
                      verify_url: str | None = None, admin_consent_url: str | None = None) -> str:
    """The manual method's script for one onboarding (pure ASCII text; see the module docstring).

    `required_resource_access` maps a resource appId to its (permission value, app role id) pairs;
    `directory_role` is (role template id, role display name) or None. ValueError names a refused input."""
    tenant = _guid(tenant_id, "tenant_id")
    start, end = _utc(not_before, "not_before"), _utc(not_after, "not_after")
    certificate = _certificate(certificate_base64, thumbprint, start, end)
    grants = [(_guid(resource, "resource app id"), _text(value, "permission value"),
               _guid(role_id, f"app role id of {value!r}"))
              for resource, pairs in required_resource_access.items() for value, role_id in pairs]
    if not grants:
        raise ValueError("required_resource_access must name at least one permission")
    role = None
    if directory_role is not None:
        template_id, role_name = directory_role
        role = (_guid(template_id, "directory role template id"), _text(role_name, "directory role name"))
    scopes = scopes_for(role)

    def when(moment: datetime) -> str:
        return f"[datetime]{quote_literal(moment.strftime('%Y-%m-%dT%H:%M:%SZ'))}"

    resources: dict[str, list[str]] = {}
    for resource, _value, role_id in grants:
        resources.setdefault(resource, []).append(role_id)
    access_lines = [
        f"    @{{ ResourceAppId = {quote_literal(resource)}; ResourceAccess = @("
        + ", ".join(f"@{{ Id = {quote_literal(role_id)}; Type = 'Role' }}" for role_id in role_ids) + ") }"
        for resource, role_ids in resources.items()]
    grant_lines = [f"    @{{ ResourceAppId = {quote_literal(resource)}; AppRoleId = {quote_literal(role_id)}; "
                   f"Value = ({string_expression(value)}) }}" for resource, value, role_id in grants]

    lines = [
        "#Requires -Version 5.1",
        "# certauth: the manual onboarding method. Run this script as a Global Administrator of the tenant,",
        "# in PowerShell 7 or Windows PowerShell 5.1 with the Microsoft Graph PowerShell modules.",
        "# It is safe to run again: what exists already is kept, what is missing is added.",
        "$ErrorActionPreference = 'Stop'",
        "",
        "# The Microsoft Graph modules this script needs (checked here, so the script can say what to install).",
        *_module_check(REQUIRED_MODULES),
        "",
        *_onboarding_values(tenant, unique_name, display_name, onboarding_id),
        f"$certificate = [Convert]::FromBase64String({quote_literal(certificate)})",
        _assign("thumbprint", thumbprint.upper()),
        # Graph's customKeyIdentifier of a certificate key defaults to its SHA-1 thumbprint (keyCredential).
        _assign("keyIdentifier", base64.b64encode(bytes.fromhex(thumbprint)).decode()),
        f"$keyStart = {when(start)}",
        f"$keyEnd = {when(end)}",
        "$requiredResourceAccess = @(",
        *access_lines,
        ")",
        "$grants = @(",
        *grant_lines,
        ")",
    ]
    if role:
        lines += [_assign("roleTemplateId", role[0]), _assign("roleName", role[1]),
                  _assign("roleFilter", "roleDefinitionId eq " + odata_string(role[0]) + " and principalId eq ")]
    if admin_consent_url is not None:
        lines.append(_assign("adminConsentUrl", _text(admin_consent_url, "admin_consent_url")))
    if verify_url is not None:
        lines.append(_assign("verifyUrl", _text(verify_url, "verify_url")))
    lines += [
        "",
        "# Sign in. The permissions are asked for you alone, for this session.",
        "Write-Host 'Sign in to Microsoft Graph as a Global Administrator of the tenant.'",
        "Write-Host 'IMPORTANT: when Microsoft asks to approve the permissions, do NOT tick \"Consent on behalf "
        "of your organization\".'",
        "Write-Host 'That box would let everyone in your organization use these permissions through Microsoft "
        "Graph PowerShell; this script needs them only for you, now.'",
        "Connect-MgGraph -TenantId $tenantId -Scopes " + ", ".join(quote_literal(s) for s in scopes)
        + " -NoWelcome",
        "",
        "# The app registration, found by its uniqueName or created with it. An app that exists already gets",
        "# this certificate if it lacks it (its other keys are kept), and this list of requested permissions if",
        "# one is missing.",
        "$key = @{ Type = 'AsymmetricX509Cert'; Usage = 'Verify'; Key = $certificate; DisplayName = $displayName;"
        " StartDateTime = $keyStart; EndDateTime = $keyEnd }",
        "$app = Get-MgApplication -Filter $applicationFilter",
        "if ($app) {",
        "    Write-Host ('App registration exists: ' + $app.AppId)",
        "    $current = Get-MgApplication -ApplicationId $app.Id -Property 'id', 'keyCredentials',"
        " 'requiredResourceAccess'",
        "    $hasKey = $false",
        "    foreach ($existing in $current.KeyCredentials) {",
        "        if ($existing.CustomKeyIdentifier -and"
        " [Convert]::ToBase64String($existing.CustomKeyIdentifier) -eq $keyIdentifier) {",
        "            $hasKey = $true",
        "        }",
        "    }",
        "    if (-not $hasKey) {",
        "        $null = Update-MgApplication -ApplicationId $app.Id -KeyCredentials (@($current.KeyCredentials) +"
        " @($key))",
        "        Write-Host 'Certificate added to the app registration.'",
        "    }",
        "    $hasAccess = $true",
        "    foreach ($grant in $grants) {",
        "        $requested = $false",
        "        foreach ($access in $current.RequiredResourceAccess) {",
        "            foreach ($item in $access.ResourceAccess) {",
        "                if ($access.ResourceAppId -eq $grant.ResourceAppId -and $item.Id -eq $grant.AppRoleId) {",
        "                    $requested = $true",
        "                }",
        "            }",
        "        }",
        "        if (-not $requested) {",
        "            $hasAccess = $false",
        "        }",
        "    }",
        "    if (-not $hasAccess) {",
        "        $null = Update-MgApplication -ApplicationId $app.Id -RequiredResourceAccess $requiredResourceAccess",
        "        Write-Host 'Requested permissions updated on the app registration.'",
        "    }",
        "} else {",
        "    $app = New-MgApplication -UniqueName $uniqueName -DisplayName $displayName -SignInAudience 'AzureADMyOrg'"
        " -RequiredResourceAccess $requiredResourceAccess -KeyCredentials @($key)",
        "    Write-Host ('App registration created: ' + $app.AppId)",
        "}",
        "",
        "# Its service principal.",
        "$sp = Get-MgServicePrincipal -Filter ('appId eq ''' + $app.AppId + '''')",
        "if ($sp) {",
        "    Write-Host ('Service principal exists: ' + $sp.Id)",
        "} else {",
        "    $sp = New-MgServicePrincipal -AppId $app.AppId",
        "    Write-Host ('Service principal created: ' + $sp.Id)",
        "}",
        "",
        "# Admin consent: one app role assignment per permission.",
        "$assignments = @(Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -All)",
        "foreach ($grant in $grants) {",
        "    $resource = Get-MgServicePrincipal -Filter ('appId eq ''' + $grant.ResourceAppId + '''')",
        "    if (-not $resource) {",
        "        throw ('This tenant has no service principal for the API ' + $grant.ResourceAppId)",
        "    }",
        "    $granted = $false",
        "    foreach ($assignment in $assignments) {",
        "        if ($assignment.ResourceId -eq $resource.Id -and $assignment.AppRoleId -eq $grant.AppRoleId) {",
        "            $granted = $true",
        "        }",
        "    }",
        "    if ($granted) {",
        "        Write-Host ('Permission already granted: ' + $grant.Value)",
        "    } else {",
        "        $null = New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -PrincipalId $sp.Id"
        " -ResourceId $resource.Id -AppRoleId $grant.AppRoleId",
        "        Write-Host ('Permission granted: ' + $grant.Value)",
        "    }",
        "}",
    ]
    if role:
        lines += [
            "",
            "# The directory role, tenant-wide.",
            "$roleAssignment = Get-MgRoleManagementDirectoryRoleAssignment -Filter ($roleFilter + '''' + $sp.Id"
            " + '''')",
            "if ($roleAssignment) {",
            "    Write-Host ('Directory role already assigned: ' + $roleName)",
            "} else {",
            "    $null = New-MgRoleManagementDirectoryRoleAssignment -PrincipalId $sp.Id -RoleDefinitionId"
            " $roleTemplateId -DirectoryScopeId '/'",
            "    Write-Host ('Directory role assigned: ' + $roleName)",
            "}",
        ]
    lines += [
        "",
        "Write-Host ''",
        "Write-Host 'Done.'",
        "Write-Host ('certauth onboarding: ' + $onboardingId)",
        "Write-Host ('Application (client) id, AppId: ' + $app.AppId)",
        "Write-Host ('Display name: ' + $displayName)",
        "Write-Host ('Service principal id: ' + $sp.Id)",
        "Write-Host ('Certificate thumbprint: ' + $thumbprint)",
        "foreach ($grant in $grants) {",
        "    Write-Host ('Permission: ' + $grant.Value)",
        "}",
    ]
    if role:
        lines.append("Write-Host ('Directory role: ' + $roleName)")
    if admin_consent_url is not None:
        lines += [
            "Write-Host 'certauth checks this setup read-only, as its verifier app. If no administrator of the "
            "tenant has consented to the verifier yet, open this address once:'",
            "Write-Host ('    ' + $adminConsentUrl)",
        ]
    if verify_url is not None:
        lines += [
            "Write-Host 'Then tell certauth the script ran: send a POST to this address (for example with "
            "Invoke-RestMethod -Method Post -Uri <address>):'",
            "Write-Host ('    ' + $verifyUrl)",
        ]
    else:
        lines.append("Write-Host 'certauth notices the setup by itself and completes the onboarding; nothing else "
                     "to do here.'")
    script = "\n".join(lines) + "\n"
    if not script.isascii():  # string_expression and the fixed text guarantee it; never serve anything else
        raise RuntimeError("the generated script is not pure ASCII")
    return script


def onboarding_script_bytes(**arguments) -> bytes:
    """:func:`onboarding_script` as served: UTF-8 with a BOM (Windows PowerShell 5.1 then reads it as UTF-8)."""
    return BOM + onboarding_script(**arguments).encode("ascii")


# -- the removal script (offboarding of a manual onboarding) ---------------------------------------------

# The removal script's modules: the app, its service principal and app role assignments; the directory role; and,
# for a permanent removal, deleted items (Get-MgDirectoryDeletedItemAsApplication, Remove-MgDirectoryDeletedItem:
# learn.microsoft.com/powershell/module/microsoft.graph.identity.directorymanagement/...).
REMOVAL_MODULES = ("Microsoft.Graph.Applications", "Microsoft.Graph.Identity.Governance")
PERMANENT_MODULE = "Microsoft.Graph.Identity.DirectoryManagement"
# Delegated scopes: the app and its service principal (and deleted items), the grants, any directory role.
REMOVAL_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", ROLE_SCOPE)


def removal_script_filename(tenant_id: str) -> str:
    """The file name the removal script is served under (Content-Disposition)."""
    return f"certauth-remove-{_guid(tenant_id, 'tenant_id')}.ps1"


def removal_script(*, tenant_id: str, unique_name: str, display_name: str, app_id: str | None = None,
                   onboarding_id: str | None = None, permanent: bool = False) -> str:
    """The script that undoes one manual onboarding, in the order of the automatic offboarding: the service
    principal's directory role assignments, its app role assignments, the service principal, the app registration;
    with `permanent`, both out of deleted items too. Pure ASCII, the same quoting as :func:`onboarding_script`;
    idempotent (what is gone is skipped). `app_id` is the appId certauth verified, used when the app is no longer
    found by its uniqueName."""
    tenant = _guid(tenant_id, "tenant_id")
    modules = REMOVAL_MODULES + ((PERMANENT_MODULE,) if permanent else ())

    lines = [
        "#Requires -Version 5.1",
        "# certauth: removal of a manual onboarding. Run this script as a Global Administrator of the tenant,",
        "# in PowerShell 7 or Windows PowerShell 5.1 with the Microsoft Graph PowerShell modules.",
        "# It removes the app's directory role, its granted permissions, its service principal and the app",
        "# registration. It is safe to run again: what is gone already is skipped.",
        "$ErrorActionPreference = 'Stop'",
        "",
        *_module_check(modules),
        "",
        *_onboarding_values(tenant, unique_name, display_name, onboarding_id),
        _assign("appId", _guid(app_id, "app_id") if app_id else ""),
        "",
        "Write-Host 'Sign in to Microsoft Graph as a Global Administrator of the tenant.'",
        "Write-Host 'IMPORTANT: when Microsoft asks to approve the permissions, do NOT tick \"Consent on behalf "
        "of your organization\".'",
        "Connect-MgGraph -TenantId $tenantId -Scopes " + ", ".join(quote_literal(s) for s in REMOVAL_SCOPES)
        + " -NoWelcome",
        "",
        "# The app registration, by its uniqueName, else by the appId certauth verified.",
        "$app = Get-MgApplication -Filter $applicationFilter",
        "if (-not $app -and $appId) {",
        "    $app = Get-MgApplication -Filter ('appId eq ''' + $appId + '''')",
        "}",
        "if ($app) {",
        "    $appId = $app.AppId",
        "    Write-Host ('App registration found: ' + $app.AppId)",
        "} else {",
        "    Write-Host 'App registration not found (removed already).'",
        "}",
        "$sp = $null",
        "if ($appId) {",
        "    $sp = Get-MgServicePrincipal -Filter ('appId eq ''' + $appId + '''')",
        "}",
        "if ($sp) {",
        "    # 1. Its directory role assignments, any role.",
        "    $roleAssignments = @(Get-MgRoleManagementDirectoryRoleAssignment -Filter ('principalId eq ''' + $sp.Id"
        " + ''''))",
        "    foreach ($roleAssignment in $roleAssignments) {",
        "        Remove-MgRoleManagementDirectoryRoleAssignment -UnifiedRoleAssignmentId $roleAssignment.Id",
        "        Write-Host ('Directory role assignment removed: ' + $roleAssignment.RoleDefinitionId)",
        "    }",
        "    # 2. Its granted permissions (app role assignments).",
        "    $assignments = @(Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -All)",
        "    foreach ($assignment in $assignments) {",
        "        Remove-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -AppRoleAssignmentId"
        " $assignment.Id",
        "        Write-Host ('Permission removed: ' + $assignment.AppRoleId)",
        "    }",
        "    # 3. The service principal (it goes to deleted items).",
        "    Remove-MgServicePrincipal -ServicePrincipalId $sp.Id",
        "    Write-Host ('Service principal removed: ' + $sp.Id)",
    ]
    if permanent:
        lines += ["    Remove-MgDirectoryDeletedItem -DirectoryObjectId $sp.Id",
                  "    Write-Host 'Service principal deleted permanently.'"]
    lines += [
        "} else {",
        "    Write-Host 'Service principal not found (removed already).'",
        "}",
        "if ($app) {",
        "    # 4. The app registration (it goes to deleted items, restorable for 30 days).",
        "    Remove-MgApplication -ApplicationId $app.Id",
        "    Write-Host ('App registration removed: ' + $app.Id)",
    ]
    if permanent:
        lines += ["    Remove-MgDirectoryDeletedItem -DirectoryObjectId $app.Id",
                  "    Write-Host 'App registration deleted permanently.'"]
    lines.append("}")
    if permanent:
        lines += [
            "",
            "# What an earlier run left in deleted items.",
            "$deletedApps = @(Get-MgDirectoryDeletedItemAsApplication -Filter $applicationFilter)",
            "foreach ($item in $deletedApps) {",
            "    if (-not $appId) {",
            "        $appId = $item.AppId",
            "    }",
            "    Remove-MgDirectoryDeletedItem -DirectoryObjectId $item.Id",
            "    Write-Host ('Deleted app registration removed permanently: ' + $item.Id)",
            "}",
            "if ($appId) {",
            "    $deletedSps = @(Get-MgDirectoryDeletedItemAsServicePrincipal -Filter ('appId eq ''' + $appId +"
            " ''''))",
            "    foreach ($item in $deletedSps) {",
            "        Remove-MgDirectoryDeletedItem -DirectoryObjectId $item.Id",
            "        Write-Host ('Deleted service principal removed permanently: ' + $item.Id)",
            "    }",
            "}",
        ]
    lines += [
        "",
        "Write-Host ''",
        "Write-Host 'Done.'",
        "Write-Host ('certauth onboarding removed: ' + $onboardingId)",
        "Write-Host ('Display name: ' + $displayName)",
        "Write-Host 'certauth checks the removal by itself (read-only), then deletes its certificate and retires the "
        "onboarding.'",
    ]
    script = "\n".join(lines) + "\n"
    if not script.isascii():  # string_expression and the fixed text guarantee it; never serve anything else
        raise RuntimeError("the generated script is not pure ASCII")
    return script


def removal_script_bytes(**arguments) -> bytes:
    """:func:`removal_script` as served: UTF-8 with a BOM, like the setup script."""
    return BOM + removal_script(**arguments).encode("ascii")
