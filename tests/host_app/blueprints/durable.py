"""Orchestrators and activities exercising the durable features of the sandbox host."""

import asyncio
import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta

import azure.durable_functions as df
from azure.data.tables import TableServiceClient

bp = df.Blueprint()

_attempts: dict[str, int] = {}
_attempts_lock = threading.Lock()


@bp.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield context.call_activity("say_hello", city)))
    return results


@bp.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


@bp.activity_trigger(input_name="value")
async def double_async(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


@bp.activity_trigger(input_name="value")
def square(value: int) -> int:
    return value * value


@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    count = context.get_input() or 10
    tasks = [context.call_activity("square", i) for i in range(count)]
    squares = yield context.task_all(tasks)
    doubled = yield context.call_activity("double_async", sum(squares))
    return {"sum": sum(squares), "doubled": doubled}


@bp.activity_trigger(input_name="request")
def flaky(request: dict) -> str:
    """Fails request['failTimes'] times for request['key'], then succeeds."""
    with _attempts_lock:
        _attempts[request["key"]] = _attempts.get(request["key"], 0) + 1
        attempt = _attempts[request["key"]]
    if attempt <= request["failTimes"]:
        raise ValueError(f"transient failure {attempt}")
    return f"succeeded on attempt {attempt}"


@bp.activity_trigger(input_name="request")
def always_fails(request: str) -> str:
    raise PermissionError(f"permanently denied: {request}")


@bp.orchestration_trigger(context_name="context")
def retry_orchestrator(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=4)
    return (yield context.call_activity_with_retry("flaky", options, context.get_input()))


@bp.orchestration_trigger(context_name="context")
def permanent_failure(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    try:
        yield context.call_activity_with_retry("always_fails", options, "the vault")
    except Exception as error:  # the SDK raises a plain Exception carrying the message
        caught = str(error)
    else:
        caught = None
    if context.get_input() == "rethrow":
        yield context.call_activity("always_fails", "no retry")
    return {"caught": caught}


@bp.orchestration_trigger(context_name="context")
def timer_orchestrator(context: df.DurableOrchestrationContext):
    started = context.current_utc_datetime
    hours = context.get_input() or 1
    yield context.create_timer(started + timedelta(hours=hours))
    return {"started": started.isoformat(), "woke": context.current_utc_datetime.isoformat()}


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting for approval"})
    deadline = context.current_utc_datetime + timedelta(days=1)
    timeout = context.create_timer(deadline)
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timeout])
    if winner == event:
        timeout.cancel()
        context.set_custom_status({"stage": "approved"})
        return {"approved": event.result}
    context.set_custom_status({"stage": "timed out"})
    return {"approved": None, "timedOut": True}


@bp.orchestration_trigger(context_name="context")
def non_deterministic(context: df.DurableOrchestrationContext):
    # WRONG on purpose: the wall clock goes into an action's input
    first = yield context.call_activity("say_hello", datetime.now().isoformat())  # noqa: DTZ005
    second = yield context.call_activity("say_hello", "again")
    return [first, second]


@bp.orchestration_trigger(context_name="context")
def wait_forever(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    yield context.wait_for_external_event("never")
    return "unreachable"


@bp.orchestration_trigger(context_name="context")
def parent_orchestrator(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("hello_sequence", None, f"{context.instance_id}-child")
    counted = yield context.call_sub_orchestrator("counter", 0)
    return {"child": child, "counted": counted}


@bp.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    value = context.get_input() or 0
    if value < 3:
        context.continue_as_new(value + 1)
        return None
    return value


@bp.orchestration_trigger(context_name="context")
def crash_resume(context: df.DurableOrchestrationContext):
    run = context.get_input()
    results = []
    for step in range(4):
        results.append((yield context.call_activity("record_step", {"run": run["run"], "step": step,
                                                                     "gate": run["gate"]})))
    return results


def _steps_table():
    service = TableServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"])
    return service.create_table_if_not_exists("HostAppSteps")


@bp.activity_trigger(input_name="request")
def record_step(request: dict) -> str:
    """Appends 'started'/'done' rows to an Azurite table; step 2 waits for a gate file to exist."""
    table = _steps_table()
    table.create_entity({"PartitionKey": request["run"], "RowKey": f"{request['step']}-started-{uuid.uuid4().hex}",
                         "Step": request["step"], "Phase": "started", "Pid": os.getpid()})
    if request["step"] == 2:
        deadline = time.monotonic() + 60
        while not os.path.exists(request["gate"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    table.create_entity({"PartitionKey": request["run"], "RowKey": f"{request['step']}-done-{uuid.uuid4().hex}",
                         "Step": request["step"], "Phase": "done", "Pid": os.getpid()})
    return f"step {request['step']} by {os.getpid()}"


@bp.orchestration_trigger(context_name="context")
def echo_input(context: df.DurableOrchestrationContext):
    data = context.get_input()
    return {"input": data, "uuid": context.new_uuid(), "json": json.dumps(data)}


@bp.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    """N sequential activity hops (the benchmark's workload)."""
    total = 0
    for i in range(context.get_input() or 10):
        total += yield context.call_activity("square", i)
    return total
