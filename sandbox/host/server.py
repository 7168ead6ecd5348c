"""HTTP side of the sandbox host: triggers, admin routes, durable webhooks, the client RPC API, the clock."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback
from datetime import UTC
from urllib.parse import unquote

import azure.functions as func
from aiohttp import web
from azure.functions.timer import TimerRequest
from dateutil.parser import parse as parse_datetime

from .engine import EVENT_NAMES, SCHEDULING, TERMINAL, Engine, extension_json
from .keys import Keys
from .registry import FunctionInfo
from .taskhub import loads_or_none, table_safe
from .worker import Worker

log = logging.getLogger("sandbox.host.http")
WEBHOOK = "/runtime/webhooks/durabletask"
# OrchestrationStatusQueryCondition.PageSize default (azure-functions-durable-extension)
DEFAULT_PAGE_SIZE = 100
CONTINUATION_HEADER = "x-ms-continuation-token"


def _error(status: int, message: str, error: Exception | None = None) -> web.Response:
    """HttpRequestMessageExtensions.CreateErrorResponse: {Message} or {Message, ExceptionMessage, ...}."""
    body: dict = {"Message": message}
    if error is not None:
        body.update(ExceptionMessage=str(error), ExceptionType=type(error).__name__, StackTrace=None)
    return web.json_response(body, status=status)


def _bool_query(query, name: str) -> bool | None:
    """bool.TryParse of a query value (case-insensitive 'true' / 'false'; anything else: absent)."""
    value = (query.get(name) or "").strip().lower()
    return {"true": True, "false": False}.get(value)


def _status_time(value: str) -> str:
    if not value:
        return value
    return parse_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HostServer:
    def __init__(self, functions: dict[str, FunctionInfo], engine: Engine, worker: Worker, keys: Keys,
                 clock, task_hub: str, route_prefix: str = "api", local_clock: bool = True,
                 on_clock_advanced=None) -> None:
        self.functions = functions
        self.engine = engine
        self.worker = worker
        self.keys = keys
        self.clock = clock
        self.task_hub = task_hub
        self.prefix = route_prefix.strip("/")
        self.local_clock = local_clock
        self.on_clock_advanced = on_clock_advanced or (lambda: None)
        self.http_functions = sorted((f for f in functions.values() if f.kind == "http"),
                                     key=lambda f: f.route.literal_score)
        self.base_url = ""      # set once listening
        self.rpc_base_url = ""  # ends with /durabletask/

    # ---- apps -----------------------------------------------------------------------------

    def public_app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        # Every path reaches the dispatcher, an encoded newline (%0A) in a route parameter included: the Functions
        # host hands such a path to the function, whose own validation answers (`.` alone stops at a newline).
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.dispatch)
        return app

    def rpc_app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/durabletask/{tail:.*}", self.rpc)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        try:
            if path == "/_sandbox/clock":
                return await self.clock_route(request)
            if path.startswith(WEBHOOK + "/"):
                if self.keys.level(self._presented_key(request)) not in ("admin", "system"):
                    return web.Response(status=401)
                return await self.durable_api(request, path[len(WEBHOOK) + 1:], public=True)
            if path.startswith("/admin/"):
                if self.keys.level(self._presented_key(request)) != "admin":
                    return web.Response(status=401)
                return await self.admin(request, path[len("/admin/"):])
            prefix = f"/{self.prefix}/" if self.prefix else "/"
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return await self.http_trigger(request, path[len(prefix):])
            return web.Response(status=404)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("host error on %s %s", request.method, path)
            return web.Response(status=500)

    @staticmethod
    def _presented_key(request: web.Request) -> str | None:
        return request.headers.get("x-functions-key") or request.query.get("code")

    # ---- HTTP triggers --------------------------------------------------------------------

    def _match(self, method: str, path: str):
        path = unquote(path)
        allowed = False
        for info in self.http_functions:
            match = info.route.regex.fullmatch(path)
            if not match:
                continue
            if info.methods and method not in info.methods:
                allowed = True
                continue
            return info, {k: v for k, v in match.groupdict().items() if v is not None}, False
        return None, None, allowed

    async def http_trigger(self, request: web.Request, path: str) -> web.StreamResponse:
        info, route_params, _ = self._match(request.method, path)
        if info is None:
            return web.Response(status=404)   # the Functions host answers 404 for a method it does not route
        granted = self.keys.level(self._presented_key(request))
        if info.auth_level == "admin" and granted != "admin":
            return web.Response(status=401)
        if info.auth_level == "function" and granted not in ("admin", "function"):
            return web.Response(status=401)
        body = await request.read()
        headers = dict(request.headers.items())
        params = dict(request.query.items())
        http_request = func.HttpRequest(method=request.method, url=str(request.url), headers=headers,
                                        params=params, route_params=route_params, body=body)
        try:
            result = await self.worker.call_async(info, http_request, lambda: self.client_binding())
        except Exception:
            log.error("Executed 'Functions.%s' (Failed)\n%s", info.name, traceback.format_exc())
            return web.Response(status=500)
        return self._to_response(result)

    @staticmethod
    def _to_response(result) -> web.Response:
        if result is None:
            return web.Response(status=204)
        if isinstance(result, (str, bytes)):
            result = func.HttpResponse(result)
        if not isinstance(result, func.HttpResponse):
            log.error("an HTTP function returned %s, not an HttpResponse", type(result).__name__)
            return web.Response(status=500)
        headers = {}
        for key, value in result.headers.items():
            headers[key] = value
        if not any(k.lower() == "content-type" for k in headers):
            mimetype = result.mimetype or "text/plain"
            headers["Content-Type"] = f"{mimetype}; charset={result.charset or 'utf-8'}" \
                if mimetype.startswith("text/") or mimetype == "application/json" else mimetype
        return web.Response(status=result.status_code, headers=headers, body=result.get_body())

    # ---- durable client binding -----------------------------------------------------------

    def client_binding(self) -> str:
        code = self.keys.durable_key
        base = f"{self.base_url}{WEBHOOK}"
        return json.dumps({
            "taskHubName": self.task_hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]?code={code}",
                "createAndWaitOnNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                                                     f"?timeout={{timeoutInSeconds}}&pollingInterval="
                                                     f"{{intervalInSeconds}}&code={code}",
            },
            "managementUrls": self._management_urls("INSTANCEID", self.base_url),
            "baseUrl": base,
            "requiredQueryStringParameters": f"code={code}",
            "rpcBaseUrl": self.rpc_base_url,
            "httpBaseUrl": "",
            "maxGrpcMessageSizeInBytes": 0,
            "grpcHttpClientTimeout": "00:01:40",
        })

    def _management_urls(self, instance_id: str, origin: str) -> dict:
        code = self.keys.durable_key
        common = f"taskHub={self.task_hub}&connection=Storage&code={code}"
        instance = f"{origin}{WEBHOOK}/instances/{instance_id}"
        return {
            "id": instance_id,
            "purgeHistoryDeleteUri": f"{instance}?{common}",
            "restartPostUri": f"{instance}/restart?{common}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{common}",
            "statusQueryGetUri": f"{instance}?{common}",
            "terminatePostUri": f"{instance}/terminate?reason={{{{text}}}}&{common}".replace("{{text}}", "{text}"),
            "resumePostUri": f"{instance}/resume?reason={{text}}&{common}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{common}",
        }

    # ---- durable API (RPC for the client, and the public webhooks) ------------------------------

    async def rpc(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self.durable_api(request, request.path[len("/durabletask/"):], public=False)
        except Exception:
            log.exception("rpc error on %s %s", request.method, request.path)
            return web.json_response({"Message": "An error has occurred.",
                                      "ExceptionMessage": traceback.format_exc(limit=2)}, status=500)

    @staticmethod
    def _start_input(raw: bytes) -> str | None:
        """The stored input of a start request, decoded exactly once as the extension does.

        HttpApiHandler.HandleStartOrchestratorRequestAsync: ``input = JsonConvert.DeserializeObject(body)`` (an
        empty body is no input), then DurableClient.StartNewAsync -> MessagePayloadDataConverter.Serialize(input).
        So a body ``{"a":1}`` is stored as ``{"a":1}``, a body ``"9361"`` as ``"9361"`` (a JSON string), and the
        Python client's body (``df_dumps(input)`` posted with aiohttp ``json=``, i.e. JSON text inside a JSON
        string) as that JSON string.  Raises ValueError for a body that is not JSON.
        """
        if not raw.strip():
            return None
        value = json.loads(raw)
        return None if value is None else extension_json(value)

    @staticmethod
    def _event_input(raw: bytes) -> str:
        """The stored EventRaised input: HttpApiHandler.HandleRaiseEventRequestAsync parses the body once
        (MessagePayloadDataConverter.ConvertToJToken; empty or invalid -> JsonReaderException) and
        RaiseEventAsync serializes that token.  The Python client posts ``json.dumps(data)`` with aiohttp
        ``json=``, so its data arrives as a JSON *string* (azure-functions-durable-python issue #295)."""
        return extension_json(json.loads(raw.decode("utf-8")))

    async def durable_api(self, request: web.Request, tail: str, public: bool) -> web.StreamResponse:
        parts = [unquote(p) for p in tail.strip("/").split("/")] if tail.strip("/") else []
        method = request.method
        origin = self.base_url if not public else f"{request.scheme}://{request.host}"
        run = asyncio.get_running_loop().run_in_executor
        if parts and parts[0] == "orchestrators" and len(parts) in (2, 3) and method == "POST":
            try:
                input_json = self._start_input(await request.read())
            except ValueError as error:
                return _error(400, "Invalid JSON content", error)
            instance_id = parts[2] if len(parts) == 3 else None
            if instance_id is not None and not table_safe(instance_id):
                return web.json_response({"Message": "Invalid instance id.", "ExceptionMessage":
                                          f"Instance id '{instance_id}' contains characters that are not allowed "
                                          "(/ \\ # ? or control characters)."}, status=400)
            try:
                instance_id = await run(None, self.engine.start_new, parts[1], instance_id, input_json)
            except LookupError as error:
                return web.json_response({"Message": str(error), "ExceptionMessage": str(error)}, status=400)
            except FileExistsError as error:
                return web.json_response({"Message": str(error), "ExceptionMessage": str(error)}, status=400)
            payload = self._management_urls(instance_id, origin)
            return web.json_response(payload, status=202, headers={
                "Location": payload["statusQueryGetUri"], "Retry-After": "10"})
        if parts and parts[0] == "instances":
            if len(parts) == 1 and method == "GET":
                return self._list(request)
            if len(parts) == 1 and method == "DELETE":
                return await self._purge_by(request)
            instance_id = parts[1]
            inst = self.engine.get(instance_id)
            if len(parts) == 2 and method == "GET":
                return self._get_status(request, inst)
            if len(parts) == 2 and method == "DELETE":
                deleted = await run(None, self.engine.purge, instance_id)
                if not deleted:
                    return web.json_response({"instancesDeleted": 0}, status=404)
                return web.json_response({"instancesDeleted": 1})
            if len(parts) == 3 and parts[2].lower() == "restart" and method == "POST":
                return await self._restart(request, instance_id, inst, origin)
            if inst is None:
                return web.Response(status=404)
            if len(parts) == 4 and parts[2] == "raiseEvent" and method == "POST":
                # HttpApiHandler.HandleRaiseEventRequestAsync: 404 / 410, then the media type, then the JSON
                if inst.status in TERMINAL:
                    return web.Response(status=410)
                if request.content_type.lower() != "application/json":
                    return _error(400, "Only application/json request content is supported")
                try:
                    input_json = self._event_input(await request.read())
                except ValueError as error:
                    return _error(400, "Invalid JSON content", error)
                await run(None, lambda: self.engine.send(instance_id, "EventRaised", name=parts[3],
                                                         input=input_json))
                return web.Response(status=202)
            operation = parts[2].lower() if len(parts) == 3 else None
            if operation in ("terminate", "suspend", "resume") and method == "POST":
                # HttpApiHandler.Handle{Terminate,Suspend,Resume}InstanceRequestAsync: 410 once completed
                if inst.status in TERMINAL:
                    return web.Response(status=410)
                # DurableClient.SuspendAsync / ResumeAsync throw InvalidOperationException for an instance in
                # another state (IsOrchestrationSuspendable: Running, Pending, ContinuedAsNew; resume: Suspended),
                # which HttpApiHandler.HandleRequestAsync answers with 500.
                allowed = ("Running", "Pending", "ContinuedAsNew") if operation == "suspend" else \
                    ("Suspended",) if operation == "resume" else None
                if allowed is not None and inst.status not in allowed:
                    return _error(500, "Something went wrong while processing your request", RuntimeError(
                        f"Cannot {operation} the orchestration instance {instance_id} because instance is in the "
                        f"{inst.status} state."))
                reason = request.query.get("reason", "")
                kind = {"terminate": "Terminate", "suspend": "Suspend", "resume": "Resume"}[operation]
                await run(None, lambda: self.engine.send(instance_id, kind, reason=reason))
                return web.Response(status=202)
        return web.json_response({"Message": f"No durable API route for {method} {tail}"}, status=404)

    def _get_status(self, request: web.Request, inst) -> web.Response:
        """HttpApiHandler.HandleGetStatusRequestAsync for one instance.

        Running, Pending, ContinuedAsNew, Suspended -> 202 with ``Location`` = the request URI and
        ``Retry-After: 5``; Completed, Terminated -> 200; Failed -> 200, or 500 with
        ``returnInternalServerErrorOnFailure=true``; unknown -> 404.
        """
        if inst is None:
            return web.Response(status=404)
        document = self._status(inst, request.query)
        if inst.status == "Failed":
            status = 500 if _bool_query(request.query, "returnInternalServerErrorOnFailure") else 200
            return web.json_response(document, status=status)
        if inst.status in TERMINAL:
            return web.json_response(document, status=200)
        return web.json_response(document, status=202, headers={"Location": str(request.url), "Retry-After": "5"})

    async def _restart(self, request: web.Request, instance_id: str, inst, origin: str) -> web.Response:
        """HttpApiHandler.HandleRestartInstanceRequestAsync -> DurableClient.RestartAsync.

        RestartAsync reads the instance (with its input) and starts its orchestrator again with that input,
        under a new id unless ``restartWithNewInstanceId=false`` (the interface's default is true); the answer is
        CreateCheckStatusResponse for the new instance (202 + management URLs).  An unknown id is an
        ArgumentException -> 400.  Restarting a running instance under the same id hits the start's dedupe
        (OrchestrationAlreadyExistsException) -> 500.
        """
        if inst is None:
            return _error(400, "InstanceId does not match a valid orchestration instance.", ValueError(
                f"An orchestrastion with the instanceId {instance_id} was not found."))
        with_new_id = _bool_query(request.query, "restartWithNewInstanceId")
        with_new_id = True if with_new_id is None else with_new_id
        # StartNewAsync(status.Name, status.Input): the status input is ParseToJToken(stored input), serialized again
        input_json = extension_json(json.loads(inst.input)) if inst.input is not None else None
        run = asyncio.get_running_loop().run_in_executor
        try:
            new_id = await run(None, self.engine.start_new, inst.name, None if with_new_id else instance_id,
                               input_json)
        except FileExistsError as error:
            return _error(500, "Something went wrong while processing your request", error)
        payload = self._management_urls(new_id, origin)
        return web.json_response(payload, status=202, headers={
            "Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    def _status(self, inst, query) -> dict:
        show_input = query.get("showInput", "true").lower() != "false"
        document = {
            "name": inst.name, "instanceId": inst.id, "runtimeStatus": inst.status,
            "input": loads_or_none(inst.input) if show_input else None,
            "customStatus": loads_or_none(inst.custom_status), "output": loads_or_none(inst.output),
            "createdTime": _status_time(inst.created), "lastUpdatedTime": _status_time(inst.updated),
        }
        if query.get("showHistory", "").lower() == "true":
            document["historyEvents"] = self._history(inst, query.get("showHistoryOutput", "").lower() == "true")
        return document

    @staticmethod
    def _history(inst, with_output: bool) -> list[dict]:
        scheduled = {e["EventId"]: e for e in inst.history if e["EventType"] in SCHEDULING}
        out = []
        for event in inst.history:
            kind = event["EventType"]
            if kind in (12, 13, 4, 7):   # orchestrator started/completed; scheduling folded into results
                continue
            item = {"EventType": EVENT_NAMES[kind], "EventId": event["EventId"], "Timestamp": event["Timestamp"]}
            if kind == 0:
                item["FunctionName"] = event["Name"]
                if with_output:
                    item["Input"] = loads_or_none(event.get("Input"))
            elif kind in (5, 6, 8, 9):
                origin = scheduled.get(event["TaskScheduledId"], {})
                item.update(FunctionName=origin.get("Name"), ScheduledTime=origin.get("Timestamp"),
                            TaskScheduledId=event["TaskScheduledId"])
                if kind in (5, 8) and with_output:
                    item["Result"] = loads_or_none(event.get("Result"))
                if kind in (6, 9):
                    item.update(Reason=event.get("Reason"), Details=event.get("Details") if with_output else None)
            elif kind == 10:
                item["FireAt"] = event["FireAt"]
            elif kind == 11:
                item.update(FireAt=event["FireAt"], TimerId=event["TimerId"])
            elif kind == 15:
                item["Name"] = event["Name"]
                if with_output:
                    item["Input"] = loads_or_none(event.get("Input"))
            elif kind == 1:
                item["OrchestrationStatus"] = event["OrchestrationStatus"]
                if with_output:
                    item["Result"] = loads_or_none(event.get("Result"))
            elif kind == 3:
                item["Input"] = loads_or_none(event.get("Input"))
            out.append(item)
        return out

    def _filtered(self, query) -> list:
        statuses = set(filter(None, query.get("runtimeStatus", "").split(",")))
        start = query.get("createdTimeFrom")
        end = query.get("createdTimeTo")
        prefix = query.get("instanceIdPrefix")
        with self.engine.lock:
            instances = list(self.engine.instances.values())
        out = []
        for inst in instances:
            created = parse_datetime(inst.created) if inst.created else None
            if statuses and inst.status not in statuses:
                continue
            if start and created and created < parse_datetime(start).replace(tzinfo=created.tzinfo or UTC):
                continue
            if end and created and created > parse_datetime(end).replace(tzinfo=created.tzinfo or UTC):
                continue
            if prefix and not inst.id.startswith(prefix):
                continue
            out.append(inst)
        return out

    def _list(self, request: web.Request) -> web.Response:
        """HttpApiHandler.HandleGetStatusRequestAsync (list): pages of ``top`` (default 100, the
        OrchestrationStatusQueryCondition.PageSize default), continued with the ``x-ms-continuation-token``
        request header; the response always carries that header (empty on the last page).  The Azure Storage
        provider scans the Instances table in key order, so pages are in instance id order here too."""
        try:
            top = int(request.query.get("top", ""))
        except ValueError:
            top = DEFAULT_PAGE_SIZE
        top = top if top > 0 else DEFAULT_PAGE_SIZE
        instances = sorted(self._filtered(request.query), key=lambda inst: inst.id)
        token = request.headers.get(CONTINUATION_HEADER)
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token.encode()).decode())["after"]
            except (ValueError, KeyError, TypeError) as error:
                return _error(400, "One or more of the arguments submitted is incorrect", error)
            instances = [inst for inst in instances if inst.id > after]
        page = instances[:top]
        next_token = ""
        if len(instances) > top:
            next_token = base64.urlsafe_b64encode(json.dumps({"after": page[-1].id}).encode()).decode()
        return web.json_response([self._status(inst, request.query) for inst in page],
                                 headers={CONTINUATION_HEADER: next_token})

    async def _purge_by(self, request) -> web.Response:
        # HttpApiHandler.HandleDeleteHistoryWithFiltersRequestAsync: createdTimeFrom is required
        try:
            parse_datetime(request.query.get("createdTimeFrom") or "")
        except (ValueError, OverflowError):
            return web.json_response("Please provide value for 'createdTimeFrom' parameter.", status=400)
        deleted = 0
        for inst in self._filtered(request.query):
            if await asyncio.get_running_loop().run_in_executor(None, self.engine.purge, inst.id):
                deleted += 1
        return web.json_response({"instancesDeleted": deleted}, status=200 if deleted else 404)

    # ---- admin ----------------------------------------------------------------------------

    async def admin(self, request: web.Request, tail: str) -> web.StreamResponse:
        parts = tail.strip("/").split("/")
        if parts == ["host", "status"]:
            return web.json_response({"state": "Running", "taskHub": self.task_hub,
                                      "functions": sorted(self.functions)})
        # Sandbox only: the Durable engine's throttles and per-hop cost; PUT {"hopDelayMs": n} changes the hop cost
        # while running (benchmarks compare profiles on one host).
        if parts == ["sandbox", "durable"]:
            if request.method == "PUT":
                try:
                    body = await request.json()
                    hop = float(body["hopDelayMs"])
                except (ValueError, KeyError, TypeError):
                    return web.json_response({"Message": "a JSON object {\"hopDelayMs\": milliseconds} is "
                                                         "required"}, status=400)
                if not 0 <= hop <= 60_000:
                    return web.json_response({"Message": "hopDelayMs: 0 to 60000"}, status=400)
                self.engine.set_hop_delay(hop)
            elif request.method != "GET":
                return web.Response(status=405)
            return web.json_response({"hopDelayMs": self.engine.hop_seconds * 1000,
                                      "maxConcurrentActivityFunctions": self.engine.activity_workers,
                                      "maxConcurrentOrchestratorFunctions": self.engine.orchestrator_workers})
        if parts == ["functions"] and request.method == "GET":
            return web.json_response([{"name": f.name, "kind": f.kind} for f in self.functions.values()])
        # Running a non-HTTP function on demand, as the portal does: POST /admin/functions/{name} with the master key
        # and {"input": "<trigger input>"} answers 202 Accepted and runs it in the background
        # (learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http).
        if len(parts) == 2 and parts[0] == "functions" and request.method == "POST":
            info = next((f for f in self.functions.values() if f.name.lower() == parts[1].lower()), None)
            if info is None:
                return web.Response(status=404)
            if info.kind != "timer":
                return web.json_response({"Message": f"'{info.name}' is a {info.kind} function; only timer "
                                          "triggers can be run through the admin API on the sandbox host"},
                                         status=400)
            asyncio.get_running_loop().create_task(self.fire_timer(info, past_due=False))
            return web.Response(status=202)
        return web.Response(status=404)

    async def fire_timer(self, info: FunctionInfo, past_due: bool) -> bool:
        timer = TimerRequest(past_due=past_due)
        try:
            await self.worker.call_async(info, timer, lambda: self.client_binding())
            log.info("Executed 'Functions.%s' (Succeeded)", info.name)
            return True
        except Exception:
            log.error("Executed 'Functions.%s' (Failed)\n%s", info.name, traceback.format_exc())
            return False

    # ---- clock ----------------------------------------------------------------------------

    async def clock_route(self, request: web.Request) -> web.Response:
        run = asyncio.get_running_loop().run_in_executor
        if request.method == "POST":
            try:
                body = await request.json()
                seconds = float(body["advanceSeconds"])
            except (ValueError, KeyError, TypeError):
                return web.json_response({"error": "body must be {\"advanceSeconds\": N}"}, status=400)
            if seconds < 0:
                return web.json_response({"error": "advanceSeconds must be >= 0"}, status=400)
            if self.local_clock:
                self.clock.advance(seconds)
                document = self.clock.document()
            else:
                document = await run(None, self.clock.advance, seconds)
            self.on_clock_advanced()
            return web.json_response(document)
        if request.method == "GET":
            if self.local_clock:
                return web.json_response(self.clock.document())
            return web.json_response(await run(None, self.clock._call))
        return web.Response(status=405)
