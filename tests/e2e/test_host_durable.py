"""Durable Functions through the sandbox host: replay, retries, timers, events, fan-out, failures."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import requests
from dateutil.parser import parse as parse_datetime


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_microsoft_sample_starter_reaches_completed_through_status_uri(host):
    payload = host.start("hello_sequence")
    # the URLs point at the sandbox host, with the durable extension's system key
    assert payload["statusQueryGetUri"].startswith(host.base_url + "/runtime/webhooks/durabletask/instances/")
    assert "code=" in payload["statusQueryGetUri"]
    status_url = payload["statusQueryGetUri"]
    for _ in range(500):
        response = requests.get(status_url, timeout=10)
        if response.json()["runtimeStatus"] == "Completed":
            break
        assert response.status_code == 202
    assert response.status_code == 200
    assert response.json()["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    # the webhook requires its key
    assert requests.get(status_url.split("?")[0], timeout=10).status_code == 401


def test_history_is_written_like_the_real_host(host):
    instance = host.start("hello_sequence")["id"]
    status = host.wait(instance, history=True)
    events = status["historyEvents"]
    kinds = [event["EventType"] for event in events]
    assert kinds == ["ExecutionStarted", "TaskCompleted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"]
    assert [event["TaskScheduledId"] for event in events[1:4]] == [0, 1, 2]
    assert all(event["Timestamp"].endswith("Z") for event in events)


def test_status_through_the_real_durable_client_rpc(host):
    instance = host.start("echo_input", {"tenant": "contoso", "n": 1})["id"]
    host.wait(instance)
    document = host.call("GET", f"/api/instances/{instance}").json()
    assert document["runtimeStatus"] == "Completed"
    # The Python client posts df_dumps(input) as a JSON string: the extension stores that string and the status
    # shows it as one (DurableClient.ParseToJToken); the orchestrator's get_input() decodes it into the dict.
    assert json.loads(document["input"]) == {"tenant": "contoso", "n": 1}
    assert document["output"]["input"] == {"tenant": "contoso", "n": 1}
    assert next(e["EventType"] for e in document["historyEvents"]) == "ExecutionStarted"


def test_retry_with_backoff_writes_failed_timer_and_rescheduled_tasks(host):
    instance = host.start("retry_orchestrator", {"key": _uid("flaky"), "failTimes": 2})["id"]
    # the retry interval is 5 s of sandbox time: advance the clock instead of sleeping
    status = host.wait(instance, advance=5, history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "succeeded on attempt 3"
    kinds = [(e["EventType"], e.get("TaskScheduledId", e.get("TimerId"))) for e in status["historyEvents"]]
    assert kinds == [("ExecutionStarted", None), ("TaskFailed", 0), ("TimerCreated", None), ("TimerFired", 1),
                     ("TaskFailed", 2), ("TimerCreated", None), ("TimerFired", 3), ("TaskCompleted", 4),
                     ("ExecutionCompleted", None)]
    failed = [e for e in status["historyEvents"] if e["EventType"] == "TaskFailed"]
    assert "transient failure 1" in failed[0]["Reason"]
    timers = [e for e in status["historyEvents"] if e["EventType"] == "TimerCreated"]
    first_fail = parse_datetime(failed[0]["Timestamp"])
    assert parse_datetime(timers[0]["FireAt"]) - first_fail >= timedelta(seconds=4.9)


def test_permanently_failing_activity_reaches_the_orchestrator_as_an_exception(host):
    instance = host.start("permanent_failure")["id"]
    status = host.wait(instance, advance=2, history=True)
    assert status["runtimeStatus"] == "Completed"
    caught = status["output"]["caught"]
    assert "Activity function 'always_fails' failed" in caught
    assert "permanently denied: the vault" in caught
    attempts = [e for e in status["historyEvents"] if e["EventType"] == "TaskFailed"]
    assert len(attempts) == 3          # max_number_of_attempts includes the first call


def test_unhandled_activity_failure_fails_the_orchestration(host):
    instance = host.start("permanent_failure", "rethrow")["id"]
    status = host.wait(instance, advance=2)
    assert status["runtimeStatus"] == "Failed"
    assert "permanently denied: no retry" in status["output"]
    assert "permanent_failure" in status["output"]


def test_durable_timer_follows_the_advanced_clock(host):
    instance = host.start("timer_orchestrator", 6)["id"]
    waiting = host.wait(instance, until=lambda s: s["runtimeStatus"] == "Running")
    assert waiting["output"] is None
    before = host.now()
    host.advance(6 * 3600 + 1)
    status = host.wait(instance)
    assert status["runtimeStatus"] == "Completed"
    started, woke = (parse_datetime(status["output"][k]) for k in ("started", "woke"))
    assert woke - started >= timedelta(hours=6)
    assert woke <= parse_datetime(before["now"]) + timedelta(hours=6, minutes=5)


def test_long_timer_is_split_like_the_storage_backend_and_fires_after_a_jump(host):
    instance = host.start("timer_orchestrator", 24 * 10)["id"]      # 10 days > 6-day maximum short timer
    host.wait(instance, until=lambda s: s["runtimeStatus"] == "Running")
    host.advance(10 * 86400 + 1)
    status = host.wait(instance, history=True)
    assert status["runtimeStatus"] == "Completed"
    timers = [e for e in status["historyEvents"] if e["EventType"] == "TimerCreated"]
    started = parse_datetime(status["output"]["started"])
    assert parse_datetime(timers[0]["FireAt"]) - started == timedelta(days=3)


def test_external_event_wins_over_timeout_and_custom_status(host):
    instance = host.start("approval")["id"]
    waiting = host.wait(instance, until=lambda s: s["customStatus"] == {"stage": "waiting for approval"})
    assert waiting["runtimeStatus"] == "Running"
    response = host.call("POST", f"/api/instances/{instance}/events/Approval", json={"by": "admin@contoso"})
    assert response.status_code == 202
    status = host.wait(instance)
    # client.raise_event posts json.dumps(data) as a JSON string, so the orchestrator receives that JSON text,
    # as on Azure (azure-functions-durable-python issue #295)
    assert status["output"] == {"approved": json.dumps({"by": "admin@contoso"})}
    assert status["customStatus"] == {"stage": "approved"}


def test_event_timeout_fires_on_the_advanced_clock(host):
    instance = host.start("approval")["id"]
    host.wait(instance, until=lambda s: s["runtimeStatus"] == "Running" and s["customStatus"] is not None)
    host.advance(86400 + 1)
    status = host.wait(instance)
    assert status["output"] == {"approved": None, "timedOut": True}
    # events to a finished instance are refused with 410 (client raises)
    gone = host.call("POST", f"/runtime/webhooks/durabletask/instances/{instance}/raiseEvent/Approval",
                     key="admin", json={})
    assert gone.status_code == 410


def test_fan_out_fan_in_with_async_activity(host):
    instance = host.start("fan_out_fan_in", 25)["id"]
    status = host.wait(instance)
    assert status["output"] == {"sum": sum(i * i for i in range(25)), "doubled": 2 * sum(i * i for i in range(25))}


def test_non_determinism_fails_the_instance_with_a_clear_message(host):
    instance = host.start("renamed_activity")["id"]
    status = host.wait(instance)
    assert status["runtimeStatus"] == "Failed"
    assert "Non-deterministic workflow detected" in status["output"]
    assert "say_hello" in status["output"]
    assert "the function name differs" in status["output"]


def test_terminate_through_the_client(host):
    instance = host.start("wait_forever")["id"]
    host.wait(instance, until=lambda s: s["customStatus"] == "waiting")
    assert host.call("POST", f"/api/instances/{instance}/terminate?reason=enough").status_code == 202
    status = host.wait(instance)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "enough"


def test_sub_orchestration_and_continue_as_new(host):
    instance = _uid("parent")
    host.start("parent_orchestrator", instance_id=instance)
    status = host.wait(instance)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"child": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"], "counted": 3}
    child = host.status(f"{instance}-child")
    assert child["runtimeStatus"] == "Completed"


def test_purge_and_start_with_existing_id(host):
    instance = _uid("purge")
    host.start("hello_sequence", instance_id=instance)
    host.wait(instance)
    # a finished instance may be started again with the same id
    host.start("echo_input", 7, instance_id=instance)
    assert host.wait(instance)["output"]["input"] == 7
    assert host.call("DELETE", f"/api/instances/{instance}").json() == {"deleted": 1}
    assert host.status(instance) is None
    assert host.call("DELETE", f"/api/instances/{instance}").json() == {"deleted": 0}


def test_starting_a_running_instance_id_is_refused(host):
    instance = _uid("dup")
    host.start("wait_forever", instance_id=instance)
    again = host.call("POST", f"/api/start/wait_forever/{instance}")
    assert again.status_code == 500          # the client raises; the HTTP function fails
    host.call("POST", f"/api/instances/{instance}/terminate")
    host.wait(instance)


def test_unknown_orchestrator_is_a_client_error(host):
    response = host.call("POST", "/runtime/webhooks/durabletask/orchestrators/does_not_exist", key="admin")
    assert response.status_code == 400
    assert "does_not_exist" in response.json()["ExceptionMessage"]


def test_timer_trigger_runs_on_demand_through_the_admin_route(host):
    assert host.call("POST", "/admin/functions/nightly", json={"input": ""}).status_code == 401
    assert host.call("POST", "/admin/functions/nightly", key="admin", json={"input": ""}).status_code == 202
    deadline_statuses = None
    for _ in range(500):
        listed = host.call("GET", "/runtime/webhooks/durabletask/instances?instanceIdPrefix=tick-ontime",
                           key="admin").json()
        if listed:
            deadline_statuses = listed
            break
    assert deadline_statuses, "the timer function did not start its orchestration"
