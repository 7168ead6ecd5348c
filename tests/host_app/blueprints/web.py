"""HTTP triggers: Microsoft's starter sample, auth levels, request/response fidelity, client operations."""

import json

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


# Written exactly as Microsoft's quickstart writes it.
@bp.route(route="orchestrators/{functionName}")
@bp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    function_name = req.route_params.get("functionName")
    body = req.get_body()
    instance_id = await client.start_new(function_name, None, json.loads(body) if body else None)
    response = client.create_check_status_response(req, instance_id)
    return response


@bp.route(route="start/{functionName}/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_with_id(req: func.HttpRequest, client):
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["functionName"], req.route_params["instanceId"],
                                         json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="instances/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_instance(req: func.HttpRequest, client):
    status = await client.get_status(req.route_params["instanceId"], show_history=True, show_history_output=True,
                                     show_input=True)
    if not status:
        return func.HttpResponse(status_code=404)
    document = status.to_json()
    document["historyEvents"] = getattr(status, "historyEvents", None)
    return func.HttpResponse(json.dumps(document, default=str), mimetype="application/json")


@bp.route(route="instances/{instanceId}/events/{eventName}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def raise_event(req: func.HttpRequest, client):
    await client.raise_event(req.route_params["instanceId"], req.route_params["eventName"], req.get_json())
    return func.HttpResponse(status_code=202)


@bp.route(route="instances/{instanceId}/terminate", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def terminate(req: func.HttpRequest, client):
    await client.terminate(req.route_params["instanceId"], req.params.get("reason", "stopped by test"))
    return func.HttpResponse(status_code=202)


@bp.route(route="instances/{instanceId}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def purge(req: func.HttpRequest, client):
    result = await client.purge_instance_history(req.route_params["instanceId"])
    return func.HttpResponse(json.dumps({"deleted": result.instances_deleted}), mimetype="application/json")


@bp.route(route="hello/{name:alpha}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"Hello, {req.route_params['name']}!")


@bp.route(route="files/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"path": req.route_params.get("path")}), mimetype="application/json")


@bp.route(route="secure", methods=["GET"])
def secure(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function level ok")


@bp.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin level ok")


@bp.route(route="echo", methods=["POST", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
async def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    document = {
        "method": req.method, "url": req.url, "params": dict(req.params), "routeParams": dict(req.route_params),
        "header": req.headers.get("x-test-header"), "body": req.get_body().decode(), "function": context.function_name,
    }
    return func.HttpResponse(json.dumps(document), status_code=int(req.params.get("status", "201")),
                             headers={"X-Echo": "yes"}, mimetype="application/json")


@bp.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


# A timer trigger that starts an orchestration (like the product's expiry monitor).
@bp.timer_trigger(schedule="0 0 3 * * *", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def nightly(timer: func.TimerRequest, client) -> None:
    import uuid
    await client.start_new("hello_sequence", f"tick-{'late' if timer.past_due else 'ontime'}-{uuid.uuid4().hex[:8]}")
