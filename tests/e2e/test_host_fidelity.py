"""The sandbox host behaves as the Functions host + Durable extension (Azure Storage provider / DTFx) do."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from tests.e2e.conftest import REPO

WEBHOOK = "/runtime/webhooks/durabletask"


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _history_has(host, instance: str, event_type: str) -> bool:
    status = host.status(instance, history=True)
    return bool(status) and any(e["EventType"] == event_type for e in status.get("historyEvents") or [])


def _wait_for_event(host, instance: str, event_type: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not _history_has(host, instance, event_type):
        assert time.monotonic() < deadline, f"{instance} never wrote {event_type}"
        time.sleep(0.02)


# ---- 1. a restart with a pending durable timer ---------------------------------------------------------------

def test_restart_with_a_pending_retry_timer_resumes_and_completes(make_host, tmp_path):
    keys = str(tmp_path / "keys.json")
    first = make_host(keys_file=keys).launch()
    gate = tmp_path / "gate"
    instance = first.start("retry_until_gate", str(gate))["id"]
    _wait_for_event(first, instance, "TimerCreated")          # the host-side retry timer is pending
    first.kill()
    gate.touch()
    second = make_host(keys_file=keys, task_hub=first.task_hub).launch()
    second.advance(6)
    status = second.wait(instance, advance=6, timeout=30)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "gate open"
    assert second.stop() == 0


def test_restart_with_a_pending_orchestrator_timer_resumes_and_completes(make_host, tmp_path):
    keys = str(tmp_path / "keys.json")
    first = make_host(keys_file=keys).launch()
    instance = first.start("timer_orchestrator", 1)["id"]
    _wait_for_event(first, instance, "TimerCreated")
    first.kill()
    second = make_host(keys_file=keys, task_hub=first.task_hub).launch()
    assert second.status(instance)["runtimeStatus"] == "Running"
    second.advance(3600 + 1)
    status = second.wait(instance, timeout=30)
    assert status["runtimeStatus"] == "Completed", status
    assert set(status["output"]) == {"started", "woke"}
    assert second.stop() == 0


# ---- 2. payloads decoded exactly once ------------------------------------------------------------------------

def test_http_raise_event_body_is_delivered_as_the_json_value_it_is(host):
    instance = host.start("event_echo")["id"]
    host.wait(instance, until=lambda s: s["customStatus"] == "waiting")
    response = host.call("POST", f"{WEBHOOK}/instances/{instance}/raiseEvent/Payload", key="admin",
                         data='"9361"', headers={"Content-Type": "application/json"})
    assert response.status_code == 202
    assert host.wait(instance)["output"] == {"value": "9361", "type": "str"}


def test_client_raise_event_of_a_string_arrives_json_encoded_as_on_azure(host):
    instance = host.start("event_echo")["id"]
    host.wait(instance, until=lambda s: s["customStatus"] == "waiting")
    assert host.call("POST", f"/api/ops/raise/{instance}", data="abc").status_code == 202
    # azure-functions-durable-python issue #295: the orchestrator receives '"abc"'
    assert host.wait(instance)["output"] == {"value": '"abc"', "type": "str"}


@pytest.mark.parametrize(("body", "expected"), [
    ('{"a": 1}', {"value": {"a": 1}, "type": "dict"}),
    ('"9361"', {"value": 9361, "type": "int"}),      # the SDK's get_input() decodes the string once more
    ('"abc"', None),                                   # ... which fails for text that is not JSON
])
def test_http_start_input_is_stored_once_decoded(host, body, expected):
    response = host.call("POST", f"{WEBHOOK}/orchestrators/input_echo", key="admin", data=body)
    assert response.status_code == 202, response.text
    status = host.wait(response.json()["id"])
    assert json.dumps(status["input"]) == json.dumps(json.loads(body))
    if expected is None:
        assert status["runtimeStatus"] == "Failed"
    else:
        assert status["output"] == expected


def test_client_start_new_input_reaches_the_orchestrator_unchanged(host):
    for value in ("abc", 7, {"k": [1, 2]}):
        instance = host.start("input_echo", value)["id"]
        status = host.wait(instance)
        assert status["output"]["value"] == value
        assert status["input"] == json.dumps(value)           # stored as the JSON string the client posted


# ---- 3. refused requests -------------------------------------------------------------------------------------

def test_raise_event_needs_a_json_body(host):
    instance = host.start("wait_forever")["id"]
    host.wait(instance, until=lambda s: s["customStatus"] == "waiting")
    url = f"{WEBHOOK}/instances/{instance}/raiseEvent/never"
    plain = host.call("POST", url, key="admin", data="hello", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 400
    assert plain.json()["Message"] == "Only application/json request content is supported"
    for body in ("", "{not json"):
        bad = host.call("POST", url, key="admin", data=body, headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["Message"] == "Invalid JSON content"
    host.call("POST", f"{WEBHOOK}/instances/{instance}/terminate", key="admin")


def test_purge_by_filter_needs_created_time_from(host):
    response = host.call("DELETE", f"{WEBHOOK}/instances?runtimeStatus=Completed", key="admin")
    assert response.status_code == 400
    assert response.json() == "Please provide value for 'createdTimeFrom' parameter."


# ---- 8. the built-in status endpoint -------------------------------------------------------------------------

def test_status_endpoint_codes_and_headers(host):
    running = host.start("wait_forever")["id"]
    host.wait(running, until=lambda s: s["customStatus"] == "waiting")
    url = f"{WEBHOOK}/instances/{running}?taskHub=x"
    response = host.call("GET", url, key="admin")
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Location"] == host.url(url)
    host.call("POST", f"{WEBHOOK}/instances/{running}/terminate?reason=done", key="admin")
    host.wait(running)
    terminated = host.call("GET", f"{WEBHOOK}/instances/{running}", key="admin")
    assert terminated.status_code == 200
    assert "Location" not in terminated.headers

    failed = host.start("permanent_failure", "rethrow")["id"]
    host.wait(failed, advance=2)
    assert host.call("GET", f"{WEBHOOK}/instances/{failed}", key="admin").status_code == 200
    assert host.call("GET", f"{WEBHOOK}/instances/{failed}?returnInternalServerErrorOnFailure=true",
                     key="admin").status_code == 500
    assert host.call("GET", f"{WEBHOOK}/instances/{_uid('nobody')}", key="admin").status_code == 404


# ---- 9. start-by-id is check-then-insert ---------------------------------------------------------------------

def test_two_concurrent_starts_of_one_id_are_both_accepted_and_one_execution_runs(make_host):
    racy = make_host(env={"SANDBOX_HOST_START_RACE_MS": "400"}).launch()
    instance = _uid("race")
    answers: list[requests.Response] = []

    def start(value: str) -> None:
        answers.append(racy.call("POST", f"{WEBHOOK}/orchestrators/input_echo/{instance}", key="admin",
                                 json={"from": value}))

    threads = [threading.Thread(target=start, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # both are accepted, as with the Azure Storage provider ...
    assert [a.status_code for a in answers] == [202, 202]
    assert {a.json()["id"] for a in answers} == {instance}
    status = racy.wait(instance, history=True)
    # ... and exactly one execution runs, with one of the two inputs
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["value"]["from"] in ("first", "second")
    assert [e["EventType"] for e in status["historyEvents"]].count("ExecutionStarted") == 1
    assert racy.stop() == 0
    assert any("DuplicateMessageDetected" in line for line in racy.stderr_lines)   # the loser was discarded


# ---- 6. app discovery ----------------------------------------------------------------------------------------

def test_the_function_app_is_found_whatever_its_variable_name(make_host, tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "my_functions = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "@my_functions.route(route='ping')\n"
        "def ping(req: func.HttpRequest) -> func.HttpResponse:\n"
        "    return func.HttpResponse('pong')\n")
    checked = subprocess.run([sys.executable, "-m", "sandbox.host", "--check"], cwd=tmp_path, capture_output=True,
                             text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {"functions": ["ping"]}
    served = make_host(app_dir=tmp_path).launch()
    assert served.call("GET", "/api/ping", key=None).text == "pong"
    assert served.stop() == 0


def test_two_function_apps_in_the_script_are_refused(tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\none = func.FunctionApp()\ntwo = func.FunctionApp()\n")
    result = subprocess.run([sys.executable, "-m", "sandbox.host", "--check"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 2
    assert "More than one FunctionApp" in result.stderr


# ---- 7. replay compares what DTFx compares -------------------------------------------------------------------

def test_changed_activity_input_on_replay_is_accepted_by_default(host):
    instance = host.start("non_deterministic")["id"]
    status = host.wait(instance)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"][1] == "Hello again!"


def test_changed_activity_input_on_replay_fails_with_strict_replay(make_host):
    strict = make_host(env={"SANDBOX_HOST_STRICT_REPLAY": "1"}).launch()
    instance = strict.start("non_deterministic")["id"]
    status = strict.wait(instance)
    assert status["runtimeStatus"] == "Failed"
    assert "Non-deterministic workflow detected" in status["output"]
    assert "input differs" in status["output"]
    assert strict.stop() == 0


# ---- 5. listing pages ----------------------------------------------------------------------------------------

def test_list_api_pages_with_top_and_the_continuation_header(host):
    prefix = _uid("page")
    ids = sorted(f"{prefix}-{i}" for i in range(5))
    for instance in ids:
        host.start("hello_sequence", instance_id=instance)
    for instance in ids:
        host.wait(instance)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        response = host.call("GET", f"{WEBHOOK}/instances?instanceIdPrefix={prefix}&top=2", key="admin",
                             headers=headers)
        assert response.status_code == 200
        page = response.json()
        assert len(page) <= 2
        seen += [item["instanceId"] for item in page]
        pages += 1
        token = response.headers.get("x-ms-continuation-token")
        if not token:
            break
    assert seen == ids
    assert pages == 3
    # the Python SDK (1.7) asks without `top`: it gets the first page of the default size (100)
    assert host.call("GET", f"/api/listing?prefix={prefix}").json() == ids


# ---- 4. suspend, resume, restart -----------------------------------------------------------------------------

def test_suspend_queues_messages_until_resume_through_the_sdk(host):
    instance = host.start("event_echo")["id"]
    host.wait(instance, until=lambda s: s["customStatus"] == "waiting")
    assert host.call("POST", f"/api/ops/suspend/{instance}").json() == {"result": None}
    host.wait(instance, until=lambda s: s["runtimeStatus"] == "Suspended")
    status_url = f"{WEBHOOK}/instances/{instance}"
    suspended = host.call("GET", status_url, key="admin")
    assert suspended.status_code == 202
    assert suspended.headers["Retry-After"] == "5"
    event = host.call("POST", f"{status_url}/raiseEvent/Payload", key="admin", json={"n": 1})
    assert event.status_code == 202                       # accepted and queued, not processed
    assert host.call("POST", f"/api/ops/suspend/{instance}").status_code == 409   # not suspendable now
    for _ in range(10):
        assert host.status(instance)["runtimeStatus"] == "Suspended"
    assert host.call("POST", f"/api/ops/resume/{instance}").json() == {"result": None}
    status = host.wait(instance, history=True)
    assert status["output"] == {"value": {"n": 1}, "type": "dict"}
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds.index("ExecutionSuspended") < kinds.index("ExecutionResumed") < kinds.index("EventRaised")


def test_suspend_and_resume_through_the_http_api(host):
    instance = host.start("wait_forever")["id"]
    host.wait(instance, until=lambda s: s["customStatus"] == "waiting")
    urls = host.start("wait_forever")   # management URLs advertise the operations
    assert "/suspend?" in urls["suspendPostUri"]
    assert "/resume?" in urls["resumePostUri"]
    base = f"{WEBHOOK}/instances/{instance}"
    assert host.call("POST", f"{base}/resume?reason=x", key="admin").status_code == 500   # not suspended
    assert host.call("POST", f"{base}/suspend?reason=x", key="admin").status_code == 202
    host.wait(instance, until=lambda s: s["runtimeStatus"] == "Suspended")
    assert host.call("POST", f"{base}/terminate?reason=stop", key="admin").status_code == 202
    assert host.wait(instance)["runtimeStatus"] == "Terminated"         # terminate reaches a suspended instance
    assert host.call("POST", f"{base}/suspend", key="admin").status_code == 410
    assert host.call("POST", f"{WEBHOOK}/instances/{_uid('nobody')}/suspend", key="admin").status_code == 404
    host.call("POST", f"{WEBHOOK}/instances/{urls['id']}/terminate", key="admin")


def test_restart_with_and_without_a_new_instance_id(host):
    instance = _uid("restart")
    host.start("input_echo", {"k": 1}, instance_id=instance)
    first = host.wait(instance)
    # the SDK's restart() returns the extension's 202 body (the new instance's management payload)
    same = host.call("POST", f"/api/ops/restart/{instance}?newId=false").json()["result"]
    assert same["id"] == instance
    again = host.wait(instance, until=lambda s: s["runtimeStatus"] == "Completed"
                      and s["lastUpdatedTime"] >= first["lastUpdatedTime"])
    assert again["output"] == {"value": {"k": 1}, "type": "dict"}
    other = host.call("POST", f"/api/ops/restart/{instance}").json()["result"]
    assert other["id"] != instance
    assert host.wait(other["id"])["output"] == {"value": {"k": 1}, "type": "dict"}
    # through the HTTP API; an unknown id is a 400
    response = host.call("POST", f"{WEBHOOK}/instances/{instance}/restart?restartWithNewInstanceId=true",
                         key="admin")
    assert response.status_code == 202
    assert host.wait(response.json()["id"])["runtimeStatus"] == "Completed"
    missing = host.call("POST", f"{WEBHOOK}/instances/{_uid('nobody')}/restart", key="admin")
    assert missing.status_code == 400
    assert missing.json()["Message"] == "InstanceId does not match a valid orchestration instance."
    # the SDK (1.7) knows 202 / 410 / 404 only: the extension's 400 surfaces as an unexpected status code
    refused = host.call("POST", f"/api/ops/restart/{_uid('nobody')}")
    assert refused.status_code == 409
    assert "unexpected status code 400" in refused.json()["error"]
