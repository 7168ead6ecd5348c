"""One classifier for the failures of every onboarding step: transient (the orchestration runs the step again after
a durable timer) or permanent (the onboarding fails at once, naming the step, the service's status and code, and
the fix where one is known), and the retry budgets of the transient kinds.

Transient:
- 429 and 5xx from Microsoft Graph (kiota's APIError / msgraph's ODataError, wrapped as GraphError), Key Vault and
  Table Storage (azure-core's HttpResponseError), after the SDK's own retries;
- connection errors and timeouts (azure-core's ServiceRequestError / ServiceResponseError, httpx's TransportError,
  ConnectionError, TimeoutError);
- directory replication: Graph's documented answers about objects just created (GraphError.is_replication);
- consent or credentials still propagating (the Entra codes below), and the steps' own waits (`Transient`);
- Exchange Online's admin API (the Exchange proof, shared/exchange.py): 401 (Exchange.ManageAsApp not in the token
  yet) and, inside the role-propagation window, 403 with the role message (the role not in the token yet).
Everything else is permanent, named by the service's code or the exception's type.

Pure Python over exception objects: the SDKs are imported lazily and only to recognise their exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .exchange import PERMISSION_FIX, ROLE_FIX, ROLE_NOT_SUPPORTED, ExchangeAdminError
from .graph import GraphError, graph_error_of

# What a transient failure waits for (the orchestrator's custom status `waitingFor`).
REPLICATION, CONSENT, THROTTLING, TRANSIENT = "replication", "consent", "throttling", "transient"

CONSENT_FIX = "the tenant's administrator has not consented to the onboarding app: open the onboarding link"

# Entra's codes (learn.microsoft.com/entra/identity-platform/reference-error-codes), by what they wait for.
# The onboarding app is not (or not yet) consented in the tenant: AADSTS700016 UnauthorizedClient_DoesNotMatchRequest
# ("the application has not been installed by the administrator of the tenant or consented to"), AADSTS700011
# UnauthorizedClientAppNotFoundInOrgIdTenant, AADSTS500011 InvalidResourceServicePrincipalNotFound (same words, for
# the resource), AADSTS65001 DelegationDoesNotExist ("the user or administrator has not consented").
CONSENT_CODES = frozenset({"AADSTS700016", "AADSTS700011", "AADSTS500011", "AADSTS65001"})
# A new service principal or certificate not known to the token service yet: AADSTS7000229 (the app has no service
# principal in its home tenant; entra/identity-platform app-authentication troubleshooting), AADSTS700027 (the
# certificate that signed the client assertion is not registered on the application: a key just added).
PROPAGATION_CODES = frozenset({"AADSTS7000229", "AADSTS700027"})
# The token service itself: AADSTS90006 ExternalServerRetryableError, AADSTS90024 RequestBudgetExceededError ("a
# transient error has occurred, try again"), AADSTS90033 MsodsServiceUnavailable; AADSTS50196 LoopDetected (too many
# identical requests: come back later).
OUTAGE_CODES = frozenset({"AADSTS90006", "AADSTS90024", "AADSTS90033"})
THROTTLING_CODES = frozenset({"AADSTS50196"})
_AADSTS = re.compile(r"AADSTS\d+")

# How long a step keeps retrying, from its first transient failure, on the orchestration's clock. Directory
# replication has no documented SLA; Microsoft's guidance is to retry with backoff for 10 minutes or more
# (REFERENCE.md, "Directory replication"). A missing consent is the most common setup mistake and no wait fixes
# it: a short budget, then the fix is named. Right after a recorded consent (the onboarding link's callback puts
# `consentedAt` in the request) the same codes mean the consent is still propagating: the budget then runs to
# the end of the propagation window.
RETRY_BUDGET = timedelta(minutes=12)
CONSENT_BUDGET = timedelta(minutes=5)
CONSENT_PROPAGATION_WINDOW = timedelta(minutes=15)
# The waits between attempts (seconds): short first (most replication is over in seconds), then a minute.
BACKOFF_SECONDS = (5, 10, 20, 40, 60)
MAX_MESSAGE = 1000


class Transient(Exception):
    """A step's own transient condition (a certificate still being created, a token's roles catching up)."""

    def __init__(self, message: str, waiting_for: str = TRANSIENT, code: str = "Transient", status: int = 0) -> None:
        super().__init__(message)
        self.waiting_for, self.code, self.status = waiting_for, code, status


class Permanent(Exception):
    """A step's own permanent failure, named (a refused option, a catalog that the tenant contradicts)."""

    def __init__(self, status: int, code: str, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.fix = status, code, fix


@dataclass(frozen=True)
class Failure:
    """What a step's exception means: retry later (`transient`) or fail now; `error` is JSON-safe."""

    transient: bool
    error: dict

    def outcome(self) -> dict:
        """The step's result (an activity never raises): {"ok": False, "retry", "error"}."""
        return {"ok": False, "retry": self.transient, "error": self.error}


def _error(step: str, status: int, code: str, message: str, *, waiting_for: str | None = None,
           fix: str | None = None) -> dict:
    error = {"step": step, "status": status or 0, "code": code, "message": str(message)[:MAX_MESSAGE]}
    if fix:
        error["fix"] = fix
    if waiting_for:
        error["waitingFor"] = waiting_for
    return error


def _transient(step: str, waiting_for: str, status: int, code: str, message: str, fix: str | None = None) -> Failure:
    return Failure(True, _error(step, status, code, message, waiting_for=waiting_for, fix=fix))


def _permanent(step: str, status: int, code: str, message: str, fix: str | None = None) -> Failure:
    return Failure(False, _error(step, status, code, message, fix=fix))


def _by_status(step: str, status: int, code: str, message: str) -> Failure:
    """A service's HTTP answer after its SDK's retries: 408, 429 and 5xx come back, the rest is final."""
    if status == 429 or (status == 503 and code == "ServerBusy"):  # Storage's ServerBusy is its throttling
        return _transient(step, THROTTLING, status, code, message)
    if status == 408 or status >= 500:
        return _transient(step, TRANSIENT, status, code, message)
    return _permanent(step, status, code, message)


def entra_message(error: BaseException) -> str:
    """An Entra error's text without the Trace ID / Correlation ID / Timestamp lines (they differ per attempt)."""
    text = str(getattr(error, "message", None) or error)
    return re.split(r"\s*Trace ID", text, maxsplit=1)[0]


def _entra(step: str, error: BaseException) -> Failure:
    """azure-identity's ClientAuthenticationError: by the AADSTS code in its message."""
    message = entra_message(error)
    status = getattr(error, "status_code", None) or 0
    match = _AADSTS.search(message)
    if match is None:
        # No answer from Entra itself (the managed identity endpoint, the network): transient unless the service
        # answered with a final status.
        if status and status < 500 and status not in (408, 429):
            return _permanent(step, status, "AuthenticationFailed", message)
        return _transient(step, THROTTLING if status == 429 else TRANSIENT, status, "AuthenticationFailed", message)
    code = match.group(0)
    if code in CONSENT_CODES:
        return _transient(step, CONSENT, status, code, message, fix=CONSENT_FIX)
    if code in PROPAGATION_CODES:
        return _transient(step, REPLICATION, status, code, message)
    if code in OUTAGE_CODES:
        return _transient(step, TRANSIENT, status, code, message)
    if code in THROTTLING_CODES:
        return _transient(step, THROTTLING, status, code, message)
    return _permanent(step, status or 401, code, message)


def _exchange(step: str, error: ExchangeAdminError) -> Failure:
    """Exchange Online's admin API: 401 and the role's 403 wait for replication (the app's grant, its directory role:
    Exchange reads both from the token, which lags the directory); the rest by status."""
    if error.status == 401:
        return _transient(step, REPLICATION, 401, "ExchangeManageAsAppNotInToken", error.message, fix=PERMISSION_FIX)
    if error.role_not_supported:
        failure = _transient(step, REPLICATION, 403, ROLE_NOT_SUPPORTED, error.message, fix=ROLE_FIX)
        if error.retry_until is not None:
            # The end of the role-propagation window: how long this failure is worth retrying (retry_deadline).
            failure.error["retryUntil"] = error.retry_until.isoformat()
        return failure
    return _by_status(step, error.status, error.code, error.message)


def _is_connection_error(error: BaseException) -> bool:
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    if isinstance(error, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with msgraph-sdk
        return False
    return isinstance(error, httpx.TransportError)


def classify(step: str, error: BaseException) -> Failure:
    """Transient or permanent, with the step's error {step, status, code, message, fix?, waitingFor?}."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if isinstance(error, Transient):
        return _transient(step, error.waiting_for, error.status, error.code, str(error))
    if isinstance(error, Permanent):
        return _permanent(step, error.status, error.code, str(error), fix=error.fix)
    graph = graph_error_of(error)
    if graph is not None:
        error = graph
    if isinstance(error, GraphError):
        if error.is_replication:
            return _transient(step, REPLICATION, error.status, error.code, error.message)
        if error.status == 0:  # no HTTP answer to classify
            return _permanent(step, 0, error.code, error.message)
        return _by_status(step, error.status, error.code, error.message)
    if isinstance(error, ExchangeAdminError):
        return _exchange(step, error)
    if isinstance(error, ClientAuthenticationError):  # an HttpResponseError too: first
        return _entra(step, error)
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        code = (getattr(error, "error_code", None) or getattr(getattr(error, "error", None), "code", None)
                or type(error).__name__)
        code = str(getattr(code, "value", code))  # azure-data-tables gives its TableErrorCode enum
        if not status:
            return _permanent(step, 0, code, error.message or str(error))
        return _by_status(step, status, code, error.message or str(error))
    if _is_connection_error(error):
        return _transient(step, TRANSIENT, 0, type(error).__name__, str(error) or type(error).__name__)
    try:
        import httpx
    except ImportError:  # pragma: no cover
        httpx = None
    if httpx is not None and isinstance(error, httpx.HTTPStatusError):
        return _by_status(step, error.response.status_code, type(error).__name__, str(error))
    return _permanent(step, 0, type(error).__name__, str(error) or type(error).__name__)


# -- the orchestrator's side: how long and how often (pure functions of the orchestration's clock) --------------

def backoff(attempt: int) -> timedelta:
    """The wait after the `attempt`-th failed attempt (1-based)."""
    return timedelta(seconds=BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1])


def retry_deadline(waiting_for: str | None, first_failure: datetime, consented_at: datetime | None = None,
                   retry_until: datetime | str | None = None) -> datetime:
    """Until when a step whose first transient failure was at `first_failure` keeps retrying. A failure that says
    until when it is worth retrying (the error's `retryUntil`: the Exchange proof's role-propagation window) is
    retried until one attempt after that, so that the step itself reports the end of its window."""
    if retry_until is not None:
        until = datetime.fromisoformat(retry_until.replace("Z", "+00:00")) if isinstance(retry_until, str) \
            else retry_until
        return max(first_failure + RETRY_BUDGET, until + backoff(len(BACKOFF_SECONDS)))
    if waiting_for != CONSENT:
        return first_failure + RETRY_BUDGET
    deadline = first_failure + CONSENT_BUDGET
    if consented_at is not None:
        deadline = max(deadline, consented_at + CONSENT_PROPAGATION_WINDOW)
    return deadline


def exhausted(error: dict, attempts: int, first_failure: datetime, now: datetime) -> dict:
    """The permanent error of a transient failure whose budget is spent: says how long it was tried, names the fix."""
    minutes = max(1, round((now - first_failure).total_seconds() / 60))
    tried = f"still failing after {attempts} attempts in {minutes} min: {error['message']}"
    message = f"{error['fix']} ({tried})" if error.get("fix") else tried
    final = {key: value for key, value in error.items() if key not in ("waitingFor", "retryUntil")}
    return {**final, "message": message[:MAX_MESSAGE]}
