"""Error responses in the shapes each Microsoft service documents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web


class ServiceError(Exception):
    """Raised by handlers; the error middleware turns it into the origin's error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


def graph_error_body(code: str, message: str) -> dict:
    """Graph: {"error": {"code", "message", "innerError": {"request-id", "date"}}}."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "")
    request_id = str(uuid.uuid4())
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id}}}


def keyvault_error_body(code: str, message: str) -> dict:
    """Key Vault: {"error": {"code", "message"}}."""
    return {"error": {"code": code, "message": message}}


def aad_error_body(error: str, aadsts: int, description: str, **extra) -> dict:
    """Entra token endpoint: {error, error_description: "AADSTSnnn: …", error_codes, timestamp, trace_id, …}."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {uuid.uuid4()} "
                             f"Timestamp: {now}",
        "error_codes": [aadsts],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
        **extra,
    }


class AADError(ServiceError):
    """A token-endpoint error (OAuth 2.0 `error` plus the AADSTS code)."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(status, error, description)
        self.aadsts = aadsts


def error_response(origin: str, exc: ServiceError) -> web.Response:
    """Render a ServiceError the way `origin` ('graph', 'vault', 'login', 'identity') renders errors."""
    if isinstance(exc, AADError):
        body = aad_error_body(exc.code, exc.aadsts, exc.message)
    elif origin == "vault":
        body = keyvault_error_body(exc.code, exc.message)
    else:
        body = graph_error_body(exc.code, exc.message)
    body.update(exc.extra)
    headers = {"Cache-Control": "no-store", **exc.headers}
    if origin == "graph":
        headers.setdefault("request-id", body["error"]["innerError"]["request-id"])
    return web.json_response(body, status=exc.status, headers=headers)
