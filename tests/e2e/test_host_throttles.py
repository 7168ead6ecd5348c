"""The sandbox host honours host.json's Durable concurrency throttles (maxConcurrentActivityFunctions,
maxConcurrentOrchestratorFunctions, and their app-setting overrides) and adds the per-hop cost of the Durable backend
when asked (--hop-delay-ms / SANDBOX_HOST_HOP_MS / PUT /admin/sandbox/durable)."""

from __future__ import annotations

import json
import textwrap

from dateutil.parser import parse as parse_datetime

APP = '''
import json
import os
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="orchestrators/{functionName}")
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["functionName"], None, json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    spans = yield context.task_all([context.call_activity("nap", i) for i in range(context.get_input())])
    return spans


@app.activity_trigger(input_name="index")
def nap(index: int) -> list:
    started = time.time()
    time.sleep(0.25)
    return [started, time.time()]


@app.orchestration_trigger(context_name="context")
def slow_episode(context: df.DurableOrchestrationContext):
    # an episode that holds its orchestration thread for a while; its span goes to a file, outside the history
    started = time.time()
    time.sleep(0.3)
    with open(os.environ["EPISODES_FILE"], "a", encoding="utf-8") as spans:
        spans.write(json.dumps([started, time.time()]) + "\\n")
    return "done"


@app.orchestration_trigger(context_name="context")
def two_steps(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("echo", 1)
    second = yield context.call_activity("echo", 2)
    return [first, second]


@app.activity_trigger(input_name="value")
def echo(value: int) -> int:
    return value
'''


def _app(tmp_path, durable: dict):
    tmp_path.mkdir()
    (tmp_path / "function_app.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {
        "http": {"routePrefix": "api"}, "durableTask": {"hubName": "ThrottleHub", **durable}}}), encoding="utf-8")
    return tmp_path


def _peak(spans: list[list[float]]) -> int:
    """The most spans open at one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_activities_and_orchestrations_run_at_most_as_many_at_once_as_host_json_says(make_host, tmp_path):
    app = _app(tmp_path / "app", {"maxConcurrentActivityFunctions": 2, "maxConcurrentOrchestratorFunctions": 3})
    episodes = tmp_path / "episodes.jsonl"
    host = make_host(app_dir=app, env={"EPISODES_FILE": str(episodes)}).launch()
    assert (host.info["maxConcurrentActivityFunctions"], host.info["maxConcurrentOrchestratorFunctions"]) == (2, 3)
    assert host.call("GET", "/admin/sandbox/durable", key="admin").json() == {
        "hopDelayMs": 0.0, "maxConcurrentActivityFunctions": 2, "maxConcurrentOrchestratorFunctions": 3}

    status = host.wait(host.start("fan_out", 6)["id"], timeout=30)
    assert status["runtimeStatus"] == "Completed", status
    assert _peak(status["output"]) == 2  # six naps scheduled at once, two slots

    started = [host.start("slow_episode")["id"] for _ in range(6)]
    for instance in started:
        assert host.wait(instance, timeout=30)["runtimeStatus"] == "Completed"
    spans = [json.loads(line) for line in episodes.read_text(encoding="utf-8").splitlines()]
    assert len(spans) == 6
    assert 2 <= _peak(spans) <= 3  # episodes of different instances run side by side, three at most


def test_an_app_setting_overrides_host_json_as_on_the_functions_host(make_host, tmp_path):
    app = _app(tmp_path / "app", {"maxConcurrentActivityFunctions": 4})
    host = make_host(app_dir=app, env={
        "AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions": "1"}).launch()
    assert host.info["maxConcurrentActivityFunctions"] == 1
    status = host.wait(host.start("fan_out", 3)["id"], timeout=30)
    assert status["runtimeStatus"] == "Completed", status
    assert _peak(status["output"]) == 1


def test_the_hop_delay_holds_each_queue_hop_and_can_change_while_running(make_host, tmp_path):
    app = _app(tmp_path / "app", {})
    host = make_host(app_dir=app, extra_args=["--hop-delay-ms", "300"]).launch()
    assert host.info["hopDelayMs"] == 300
    status = host.wait(host.start("two_steps")["id"], timeout=30, history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == [1, 2]
    events = status["historyEvents"]
    started = next(e for e in events if e["EventType"] == "ExecutionStarted")
    assert (parse_datetime(started["Timestamp"]) - parse_datetime(status["createdTime"])).total_seconds() >= 0.29
    completed = [e for e in events if e["EventType"] == "TaskCompleted"]
    assert len(completed) == 2
    for event in completed:
        # the work item waits one hop before it runs, its result one more before the orchestration sees it
        hops = (parse_datetime(event["Timestamp"]) - parse_datetime(event["ScheduledTime"])).total_seconds()
        assert hops >= 0.59, event

    changed = host.call("PUT", "/admin/sandbox/durable", key="admin", json={"hopDelayMs": 0})
    assert changed.status_code == 200
    assert changed.json()["hopDelayMs"] == 0
    assert host.call("PUT", "/admin/sandbox/durable", key="admin", json={"hopDelayMs": -1}).status_code == 400
    assert host.call("PUT", "/admin/sandbox/durable", json={"hopDelayMs": 5}).status_code == 401  # admin key only
    assert host.wait(host.start("two_steps")["id"], timeout=30)["output"] == [1, 2]
