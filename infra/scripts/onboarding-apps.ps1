#Requires -Version 7.0
#Requires -Modules Microsoft.Graph.Authentication, Microsoft.Graph.Applications
<#
.SYNOPSIS
Creates or updates certauth's two multi-tenant apps in the home tenant, and the managed identity's grants there.

.DESCRIPTION
Run once by the operator after `azd provision` (again after any change: every step reads first and changes only
what differs, so a second run changes nothing). Values come from `azd env get-values` (README "Deploy to Azure").

1. The onboarding app (uniqueName <NamePrefix>-onboarding): signInAudience AzureADMultipleOrgs, the callback as
   its only redirect URI, the automatic method's application permissions on Microsoft Graph, and a federated
   identity credential that trusts the Function App's managed identity, so the product holds no secret.
2. The verifier (uniqueName <NamePrefix>-verifier): the same, with only Application.Read.All and
   Organization.Read.All (and Policy.Read.All with -IncludePolicyRead).
3. Optional grants in the home tenant (-HomeTenantGrants) and Mail.Send for alert mail (-AlertMailbox).

The onboarding app's permissions (Microsoft Graph application permissions, granted by each customer's admin
consent; learn.microsoft.com/graph/permissions-reference):
- Application.ReadWrite.OwnedBy: create the onboarded app (the onboarding app becomes its owner), its service
  principal and certificate key, update them on a re-run, delete them when offboarding. Only apps it owns.
- Application.Read.All: find Microsoft Graph's and Exchange Online's service principals and their app roles,
  and read the onboarded service principal's app role assignments before granting.
- AppRoleAssignment.ReadWrite.All: grant (admin consent) and revoke the onboarded app's permissions.
- RoleManagement.ReadWrite.Directory: assign, read and remove the onboarded app's directory role (Exchange
  Administrator for Exchange Online PowerShell).
- Organization.Read.All: the onboarding link's callback reads the tenant's verified domains (GET /organization),
  to warn when the service mailbox's domain is not the tenant's.
- Policy.Read.All (only with -IncludePolicyRead): read the tenant's app management policy to size certificates.
The verifier's (manual method: the customer's admin creates the app, certauth only reads):
- Application.Read.All: read the app, its keyCredentials, service principal and app role assignments.
- Organization.Read.All: the tenant's verified domains, read by the consent callback of the manual method.
- Policy.Read.All (only with -IncludePolicyRead): the app management policy, for sizing certificates.
Nothing else: no Directory.ReadWrite.All, Application.ReadWrite.All or Organization.ReadWrite.All (README).

Safe for any value the parameters accept: GUIDs, names and URLs are validated by the param block, every value
is passed to cmdlets as a parameter value (never run or spliced into code), and the two filter languages
(OData $filter, Exchange OPATH) get their values as single-quoted literals with single quotes doubled.

.EXAMPLE
pwsh ./infra/scripts/onboarding-apps.ps1 -TenantId $tenant -ManagedIdentityClientId $miClient `
  -ManagedIdentityPrincipalId $miPrincipal -CallbackUrl $callback -AlertMailbox 'alerts@contoso.com'
#>
[CmdletBinding()]
param(
    # The home tenant (AZURE_TENANT_ID).
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')]
    [string] $TenantId,

    # The user-assigned managed identity's client id (MANAGED_IDENTITY_CLIENT_ID).
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')]
    [string] $ManagedIdentityClientId,

    # Its principal (object) id (MANAGED_IDENTITY_PRINCIPAL_ID): the federated credentials' subject.
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')]
    [string] $ManagedIdentityPrincipalId,

    # The consent callback (CERTAUTH_CALLBACK_URL): https, or http to localhost for a local run.
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^(https://[A-Za-z0-9.-]+|http://localhost)(:[0-9]{1,5})?/[A-Za-z0-9._~%/-]*$')]
    [string] $CallbackUrl,

    # The apps' names: '<prefix> onboarding' / '<prefix> verifier', uniqueNames '<prefix>-onboarding' / '-verifier'.
    [ValidatePattern('^[A-Za-z0-9._-]{1,100}$')]
    [string] $NamePrefix = 'certauth',

    [ValidateSet('Global', 'USGov', 'China')]
    [string] $Cloud = 'Global',

    [switch] $IncludePolicyRead,

    # None: customers only. OnboardingApp: admin consent for the onboarding app in the home tenant too (the product
    # uses it there once CERTAUTH_PROVISIONER_CLIENT_ID is set). ManagedIdentity: the same permissions for the managed
    # identity itself (a single-tenant deployment without the onboarding app, which onboards its home tenant only).
    [ValidateSet('None', 'OnboardingApp', 'ManagedIdentity')]
    [string] $HomeTenantGrants = 'None',

    # The mailbox that sends alert mail (CERTAUTH_ALERT_MAIL_FROM); empty: no mail permission.
    [ValidatePattern('^$|^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]{1,64}(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]{1,64})*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$')]
    [string] $AlertMailbox = '',

    # ExchangeRbac (preferred): Exchange's RBAC for Applications, Application Mail.Send scoped to that mailbox.
    # TenantWide: Graph Mail.Send for the managed identity, which can then send as every mailbox of the tenant.
    [ValidateSet('ExchangeRbac', 'TenantWide')]
    [string] $MailSendMode = 'ExchangeRbac'
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$GraphAppId = '00000003-0000-0000-c000-000000000000'
$CredentialName = 'certauth-managed-identity'
$Authorities = @{ Global = 'https://login.microsoftonline.com'; USGov = 'https://login.microsoftonline.us';
                  China = 'https://login.chinacloudapi.cn' }
# The managed identity's token audience for workload identity federation, per cloud (learn.microsoft.com/entra/
# workload-id/workload-identity-federation-config-app-trust-managed-identity).
$Audiences = @{ Global = 'api://AzureADTokenExchange'; USGov = 'api://AzureADTokenExchangeUSGov';
                China = 'api://AzureADTokenExchangeChina' }

$OnboardingPermissions = @('Application.ReadWrite.OwnedBy', 'Application.Read.All',
                           'AppRoleAssignment.ReadWrite.All', 'RoleManagement.ReadWrite.Directory',
                           'Organization.Read.All')
$VerifierPermissions = @('Application.Read.All', 'Organization.Read.All')
if ($IncludePolicyRead) {
    $OnboardingPermissions += 'Policy.Read.All'
    $VerifierPermissions += 'Policy.Read.All'
}

function Format-QuotedLiteral {
    # A value inside single quotes with each single quote doubled: a string literal of OData ($filter) and of
    # Exchange's OPATH filters alike.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Value)
    return '''' + $Value.Replace('''', '''''') + ''''
}

function Get-GraphRoleId {
    # The id of one of Microsoft Graph's application permissions, read from its service principal in this tenant.
    param([Parameter(Mandatory = $true)] $Graph, [Parameter(Mandatory = $true)] [string] $Value)
    $role = $Graph.AppRoles | Where-Object { $_.Value -eq $Value -and $_.AllowedMemberTypes -contains 'Application' }
    if (-not $role) { throw ('Microsoft Graph has no application permission ' + $Value) }
    return $role.Id
}

function Set-MultiTenantApp {
    # Create or update one app registration by its uniqueName, then its service principal and federated credential.
    param([string] $UniqueName, [string] $DisplayName, [string[]] $Permissions, $Graph)
    $access = @(@{ ResourceAppId = $GraphAppId
                   ResourceAccess = @($Permissions | ForEach-Object { @{ Id = (Get-GraphRoleId $Graph $_); Type = 'Role' } }) })
    $properties = @{ DisplayName = $DisplayName; SignInAudience = 'AzureADMultipleOrgs'
                     Web = @{ RedirectUris = @($CallbackUrl) }; RequiredResourceAccess = $access }
    $app = Get-MgApplication -Filter ('uniqueName eq ' + (Format-QuotedLiteral $UniqueName)) -Property 'id,appId'
    if ($app) {
        Update-MgApplication -ApplicationId $app.Id -BodyParameter $properties
        Write-Host ('updated app ' + $UniqueName + ' (' + $app.AppId + ')')
    }
    else {
        # uniqueName is set once, at creation (Graph keeps it immutable): the key of every later run.
        $properties['UniqueName'] = $UniqueName
        $app = New-MgApplication -BodyParameter $properties
        Write-Host ('created app ' + $UniqueName + ' (' + $app.AppId + ')')
    }
    $sp = Get-MgServicePrincipal -Filter ('appId eq ' + (Format-QuotedLiteral $app.AppId))
    if (-not $sp) { $sp = New-MgServicePrincipal -AppId $app.AppId }

    $issuer = $Authorities[$Cloud] + '/' + $TenantId + '/v2.0'
    $audience = $Audiences[$Cloud]
    $existing = Get-MgApplicationFederatedIdentityCredential -ApplicationId $app.Id -All |
        Where-Object { $_.Name -eq $CredentialName }
    if (-not $existing) {
        New-MgApplicationFederatedIdentityCredential -ApplicationId $app.Id -Name $CredentialName -Issuer $issuer `
            -Subject $ManagedIdentityPrincipalId -Audiences @($audience) | Out-Null
        Write-Host ('  federated credential: trusts the managed identity ' + $ManagedIdentityPrincipalId)
    }
    elseif ($existing.Issuer -ne $issuer -or $existing.Subject -ne $ManagedIdentityPrincipalId -or
            @($existing.Audiences) -join ' ' -ne $audience) {
        Update-MgApplicationFederatedIdentityCredential -ApplicationId $app.Id `
            -FederatedIdentityCredentialId $existing.Id -Issuer $issuer -Subject $ManagedIdentityPrincipalId `
            -Audiences @($audience)
        Write-Host ('  federated credential: updated to the managed identity ' + $ManagedIdentityPrincipalId)
    }
    return @{ App = $app; ServicePrincipal = $sp }
}

function Grant-GraphPermissions {
    # Admin consent in this tenant: one app role assignment per permission, each read first.
    param([string] $PrincipalId, [string[]] $Permissions, $Graph)
    $assigned = @(Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $PrincipalId -All)
    foreach ($permission in $Permissions) {
        $roleId = Get-GraphRoleId $Graph $permission
        if ($assigned | Where-Object { $_.ResourceId -eq $Graph.Id -and $_.AppRoleId -eq $roleId }) { continue }
        New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $PrincipalId -PrincipalId $PrincipalId `
            -ResourceId $Graph.Id -AppRoleId $roleId | Out-Null
        Write-Host ('  granted ' + $permission + ' to ' + $PrincipalId)
    }
}

$scopes = @('Application.ReadWrite.All')
if ($HomeTenantGrants -ne 'None' -or ($AlertMailbox -and $MailSendMode -eq 'TenantWide')) {
    $scopes += 'AppRoleAssignment.ReadWrite.All'
}
Connect-MgGraph -TenantId $TenantId -Environment $Cloud -Scopes $scopes -NoWelcome

$graph = Get-MgServicePrincipal -Filter ('appId eq ' + (Format-QuotedLiteral $GraphAppId)) -Property 'id,appRoles'
if (-not $graph) { throw 'Microsoft Graph has no service principal in this tenant' }

$onboarding = Set-MultiTenantApp -UniqueName ($NamePrefix + '-onboarding') -DisplayName ($NamePrefix + ' onboarding') `
    -Permissions $OnboardingPermissions -Graph $graph
$verifier = Set-MultiTenantApp -UniqueName ($NamePrefix + '-verifier') -DisplayName ($NamePrefix + ' verifier') `
    -Permissions $VerifierPermissions -Graph $graph

if ($HomeTenantGrants -eq 'OnboardingApp') {
    Grant-GraphPermissions -PrincipalId $onboarding.ServicePrincipal.Id -Permissions $OnboardingPermissions -Graph $graph
}
elseif ($HomeTenantGrants -eq 'ManagedIdentity') {
    Grant-GraphPermissions -PrincipalId $ManagedIdentityPrincipalId -Permissions $OnboardingPermissions -Graph $graph
}

if ($AlertMailbox -and $MailSendMode -eq 'TenantWide') {
    Write-Warning 'Mail.Send for the whole tenant: the managed identity can send as every mailbox.'
    Grant-GraphPermissions -PrincipalId $ManagedIdentityPrincipalId -Permissions @('Mail.Send') -Graph $graph
}
elseif ($AlertMailbox) {
    # Exchange's RBAC for Applications (learn.microsoft.com/exchange/permissions-exo/application-rbac): the
    # managed identity may send as this one mailbox. Never grant Graph Mail.Send as well: Entra grants and
    # Exchange's are a union, so a tenant-wide grant would cancel the scope. Takes 30 minutes to 2 hours to apply.
    Import-Module ExchangeOnlineManagement
    Connect-ExchangeOnline -ShowBanner:$false
    $scopeName = $NamePrefix + ' alert sender'
    $filter = 'PrimarySmtpAddress -eq ' + (Format-QuotedLiteral $AlertMailbox)
    if (-not (Get-ServicePrincipal -Identity $ManagedIdentityClientId -ErrorAction SilentlyContinue)) {
        New-ServicePrincipal -AppId $ManagedIdentityClientId -ObjectId $ManagedIdentityPrincipalId `
            -DisplayName ($NamePrefix + ' managed identity') | Out-Null
    }
    $scope = Get-ManagementScope -Identity $scopeName -ErrorAction SilentlyContinue
    if (-not $scope) {
        New-ManagementScope -Name $scopeName -RecipientRestrictionFilter $filter | Out-Null
    }
    elseif ($scope.RecipientFilter -ne $filter) {
        Set-ManagementScope -Identity $scopeName -RecipientRestrictionFilter $filter
    }
    $assignment = $NamePrefix + ' Application Mail.Send'
    if (-not (Get-ManagementRoleAssignment -Identity $assignment -ErrorAction SilentlyContinue)) {
        New-ManagementRoleAssignment -Name $assignment -App $ManagedIdentityClientId -Role 'Application Mail.Send' `
            -CustomResourceScope $scopeName | Out-Null
    }
    Write-Host ('Application Mail.Send for the managed identity, scoped to ' + $AlertMailbox)
}

Write-Host ''
Write-Host 'Set these and provision again (azd provision):'
Write-Host ('azd env set CERTAUTH_PROVISIONER_CLIENT_ID ' + $onboarding.App.AppId)
Write-Host ('azd env set CERTAUTH_VERIFIER_CLIENT_ID ' + $verifier.App.AppId)
