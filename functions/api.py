"""HTTP conventions shared by the blueprints: JSON answers, Azure's error shape, the long-running-operation
contract (status codes by lifecycle status, Retry-After, status links with a capability token).

Error bodies follow the Microsoft REST API guidelines (Azure): ``{"error": {"code", "message", "target"?,
"details": [{"code", "target", "message"}]}}`` and the ``x-ms-error-code`` header. Long-running operations follow
Durable Functions' own status endpoint and Logic Apps' asynchronous pattern: 202 with ``Location`` and
``Retry-After`` while the work can still progress, 200 once it is terminal, 500 for a failure when the poller
asks with ``returnInternalServerErrorOnFailure=true``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

import azure.functions as func

from shared.rules import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ONBOARDING_ID_PATTERN

# Lifecycle statuses (the product's word, `status`). Progressing ones answer 202: the work can still move on
# without a new request (needsAttention: the admin can fix it and verify again). Terminal ones answer 200.
PROGRESSING = ("pending", "running", "waitingForAdmin", "waitingForCertificate", "needsAttention")
TERMINAL = ("completed", "failed", "expired", "retired")
FAILURES = ("failed", "expired")
# Durable's runtime statuses (`runtimeStatus`) that are not terminal: the instance can still run.
ACTIVE_RUNTIME = frozenset({"Pending", "Running", "Suspended", "ContinuedAsNew"})
FAIL_SWITCH = "returnInternalServerErrorOnFailure"
# Retry-After: a step runs (short), a durable retry timer is pending (its due time, within bounds), a person
# has to act (long).
RETRY_WHILE_RUNNING = 2
RETRY_WHILE_PENDING = 5
RETRY_TIMER_BOUNDS = (5, 60)
RETRY_WAITING_FOR = 20
RETRY_WHILE_PEOPLE_ACT = 60


def json_response(body, status: int = 200, headers: dict | None = None) -> func.HttpResponse:
    """A JSON answer."""
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def azure_error(status: int, code: str, message: str, *, target: str | None = None,
                details: list[dict] | None = None, innererror: dict | None = None,
                headers: dict | None = None) -> func.HttpResponse:
    """An error in Azure's shape, with the code in x-ms-error-code."""
    error: dict = {"code": code, "message": message}
    if target:
        error["target"] = target
    error["details"] = details or []
    if innererror:
        error["innererror"] = innererror
    return json_response({"error": error}, status, {"x-ms-error-code": code, **(headers or {})})


def validation_error(problems: list[dict[str, str]], code: str = "InvalidRequest") -> func.HttpResponse:
    """400 for request problems ({field, rule} each): one detail per problem, its target the field and its
    message the rule; a single problem also names its field as the error's target."""
    details = [{"code": "InvalidValue", "target": p["field"], "message": p["rule"]} for p in problems]
    message = "; ".join(f"{p['field']}: {p['rule']}" for p in problems) or "the request is invalid"
    target = problems[0]["field"] if len(problems) == 1 else None
    return azure_error(400, code, message, target=target, details=details)


def _internal_error(correlation: str) -> func.HttpResponse:
    return azure_error(500, "InternalServerError", f"The request failed unexpectedly. Correlation id: {correlation}.",
                       innererror={"correlationId": correlation}, headers={"x-ms-correlation-request-id": correlation})


def handled(log: logging.Logger, answer: Callable[[str], func.HttpResponse] = _internal_error) -> Callable:
    """Wrap an HTTP function: an unhandled exception answers 500 (in Azure's shape, or what `answer` makes of the
    correlation id, e.g. a page) with a correlation id, which the log line (with the traceback) carries too; the
    caller never sees the exception."""

    def wrap(handler: Callable[..., Awaitable[func.HttpResponse]]):
        @functools.wraps(handler)
        async def wrapped(*args, **kwargs) -> func.HttpResponse:
            try:
                return await handler(*args, **kwargs)
            except Exception:
                correlation = str(uuid.uuid4())
                log.exception("%s failed; correlation id %s", handler.__name__, correlation)
                return answer(correlation)

        return wrapped

    return wrap


def http_status(lifecycle: str | None, fail_on_error: bool) -> int:
    """The answer's status code for a lifecycle status (see the README's table)."""
    if lifecycle in TERMINAL:
        return 500 if fail_on_error and lifecycle in FAILURES else 200
    return 202


def wants_failure_as_error(req: func.HttpRequest) -> bool:
    """Durable's query switch returnInternalServerErrorOnFailure=true."""
    return (req.params.get(FAIL_SWITCH) or "").strip().lower() == "true"


def retry_after(lifecycle: str | None, custom_status: dict | None, now: datetime | None = None) -> int:
    """Seconds a poller should wait: short while steps run, the time to a pending retry timer (bounded), longer
    while waiting on replication, consent or a person."""
    custom = custom_status if isinstance(custom_status, dict) else {}
    if lifecycle in ("waitingForAdmin", "waitingForCertificate", "needsAttention"):
        return RETRY_WHILE_PEOPLE_ACT
    retry_at = custom.get("retryAt")
    if isinstance(retry_at, str):
        try:
            due = datetime.fromisoformat(retry_at.replace("Z", "+00:00"))
            if due.tzinfo is None:
                due = due.replace(tzinfo=UTC)
            seconds = int((due - (now or datetime.now(UTC))).total_seconds()) + 1
            low, high = RETRY_TIMER_BOUNDS
            return max(low, min(high, seconds))
        except ValueError:
            pass
    if custom.get("waitingFor"):
        return RETRY_WAITING_FOR
    return RETRY_WHILE_PENDING if lifecycle == "pending" else RETRY_WHILE_RUNNING


def with_query(url: str, **params: str) -> str:
    """`url` with more query parameters: after `&` when it already has a query string, else after `?`."""
    if not params:
        return url
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def public_base(req: func.HttpRequest, configured: str | None) -> str:
    """The root of the product's public URLs: CERTAUTH_PUBLIC_BASE_URL, else the request's own origin (and any
    path before /api/), for answers to this caller only."""
    if configured:
        return configured.rstrip("/")
    return req.url.split("?", 1)[0].split("/api/", 1)[0]


def status_link(base: str, instance: str, token: str, *, fail_on_error: bool = False) -> str:
    """The anonymous status URL of one onboarding, carrying its read-only token."""
    url = f"{base}/api/onboardings/{quote(instance, safe='')}/status?token={quote(token, safe='')}"
    return with_query(url, **({FAIL_SWITCH: "true"} if fail_on_error else {}))


def view_link(base: str, instance: str, token: str) -> str:
    """The progress page of one onboarding, authorised by its status token."""
    return f"{base}/api/onboardings/{quote(instance, safe='')}/view?token={quote(token, safe='')}"


ONBOARDING_ID = re.compile(ONBOARDING_ID_PATTERN)


async def capability_valid(purpose: str, onboarding: str, token: str) -> bool:
    """Whether `token` is a valid capability token for `purpose` (a status URL, a rotation's or an offboarding's) on
    this onboarding: signed by an accepted key version, not expired."""
    from shared.settings import get_settings
    from shared.signing import TokenRejected, read_token, signing_keys, token_version

    if not ONBOARDING_ID.match(onboarding):
        return False
    try:
        keys = await asyncio.to_thread(signing_keys(get_settings()).accepted, token_version(token))
        read_token(token, keys, purpose, onboarding)
    except TokenRejected:
        return False
    return True


def page_options(req: func.HttpRequest, problems: list[dict[str, str]]) -> tuple[int, str | None]:
    """A paged list's `top` (1 to MAX_PAGE_SIZE, else DEFAULT_PAGE_SIZE) and `continuationToken` (a nextLink's);
    what is wrong goes into `problems`."""
    from shared.state import decode_continuation

    top_raw, token = req.params.get("top"), req.params.get("continuationToken") or None
    top = DEFAULT_PAGE_SIZE
    if top_raw is not None:
        if not top_raw.isdigit() or not 1 <= int(top_raw) <= MAX_PAGE_SIZE:
            problems.append({"field": "top", "rule": f"must be a whole number from 1 to {MAX_PAGE_SIZE}"})
        else:
            top = int(top_raw)
    if token is not None:
        try:
            decode_continuation(token)
        except ValueError:
            problems.append({"field": "continuationToken", "rule": "must be a nextLink's token"})
    return top, token


def next_link(req: func.HttpRequest, configured_base: str | None, route: str, token: str | None,
              **query: str | None) -> str | None:
    """The next page's absolute URL on the public base, with the list's own query and the continuation token; it
    carries no key (send it as a header)."""
    if not token:
        return None
    given = {name: value for name, value in query.items() if value is not None}
    return with_query(f"{public_base(req, configured_base)}/api/{route}", **given, continuationToken=token)
