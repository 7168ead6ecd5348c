"""HTTP triggers through the sandbox host: routes, auth levels and keys, request/response fidelity."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.e2e.conftest import REPO


def test_anonymous_route_needs_no_key_and_honours_constraints(host):
    response = host.call("GET", "/api/hello/World", key=None)
    assert response.status_code == 200
    assert response.text == "Hello, World!"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert host.call("GET", "/api/hello/123", key=None).status_code == 404     # {name:alpha}
    assert host.call("POST", "/api/hello/World", key=None).status_code == 404  # GET only
    assert host.call("GET", "/api/files/a/b/c.txt", key=None).json() == {"path": "a/b/c.txt"}


@pytest.mark.parametrize("how", ["header", "query"])
def test_function_level_accepts_function_and_admin_keys(host, how):
    def get(key):
        if how == "header":
            return requests.get(host.url("/api/secure"), headers={"x-functions-key": key}, timeout=10)
        return requests.get(host.url(f"/api/secure?code={key}"), timeout=10)

    assert get(host.function_key).status_code == 200
    assert get(host.admin_key).status_code == 200
    assert get("wrong").status_code == 401
    assert requests.get(host.url("/api/secure"), timeout=10).status_code == 401


def test_admin_level_needs_the_admin_key(host):
    assert host.call("GET", "/api/admin-only").status_code == 401
    assert host.call("GET", "/api/admin-only", key="admin").text == "admin level ok"
    assert host.call("GET", "/admin/host/status").status_code == 401
    assert host.call("GET", "/admin/host/status", key="admin").json()["state"] == "Running"


def test_request_and_response_are_faithful(host):
    response = host.call("PUT", "/api/echo?status=207&x=1", key=None, data=b'{"a": 1}',
                         headers={"X-Test-Header": "hi"})
    assert response.status_code == 207
    assert response.headers["X-Echo"] == "yes"
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    assert document == {"method": "PUT", "url": host.url("/api/echo?status=207&x=1"),
                        "params": {"status": "207", "x": "1"}, "routeParams": {}, "header": "hi",
                        "body": '{"a": 1}', "function": "echo"}


def test_function_exception_is_a_500(host):
    assert host.call("GET", "/api/boom", key=None).status_code == 500
    assert host.call("GET", "/api/nowhere", key=None).status_code == 404


def test_invalid_app_is_refused_with_a_message_naming_the_function(tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.timer_trigger(schedule='every day', arg_name='timer')\n"
        "def nightly_sweep(timer: func.TimerRequest) -> None:\n"
        "    pass\n")
    result = subprocess.run([sys.executable, "-m", "sandbox.host", "--check"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 2
    assert "nightly_sweep" in result.stderr
    assert "NCRONTAB" in result.stderr


def test_timer_trigger_fires_on_its_schedule_on_the_sandbox_clock(make_host):
    host = make_host(extra_args=["--timers"]).launch()
    listed = host.call("GET", "/runtime/webhooks/durabletask/instances?instanceIdPrefix=tick-", key="admin").json()
    assert listed == []
    host.advance(86400 + 60)           # past the next 03:00:00 on the sandbox clock
    for _ in range(500):
        listed = host.call("GET", "/runtime/webhooks/durabletask/instances?instanceIdPrefix=tick-",
                           key="admin").json()
        if listed:
            break
    assert len(listed) == 1, listed     # missed occurrences collapse into one (past-due) run
    assert listed[0]["instanceId"].startswith("tick-late-")
    assert host.stop() == 0
