"""The Exchange proof: one read-only Exchange Online admin call with the onboarded app's own token, which answers
what Graph's read permissions cannot: does the app's directory role work in Exchange Online?

The call is the one the Exchange Online PowerShell V3 module makes for Get-OrganizationConfig (REFERENCE.md,
"Exchange Online"): ``POST {EXCHANGE_ADMIN_URL}/adminapi/beta/{tenant}/InvokeCommand`` with
``{"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}`` and an app-only token for
``{EXCHANGE_RESOURCE}/.default``. Microsoft does not document the endpoint; its answers were observed
(learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2; public clients such as GreyCorbel/ExoHelper):

- 200: the app holds Exchange.ManageAsApp and a supported directory role, so the role is proven;
- 401: Exchange.ManageAsApp is not in the token (the grant is missing or still propagating);
- 403 "… The role assigned to application <appId> isn't supported in this scenario": no supported role in the
  token's role information. Exchange reads the role from the token, so a role assigned moments ago is seen only
  by a token issued after it replicated: each attempt gets a new token.

The role-propagation window (ROLE_PROPAGATION_WINDOW) runs from the first 403 of the run, on the orchestration's
clock: a role assignment has no creation time in Graph, and in the manual method certauth does not know when the
admin's script assigned it. Inside the window a 403 is transient (the orchestration tries again with a new token);
after it, the onboarding needs attention: the app has no supported Exchange role.

Tokens stay in the caller's frame: never stored, returned or logged.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from . import catalog
from .settings import Settings

log = logging.getLogger(__name__)

ORGANIZATION_CONFIG = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
# The system mailbox that app-only callers of the admin API anchor to (the same in every organization), as the
# V3 module's public clients send it: APP:SystemMailbox{…}@<tenant id>.
SYSTEM_MAILBOX_ANCHOR = "APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant}"
# The words of Exchange's 403 for a missing or unsupported role (OBSERVED; see the module docstring).
ROLE_MESSAGE = "isn't supported in this scenario"
ROLE_NOT_SUPPORTED = "ExchangeRoleNotSupported"
ROLE_NEEDS_ATTENTION = "the app has no supported Exchange role"
# How long a 403 with the role message may mean "the role is still replicating". No duration is documented: Entra
# role assignments reach tokens after directory replication (REFERENCE.md, "Directory replication"), and Exchange
# then reads them from the token. 15 minutes is past the orchestrator's usual replication budget (12 minutes).
ROLE_PROPAGATION_WINDOW = timedelta(minutes=15)
TIMEOUT_SECONDS = 60

# The Entra roles that app-only Exchange Online PowerShell supports, by template id
# (learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2, "Assign Microsoft Entra roles to the
# application"; ids from learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
EXCHANGE_SUPPORTED_ROLES = frozenset({
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
    "31392ffb-586c-42d1-9346-e59415a2cc4e",  # Exchange Recipient Administrator
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
    "17315797-102d-40b4-93e0-432062caca18",  # Compliance Administrator
    "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
    "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
})
ROLE_FIX = ("assign a supported Exchange role (Exchange Administrator, Exchange Recipient Administrator, Global "
            "Reader, Security Reader, Compliance Administrator, Security Administrator, Helpdesk Administrator or "
            "Global Administrator) to the app's service principal")
PERMISSION_FIX = "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) with admin consent"

PROVEN = {"outcome": "proven", "detail": "directory role: proven by Exchange Online"}
NOT_VERIFIABLE = {"outcome": "notVerifiable", "detail": "directory role: not verifiable with this profile"}
NOT_APPLICABLE = {"outcome": "notApplicable", "detail": "directory role: none requested"}
# What the record says once Exchange has refused the role for the whole window (the onboarding needs attention).
REFUSED = {"outcome": "refused", "detail": f"directory role: refused by Exchange Online ({ROLE_NEEDS_ATTENTION})"}


class ExchangeAdminError(Exception):
    """An answer of Exchange Online's admin API other than 200: its status, OData code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        # Until when a refused role is worth another attempt (set by the proof inside the role-propagation window).
        self.retry_until: datetime | None = None

    @property
    def role_not_supported(self) -> bool:
        """Exchange's 403 for an app without a supported directory role (in its token)."""
        return self.status == 403 and ROLE_MESSAGE in self.message


def proof_plan(profile: catalog.PermissionProfile, role_key: str | None) -> dict | None:
    """What the Exchange proof can say without a call: None when the call decides (the profile holds
    Exchange.ManageAsApp and a role Exchange supports is requested), else the outcome. Never "verified" without
    Exchange's own answer."""
    if not role_key:
        return dict(NOT_APPLICABLE)
    role = catalog.directory_role(role_key)
    manage_as_app = any(p.value == catalog.EXCHANGE_MANAGE_AS_APP.value for p in profile.permissions)
    if not manage_as_app or role.template_id not in EXCHANGE_SUPPORTED_ROLES:
        return dict(NOT_VERIFIABLE)
    return None


def within_role_window(first_refused: datetime, now: datetime) -> bool:
    """Whether a refused role, first refused at `first_refused`, may still be replicating at `now`."""
    return now - first_refused < ROLE_PROPAGATION_WINDOW


def role_needs_attention(error: ExchangeAdminError, first_refused: datetime, now: datetime) -> dict:
    """The proof's result once the window is over: the onboarding needs attention (not a retry, not a crash)."""
    minutes = max(1, round((now - first_refused).total_seconds() / 60))
    message = f"Exchange Online still refuses the app's role after {minutes} min: {error.message}"
    return {"ok": False, "retry": False, "needsAttention": [ROLE_NEEDS_ATTENTION],
            "error": {"step": "proof", "status": 403, "code": ROLE_NOT_SUPPORTED, "message": message[:1000],
                      "fix": ROLE_FIX}}


def invoke_url(settings: Settings, tenant_id: str) -> str:
    """The admin API's InvokeCommand address for an organization (the setting's origin, never the scope's)."""
    return f"{settings.exchange_admin_url}/adminapi/beta/{tenant_id}/InvokeCommand"


def token_scope(settings: Settings) -> str:
    """The app-only scope of Exchange Online in this cloud (EXCHANGE_RESOURCE, not the admin URL's host)."""
    return f"{settings.exchange_resource}/.default"


def get_organization_config(settings: Settings, tenant_id: str, credential) -> dict:
    """Get-OrganizationConfig as the onboarded app (`credential`: a TokenCredential); the organization's config,
    or ExchangeAdminError with Exchange's status, code and message."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import RetryPolicy
    from azure.core.rest import HttpRequest

    token = credential.get_token(token_scope(settings)).token
    request = HttpRequest("POST", invoke_url(settings, tenant_id), json=ORGANIZATION_CONFIG, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json; odata.metadata=minimal",
        "X-CmdletName": ORGANIZATION_CONFIG["CmdletInput"]["CmdletName"],
        "X-AnchorMailbox": SYSTEM_MAILBOX_ANCHOR.format(tenant=tenant_id)})
    del token
    # azure-core's pipeline: its retries of 429 / 5xx (Retry-After honoured) and the process's CA settings.
    with PipelineClient(settings.exchange_admin_url, policies=[RetryPolicy(retry_total=3)]) as client:
        response = client.send_request(request, connection_timeout=TIMEOUT_SECONDS, read_timeout=TIMEOUT_SECONDS)
        status, text = response.status_code, response.text()
    if status == 200:
        values = _json(text).get("value") or [{}]
        return values[0] if isinstance(values, list) and isinstance(values[0], dict) else {}
    error = _json(text).get("error")
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or f"Http{status}")
    message = str(error.get("message") or text[:500] or f"Exchange Online answered {status}")
    log.warning("Exchange Online answered %s %s to Get-OrganizationConfig in tenant %s", status, code, tenant_id)
    raise ExchangeAdminError(status, code, message)


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
