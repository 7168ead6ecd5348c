"""Loopback proxies in front of Azurite's Table service, so that Table Storage takes fault rules too.

Two origins of the simulator process forward to the same Azurite:
  tables   the product's own state (its TABLES_CONNECTION_STRING points here)
  taskhub  the sandbox host's task hub (the host's AzureWebJobsStorage points here)

A request is forwarded as it came: method, path, query, headers (Host included) and body, so Shared Key
signatures hold (Shared Key and Shared Key Lite for the Table service sign the verb, Content-MD5,
Content-Type, Date and the canonicalized resource "/<account>/<path>" plus `comp` — never the host:
learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key, "Table service (Shared Key
authorization)"), and so do `$batch` bodies, whose inner requests carry absolute URLs of this proxy and are
authorized by the outer request only. The answer is streamed back unchanged. Fault rules (server.py) run
before forwarding, and their errors take Table Storage's own shape (see `storage_error_response`).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from sandbox.azurite import ACCOUNT_KEY, ACCOUNT_NAME

# Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, not the request's: not forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
              "te", "trailer", "transfer-encoding", "upgrade"}

# Azurite's documented well-known development account, when the upstream is given as a URL only.
DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY = ACCOUNT_NAME, ACCOUNT_KEY

# Azure Storage's common error codes and their documented messages (learn.microsoft.com/rest/api/
# storageservices/common-rest-api-error-codes): what fault rules answer on the storage origins.
STORAGE_ERRORS = {
    500: ("InternalError", "The server encountered an internal error. Please retry the request."),
    503: ("ServerBusy", "The server is currently unable to receive requests. Please retry your request."),
    # Table service: "OperationTimedOut" is also 500; 429 is not a status Storage answers (it throttles
    # with 503 ServerBusy), so other statuses get a generic code.
}


class Upstream:
    """Azurite's Table endpoint and the connection string that reaches it."""

    def __init__(self, value: str) -> None:
        value = value.strip()
        if "=" in value:  # a connection string (a URL of this kind has no "=")
            parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
            endpoint = parts.get("TableEndpoint")
            if not endpoint:
                raise ValueError("the connection string has no TableEndpoint")
            self.account_name = parts.get("AccountName", DEV_ACCOUNT_NAME)
            self.account_key = parts.get("AccountKey", DEV_ACCOUNT_KEY)
        else:
            endpoint = value
            self.account_name = urlsplit(value).path.strip("/").split("/")[0] or DEV_ACCOUNT_NAME
            self.account_key = DEV_ACCOUNT_KEY
        split = urlsplit(endpoint.rstrip("/"))
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError(f"not a Table endpoint URL: {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.origin = f"{split.scheme}://{split.netloc}"   # where requests go; their path is kept
        self.account_path = split.path                   # "/devstoreaccount1" (path-style, as Azurite)

    def connection_string(self, table_endpoint: str) -> str:
        """A connection string for this account whose TableEndpoint is `table_endpoint`."""
        return (f"DefaultEndpointsProtocol={urlsplit(table_endpoint).scheme};AccountName={self.account_name};"
                f"AccountKey={self.account_key};TableEndpoint={table_endpoint};")


def storage_error_response(request: web.Request, status: int, code: str | None, message: str | None,
                           headers: dict[str, str] | None = None) -> web.Response:
    """An error as the Table service answers it.

    JSON (what the SDKs ask for with `Accept: application/json;odata=…`):
        {"odata.error": {"code": "ServerBusy",
                         "message": {"lang": "en-US", "value": "<message>\\nRequestId:<id>\\nTime:<ISO 8601>"}}}
    with the `x-ms-error-code`, `x-ms-request-id` and `x-ms-version` headers. Sources: learn.microsoft.com/
    rest/api/storageservices/common-rest-api-error-codes (codes, statuses, messages) and .../table-service-
    error-codes; the JSON body is the Table service's OData error as Azure/azure-sdk-for-net
    sdk/tables/Azure.Data.Tables/tests/TableClientTests.cs records it ("message": {"lang": "en-US", "value":
    "…\nRequestId:…\nTime:…"}), and as azure-data-tables' `_decode_error` reads it (`odata.error` → code,
    message.value; the `x-ms-error-code` header first). A client that accepts only XML (the Atom format of
    old versions) gets the same error as the OData XML `<error>` document."""
    default_code, default_message = STORAGE_ERRORS.get(status, ("InternalError" if status >= 500 else "InvalidInput",
                                                                "An error was injected by the sandbox."))
    code = code or default_code
    message = message or default_message
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    value = f"{message}\nRequestId:{request_id}\nTime:{now}"
    out_headers = {"x-ms-error-code": code, "x-ms-request-id": request_id,
                   "x-ms-version": request.headers.get("x-ms-version", "2019-02-02"),
                   "Cache-Control": "no-cache", **(headers or {})}
    accept = request.headers.get("Accept", "")
    if "xml" in accept and "json" not in accept:
        body = ('<?xml version="1.0" encoding="utf-8"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/'
                f'dataservices/metadata"><code>{_xml(code)}</code><message xml:lang="en-US">{_xml(value)}'
                '</message></error>')
        return web.Response(status=status, text=body, content_type="application/xml", charset="utf-8",
                            headers=out_headers)
    body = {"odata.error": {"code": code, "message": {"lang": "en-US", "value": value}}}
    return web.Response(status=status, body=json.dumps(body).encode(), headers={
        **out_headers, "Content-Type": "application/json;odata=minimalmetadata;streaming=true;charset=utf-8"})


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def setup(app: web.Application, upstream: Upstream) -> None:
    """Serve every path of `app` by forwarding it to `upstream` (one client session per origin)."""

    async def open_session(app: web.Application):
        # auto_decompress off: bodies are passed through as Azurite encoded them.
        app["upstream_session"] = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            connector=aiohttp.TCPConnector(limit=0))
        yield
        await app["upstream_session"].close()

    app["upstream"] = upstream
    app.cleanup_ctx.append(open_session)
    app.router.add_route("*", "/{tail:.*}", forward)


async def forward(request: web.Request) -> web.StreamResponse:
    """Forward one request to Azurite and stream its answer back."""
    upstream: Upstream = request.app["upstream"]
    session: aiohttp.ClientSession = request.app["upstream_session"]
    headers = [(k, v) for k, v in request.headers.items()
               if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
    present = {k.lower() for k, _ in headers}
    # aiohttp's client adds these when absent; the request must reach Azurite as it was sent.
    skip = [h for h in ("User-Agent", "Accept", "Accept-Encoding", "Content-Type") if h.lower() not in present]
    body = await request.read()
    url = URL(upstream.origin + request.raw_path, encoded=True)
    try:
        answer = await session.request(request.method, url, headers=headers, data=body if body else None,
                                       skip_auto_headers=skip, allow_redirects=False)
    except aiohttp.ClientConnectionError as exc:
        # Azurite is down or went away: what a client of a real account would see is a 503 from the front end.
        return storage_error_response(request, 503, None, f"The sandbox could not reach Azurite: {exc}")
    async with answer:
        response = web.StreamResponse(status=answer.status, reason=answer.reason)
        for key, value in answer.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
