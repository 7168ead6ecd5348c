"""Orchestrations and client operations that pin the host's fidelity to the Durable extension and DTFx."""

import json
import os

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.activity_trigger(input_name="gate")
def fails_until_gate(gate: str) -> str:
    """Fails while the gate file is missing (survives a host restart, unlike an in-memory counter)."""
    if not os.path.exists(gate):
        raise RuntimeError(f"gate {os.path.basename(gate)} is closed")
    return "gate open"


@bp.orchestration_trigger(context_name="context")
def retry_until_gate(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=5)
    return (yield context.call_activity_with_retry("fails_until_gate", options, context.get_input()))


@bp.orchestration_trigger(context_name="context")
def renamed_activity(context: df.DurableOrchestrationContext):
    # WRONG on purpose: the activity's name changes between the first run and the replays
    name = "square" if context.is_replaying else "say_hello"
    first = yield context.call_activity(name, 3 if name == "square" else "first")
    second = yield context.call_activity("say_hello", "again")
    return [first, second]


@bp.orchestration_trigger(context_name="context")
def input_echo(context: df.DurableOrchestrationContext):
    value = context.get_input()
    return {"value": value, "type": type(value).__name__}


@bp.orchestration_trigger(context_name="context")
def event_echo(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    value = yield context.wait_for_external_event("Payload")
    return {"value": value, "type": type(value).__name__}


@bp.route(route="ops/raise/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def raise_body_as_data(req: func.HttpRequest, client):
    """client.raise_event(id, 'Payload', <the request body as a Python str>)."""
    await client.raise_event(req.route_params["instanceId"], "Payload", req.get_body().decode())
    return func.HttpResponse(status_code=202)


@bp.route(route="ops/{operation}/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def client_operation(req: func.HttpRequest, client):
    """suspend / resume / restart through DurableOrchestrationClient; the SDK's return value as JSON."""
    operation, instance_id = req.route_params["operation"], req.route_params["instanceId"]
    try:
        if operation == "suspend":
            result = await client.suspend(instance_id, "suspended by test")
        elif operation == "resume":
            result = await client.resume(instance_id, "resumed by test")
        elif operation == "restart":
            result = await client.restart(instance_id, req.params.get("newId", "true") == "true")
        else:
            return func.HttpResponse(status_code=404)
    except Exception as error:  # the SDK raises a plain Exception with the message
        return func.HttpResponse(json.dumps({"error": str(error)}), status_code=409, mimetype="application/json")
    return func.HttpResponse(json.dumps({"result": result}), mimetype="application/json")


@bp.route(route="listing", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def listing(req: func.HttpRequest, client):
    """client.get_status_by(instance_id_prefix=...): the instance ids the SDK returns."""
    statuses = await client.get_status_by(instance_id_prefix=req.params["prefix"])
    return func.HttpResponse(json.dumps(sorted(s.instance_id for s in statuses)), mimetype="application/json")
