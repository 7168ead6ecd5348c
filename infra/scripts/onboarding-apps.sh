#!/usr/bin/env bash
# Creates or updates certauth's two multi-tenant apps in the home tenant with `az rest` (Microsoft Graph), and the
# managed identity's grants there: the same as onboarding-apps.ps1, which says what each permission is for.
#
#   az login --tenant "$AZURE_TENANT_ID"     # an account that may create apps (and grant, for --home-tenant-grants)
#   bash infra/scripts/onboarding-apps.sh --tenant-id "$AZURE_TENANT_ID" \
#     --mi-client-id "$MANAGED_IDENTITY_CLIENT_ID" --mi-principal-id "$MANAGED_IDENTITY_PRINCIPAL_ID" \
#     --callback-url "$CERTAUTH_CALLBACK_URL" [--name-prefix certauth] [--cloud global|usgov|china] \
#     [--policy-read] [--home-tenant-grants none|onboarding-app|managed-identity] \
#     [--alert-mailbox alerts@contoso.com [--mail-send exchange-rbac|tenant-wide]]
#
# Idempotent: every object is read (or upserted) first, so a second run changes nothing. Safe for any value the
# options accept: each is validated below, passed to az as one argument, and put into JSON only through
# json_string (the validated values hold no quote, backslash or control character anyway). Exchange's RBAC for
# Applications has no Graph or az rest equivalent: for --alert-mailbox with exchange-rbac the script prints the
# Exchange Online PowerShell commands to run (or run onboarding-apps.ps1, which runs them).
set -euo pipefail

readonly GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
readonly CREDENTIAL_NAME=certauth-managed-identity
readonly GUID_RE='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
readonly URL_RE='^(https://[A-Za-z0-9.-]+|http://localhost)(:[0-9]{1,5})?/[A-Za-z0-9._~%/-]*$'
readonly NAME_RE='^[A-Za-z0-9._-]{1,100}$'
readonly ATOM="[A-Za-z0-9!#\$%&'*+/=?^_\`{|}~-]{1,64}"
readonly LABEL='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
readonly MAILBOX_RE="^${ATOM}(\\.${ATOM})*@${LABEL}(\\.${LABEL})+\$"

die() { printf 'onboarding-apps.sh: %s\n' "$*" >&2; exit 2; }

tenant_id='' mi_client_id='' mi_principal_id='' callback_url='' name_prefix=certauth cloud=global
policy_read=false home_tenant_grants=none alert_mailbox='' mail_send=exchange-rbac
while [ "$#" -gt 0 ]; do
  case "$1" in
    --tenant-id) tenant_id=${2-}; shift 2 || die "$1 needs a value" ;;
    --mi-client-id) mi_client_id=${2-}; shift 2 || die "$1 needs a value" ;;
    --mi-principal-id) mi_principal_id=${2-}; shift 2 || die "$1 needs a value" ;;
    --callback-url) callback_url=${2-}; shift 2 || die "$1 needs a value" ;;
    --name-prefix) name_prefix=${2-}; shift 2 || die "$1 needs a value" ;;
    --cloud) cloud=${2-}; shift 2 || die "$1 needs a value" ;;
    --policy-read) policy_read=true; shift ;;
    --home-tenant-grants) home_tenant_grants=${2-}; shift 2 || die "$1 needs a value" ;;
    --alert-mailbox) alert_mailbox=${2-}; shift 2 || die "$1 needs a value" ;;
    --mail-send) mail_send=${2-}; shift 2 || die "$1 needs a value" ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown option (see --help)" ;;
  esac
done

[[ $tenant_id =~ $GUID_RE ]] || die "--tenant-id must be a GUID"
[[ $mi_client_id =~ $GUID_RE ]] || die "--mi-client-id must be a GUID"
[[ $mi_principal_id =~ $GUID_RE ]] || die "--mi-principal-id must be a GUID"
[[ $callback_url =~ $URL_RE ]] || die "--callback-url must be https://host[:port]/path (or http://localhost...)"
[[ $name_prefix =~ $NAME_RE ]] || die "--name-prefix must be 1-100 of A-Z a-z 0-9 . _ -"
[[ -z $alert_mailbox || $alert_mailbox =~ $MAILBOX_RE ]] || die "--alert-mailbox must be an e-mail address"
case "$cloud" in
  global) graph=https://graph.microsoft.com/v1.0 authority=https://login.microsoftonline.com
          audience=api://AzureADTokenExchange ;;
  usgov) graph=https://graph.microsoft.us/v1.0 authority=https://login.microsoftonline.us
         audience=api://AzureADTokenExchangeUSGov ;;
  china) graph=https://microsoftgraph.chinacloudapi.cn/v1.0 authority=https://login.chinacloudapi.cn
         audience=api://AzureADTokenExchangeChina ;;
  *) die "--cloud must be global, usgov or china" ;;
esac
case "$home_tenant_grants" in none | onboarding-app | managed-identity) ;; *) die "--home-tenant-grants: none, onboarding-app or managed-identity" ;; esac
case "$mail_send" in exchange-rbac | tenant-wide) ;; *) die "--mail-send: exchange-rbac or tenant-wide" ;; esac
command -v az >/dev/null || die "the Azure CLI (az) is needed"

onboarding_permissions=(Application.ReadWrite.OwnedBy Application.Read.All AppRoleAssignment.ReadWrite.All
                        RoleManagement.ReadWrite.Directory Organization.Read.All)
verifier_permissions=(Application.Read.All Organization.Read.All)
if [ "$policy_read" = true ]; then
  onboarding_permissions+=(Policy.Read.All)
  verifier_permissions+=(Policy.Read.All)
fi

json_string() {
  # $1 as a JSON string literal.
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

graph() {
  # graph METHOD PATH [az rest options...]: one Microsoft Graph call, the answer on stdout.
  local method=$1 path=$2
  shift 2
  az rest --only-show-errors --method "$method" --url "$graph/$path" "$@"
}

graph_body() {
  # graph_body METHOD PATH JSON [upsert]: a call with a JSON body; `upsert` adds Prefer: create-if-missing (every
  # header in one --headers option, space-separated KEY=VALUE pairs as az rest documents it).
  local method=$1 path=$2 body=$3 headers=('Content-Type=application/json')
  if [ "${4-}" = upsert ]; then headers+=('Prefer=create-if-missing'); fi
  graph "$method" "$path" --headers "${headers[@]}" --body "$body"
}

graph_sp=$(graph GET "servicePrincipals(appId='$GRAPH_APP_ID')" --query id -o tsv)
[[ $graph_sp =~ $GUID_RE ]] || die "Microsoft Graph has no service principal in this tenant"

role_id() {
  # The id of Microsoft Graph's application permission $1 (read from its service principal, never hard-coded).
  local id
  id=$(graph GET "servicePrincipals/$graph_sp" \
    --query "appRoles[?value=='$1' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
  [[ $id =~ $GUID_RE ]] || die "Microsoft Graph has no application permission $1"
  printf '%s' "$id"
}

resource_access() {
  # The requiredResourceAccess JSON for the permissions given as arguments.
  local items='' permission
  for permission in "$@"; do
    items+="${items:+,}{\"id\":\"$(role_id "$permission")\",\"type\":\"Role\"}"
  done
  printf '[{"resourceAppId":"%s","resourceAccess":[%s]}]' "$GRAPH_APP_ID" "$items"
}

upsert_app() {
  # upsert_app UNIQUE_NAME DISPLAY_NAME PERMISSION...: the app (by uniqueName), its service principal and its
  # federated credential; prints the app's client id.
  local unique=$1 display=$2 body app_object app_id fic_id fic_body
  shift 2
  body="{\"displayName\":$(json_string "$display"),\"signInAudience\":\"AzureADMultipleOrgs\","
  body+="\"web\":{\"redirectUris\":[$(json_string "$callback_url")]},\"requiredResourceAccess\":$(resource_access "$@")}"
  # Upsert by the alternate key: created when missing, updated otherwise (learn.microsoft.com/graph/api/
  # application-upsert); the uniqueName is validated to [A-Za-z0-9._-], so it needs no escaping in the URL.
  graph_body PATCH "applications(uniqueName='$unique')" "$body" upsert >/dev/null
  read -r app_object app_id < <(graph GET "applications(uniqueName='$unique')" --query '[id, appId]' -o tsv | tr '\t\n' '  ')
  [[ $app_object =~ $GUID_RE && $app_id =~ $GUID_RE ]] || die "app $unique was not found after its upsert"
  graph_body PATCH "servicePrincipals(appId='$app_id')" '{}' upsert >/dev/null
  fic_body="{\"name\":\"$CREDENTIAL_NAME\",\"issuer\":$(json_string "$authority/$tenant_id/v2.0"),"
  fic_body+="\"subject\":\"$mi_principal_id\",\"audiences\":[$(json_string "$audience")]}"
  fic_id=$(graph GET "applications/$app_object/federatedIdentityCredentials" \
    --query "value[?name=='$CREDENTIAL_NAME'].id | [0]" -o tsv)
  if [[ $fic_id =~ $GUID_RE ]]; then
    graph_body PATCH "applications/$app_object/federatedIdentityCredentials/$fic_id" "$fic_body" >/dev/null
  else
    graph_body POST "applications/$app_object/federatedIdentityCredentials" "$fic_body" >/dev/null
  fi
  printf 'app %s (%s): federated with the managed identity %s\n' "$unique" "$app_id" "$mi_principal_id" >&2
  printf '%s' "$app_id"
}

grant() {
  # grant PRINCIPAL_ID PERMISSION...: admin consent in this tenant, each app role assignment read first.
  local principal=$1 permission role existing
  shift
  for permission in "$@"; do
    role=$(role_id "$permission")
    existing=$(graph GET "servicePrincipals/$principal/appRoleAssignments" \
      --query "value[?resourceId=='$graph_sp' && appRoleId=='$role'].id | [0]" -o tsv)
    [ -n "$existing" ] && continue
    graph_body POST "servicePrincipals/$principal/appRoleAssignments" \
      "{\"principalId\":\"$principal\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$role\"}" >/dev/null
    printf '  granted %s to %s\n' "$permission" "$principal" >&2
  done
}

onboarding_app_id=$(upsert_app "$name_prefix-onboarding" "$name_prefix onboarding" "${onboarding_permissions[@]}")
verifier_app_id=$(upsert_app "$name_prefix-verifier" "$name_prefix verifier" "${verifier_permissions[@]}")

case "$home_tenant_grants" in
  onboarding-app)
    onboarding_sp=$(graph GET "servicePrincipals(appId='$onboarding_app_id')" --query id -o tsv)
    grant "$onboarding_sp" "${onboarding_permissions[@]}" ;;
  managed-identity) grant "$mi_principal_id" "${onboarding_permissions[@]}" ;;
esac

if [ -n "$alert_mailbox" ] && [ "$mail_send" = tenant-wide ]; then
  printf 'warning: Mail.Send for the whole tenant: the managed identity can send as every mailbox\n' >&2
  grant "$mi_principal_id" Mail.Send
elif [ -n "$alert_mailbox" ]; then
  ps_quote() { local q="'"; printf "'%s'" "${1//$q/$q$q}"; }
  cat <<EOF
Exchange's RBAC for Applications (Application Mail.Send scoped to the alert mailbox) has no Graph or az rest
equivalent. In Exchange Online PowerShell (Connect-ExchangeOnline) run:
  New-ServicePrincipal -AppId '$mi_client_id' -ObjectId '$mi_principal_id' -DisplayName $(ps_quote "$name_prefix managed identity")
  New-ManagementScope -Name $(ps_quote "$name_prefix alert sender") -RecipientRestrictionFilter $(ps_quote "PrimarySmtpAddress -eq $(ps_quote "$alert_mailbox")")
  New-ManagementRoleAssignment -Name $(ps_quote "$name_prefix Application Mail.Send") -App '$mi_client_id' -Role 'Application Mail.Send' -CustomResourceScope $(ps_quote "$name_prefix alert sender")
EOF
fi

printf '\nSet these and provision again (azd provision):\n'
printf 'azd env set CERTAUTH_PROVISIONER_CLIENT_ID %s\n' "$onboarding_app_id"
printf 'azd env set CERTAUTH_VERIFIER_CLIENT_ID %s\n' "$verifier_app_id"
