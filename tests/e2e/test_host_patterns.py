"""Microsoft's Durable Functions patterns on the sandbox host, driven the way Microsoft's docs drive them.

Human interaction (phone verification), monitor and eternal orchestration (tests/host_app/blueprints/patterns.py).
Durable timers fire only because a test moves the host's sandbox clock, and only by as much as the pending
timer needs; nothing sleeps to let time pass.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import requests

PHONE = "+1425555010"


# ---- driving through the management URLs of the 202 answer -------------------------------------------------

def _status(urls: dict) -> dict:
    """GET statusQueryGetUri with the history and its inputs/outputs (what a person looks at)."""
    response = requests.get(urls["statusQueryGetUri"], params={"showHistory": "true", "showHistoryOutput": "true"},
                            timeout=30)
    assert response.status_code in (200, 202), response.text
    return response.json()


def _follow(urls: dict, until, timeout: float = 20) -> dict:
    """Poll the status until `until(status)` holds (polling, not waiting for time to pass)."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = _status(urls)
        if until(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"{urls['id']} did not reach the expected state; last status: {status}")


def _finished(status: dict) -> bool:
    return status["runtimeStatus"] in ("Completed", "Failed", "Terminated")


def _events(status: dict, kind: str) -> list[dict]:
    return [e for e in status.get("historyEvents") or [] if e["EventType"] == kind]


def _results(status: dict, function: str) -> list:
    return [e["Result"] for e in _events(status, "TaskCompleted") if e["FunctionName"] == function]


def _pending_timer(status: dict) -> dict | None:
    fired = {e["TimerId"] for e in _events(status, "TimerFired")}
    pending = [e for e in _events(status, "TimerCreated") if e["EventId"] not in fired]
    assert len(pending) <= 1, pending
    return pending[0] if pending else None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _advance_to(host, timer: dict) -> None:
    """Move the sandbox clock just past the pending timer's due time (never further: no poll is skipped)."""
    now = _moment(host.now()["now"])
    host.advance(max((_moment(timer["FireAt"]) - now).total_seconds(), 0) + 0.5)


def _raise_event(urls: dict, name: str, body: str) -> requests.Response:
    """POST sendEventPostUri with {eventName} replaced, the body sent as given (application/json)."""
    return requests.post(urls["sendEventPostUri"].replace("{eventName}", name), data=body,
                         headers={"Content-Type": "application/json"}, timeout=30)


# ---- 1. human interaction: SMS phone verification ----------------------------------------------------------

def _start_verification(host) -> tuple[dict, str]:
    """POST /api/orchestrators/sms_phone_verification with "+1425..." and read the code the SMS would carry."""
    urls = host.start("sms_phone_verification", PHONE)
    status = _follow(urls, lambda s: _results(s, "send_sms_challenge"))
    [code] = _results(status, "send_sms_challenge")
    assert isinstance(code, str), code                       # the Python sample's activity returns str(code)
    assert len(code) == 4, code
    assert code.isdigit(), code
    assert status["runtimeStatus"] == "Running"
    assert _pending_timer(status) is not None                 # the challenge window is open
    return urls, code


def test_phone_verification_with_the_right_code_completes_true(host):
    urls, code = _start_verification(host)
    response = _raise_event(urls, "SmsChallengeResponse", json.dumps(code))    # e.g. "2168", a JSON string
    assert response.status_code == 202, response.text
    status = _follow(urls, _finished)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] is True
    assert status["input"] == json.dumps(PHONE)
    [raised] = _events(status, "EventRaised")
    assert raised["Name"] == "SmsChallengeResponse"
    assert raised["Input"] == code
    assert _events(status, "TimerFired") == []                 # answered in time: the timer was cancelled


def test_phone_verification_wrong_code_then_timeout_completes_false(host):
    urls, code = _start_verification(host)
    wrong = "0000"
    assert wrong != code
    assert _raise_event(urls, "SmsChallengeResponse", json.dumps(wrong)).status_code == 202
    status = _follow(urls, lambda s: _events(s, "EventRaised"))
    assert status["runtimeStatus"] == "Running"                # a wrong code leaves two more attempts
    timer = _pending_timer(status)
    assert timer is not None
    _advance_to(host, timer)                                   # the 180-second window closes
    status = _follow(urls, _finished)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] is False
    assert [e["Input"] for e in _events(status, "EventRaised")] == [wrong]
    assert [e["TimerId"] for e in _events(status, "TimerFired")] == [timer["EventId"]]


def test_phone_verification_code_posted_as_a_bare_number_never_matches(host):
    """The article's request body is the bare JSON number (`2168`, Content-Length: 4).  The extension parses it
    once, so the Python orchestrator receives the int 2168, while the Python sample's activity returns the
    str "2168": every such answer is a wrong attempt, and after three the verification fails."""
    urls, code = _start_verification(host)
    for attempt in range(1, 4):
        assert _raise_event(urls, "SmsChallengeResponse", code).status_code == 202
        status = _follow(urls, lambda s, n=attempt: len(_events(s, "EventRaised")) == n)
    status = _follow(urls, _finished)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] is False
    assert [e["Input"] for e in _events(status, "EventRaised")] == [int(code)] * 3
    assert _events(status, "TimerFired") == []                 # attempts used up inside the window


# ---- 2. monitor ------------------------------------------------------------------------------------------------

def _polls(status: dict) -> list:
    return _results(status, "job_is_done")


def test_monitor_polls_until_the_condition_holds(host, tmp_path):
    job = tmp_path / "job-done"
    urls = host.start("job_monitor", {"job": str(job), "phone": PHONE})
    for poll in range(1, 4):                                   # three polls find the job still running ...
        status = _follow(urls, lambda s, n=poll: len(_polls(s)) == n and _pending_timer(s) is not None)
        assert status["runtimeStatus"] == "Running"
        assert status["customStatus"] == "The job is not done yet, checking again in a minute ..."
        if poll == 3:
            job.touch()                                        # ... then the job finishes
        _advance_to(host, _pending_timer(status))
    status = _follow(urls, _finished)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "Monitor completed!"
    assert _polls(status) == [False, False, False, True]
    assert _results(status, "send_job_alert") == [f"alert sent to {PHONE}"]
    assert len(_events(status, "TimerFired")) == 3


def test_monitor_gives_up_when_the_expiry_passes(host, tmp_path):
    urls = host.start("job_monitor", {"job": str(tmp_path / "never"), "phone": PHONE})
    timers: list[int] = []

    def next_timer(s: dict) -> bool:
        timer = _pending_timer(s)
        return _finished(s) or (timer is not None and timer["EventId"] not in timers)

    while True:
        status = _follow(urls, next_timer)
        if _finished(status):
            break
        timer = _pending_timer(status)
        timers.append(timer["EventId"])
        assert len(timers) <= 5, status
        _advance_to(host, timer)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "Monitor completed!"
    # one poll a minute for five minutes: at 0, 1, 2, 3 and 4 minutes; the wake-up at 5 minutes ends it
    assert _polls(status) == [False] * 5
    assert len(timers) == 5
    assert [e["TimerId"] for e in _events(status, "TimerFired")] == timers
    assert _results(status, "send_job_alert") == []


# ---- 3. eternal orchestration ----------------------------------------------------------------------------------

def test_eternal_cleanup_continues_as_new_with_its_state_until_terminated(host):
    instance = f"periodic-cleanup-{uuid.uuid4().hex[:8]}"     # one well-known id: a singleton
    urls = host.start("periodic_cleanup", {"generation": 0, "removed": 0}, instance_id=instance)
    assert urls["id"] == instance
    removed = 0
    for generation in range(4):
        status = _follow(urls, lambda s, g=generation: (s["customStatus"] or {}).get("generation") == g
                         and _pending_timer(s) is not None)
        assert status["runtimeStatus"] == "Running"
        assert json.loads(status["input"]) == {"generation": generation, "removed": removed}
        # the history is the current generation's only: one start, one cleanup, one timer
        [started] = _events(status, "ExecutionStarted")
        assert started["FunctionName"] == "periodic_cleanup"
        assert json.loads(started["Input"]) == {"generation": generation, "removed": removed}
        assert _results(status, "do_cleanup") == [generation + 1]
        assert len(_events(status, "TimerCreated")) == 1
        assert _events(status, "TimerFired") == []
        assert _events(status, "ExecutionCompleted") == []
        removed += generation + 1
        assert status["customStatus"] == {"generation": generation, "removedSoFar": removed}
        if generation < 3:
            _advance_to(host, _pending_timer(status))           # one hour later: continue as new
    response = requests.post(urls["terminatePostUri"].replace("{text}", "enough cleaning"), timeout=30)
    assert response.status_code == 202, response.text
    status = _follow(urls, _finished)
    assert status["runtimeStatus"] == "Terminated", status
    assert status["output"] == "enough cleaning"
    assert json.loads(status["input"]) == {"generation": 3, "removed": 1 + 2 + 3}
