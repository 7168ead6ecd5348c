"""Three of Microsoft's Durable Functions patterns, written the way the official Python samples write them.

* human interaction: ``samples/human_interaction`` (E4_SmsPhoneVerification + SendSMSChallenge) of
  Azure/azure-functions-durable-python, driven as learn.microsoft.com "durable-functions-phone-verification" says;
* monitor: ``samples/monitor`` (E3_Monitor + E3_TooManyOpenIssues + E3_SendAlert);
* eternal orchestration: the "Periodic_Cleanup_Loop" of "durable-functions-eternal-orchestrations".

The SMS and the GitHub API are replaced by things a test can see: the challenge code is the activity's output
(history), the monitored condition is a file the test creates, the alert is an activity output.
"""

import os
import secrets
from datetime import timedelta

import azure.durable_functions as df

bp = df.Blueprint()


# ---- human interaction: SMS phone verification ------------------------------------------------------------

CHALLENGE_SECONDS = 180     # the Python sample's window (the C#/JS article says 90 seconds)
CHALLENGE_ATTEMPTS = 3      # the Python sample's loop (the article's C# version allows four tries)


def _is_phone_number(value) -> bool:
    return isinstance(value, str) and value.startswith("+") and value[1:].isdigit()


@bp.orchestration_trigger(context_name="context")
def sms_phone_verification(context: df.DurableOrchestrationContext):
    phone_number = context.get_input()
    if not _is_phone_number(phone_number):
        raise Exception("Please provide a phone number that starts with + and the country code, e.g. '+1425XXXXXXX'")

    code = yield context.call_activity("send_sms_challenge", phone_number)

    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=CHALLENGE_SECONDS))
    verified = False
    for _ in range(CHALLENGE_ATTEMPTS):
        answer = context.wait_for_external_event("SmsChallengeResponse")
        winner = yield context.task_any([answer, timeout])
        if winner != answer:
            break                       # the window closed
        if answer.result == code:
            verified = True
            break
    if not timeout.is_completed:
        timeout.cancel()                # every pending timer must be completed or cancelled before returning
    return verified


@bp.activity_trigger(input_name="phone_number")
def send_sms_challenge(phone_number: str) -> str:
    """Picks the four-digit code; the sample texts it with the Twilio binding and returns it as a str."""
    return str(1000 + secrets.randbelow(9000))


# ---- monitor ------------------------------------------------------------------------------------------------

MONITOR_EXPIRY_MINUTES = 5
MONITOR_INTERVAL_MINUTES = 1


@bp.orchestration_trigger(context_name="context")
def job_monitor(context: df.DurableOrchestrationContext):
    request = context.get_input()
    expiry = context.current_utc_datetime + timedelta(minutes=MONITOR_EXPIRY_MINUTES)
    while context.current_utc_datetime < expiry:
        done = yield context.call_activity("job_is_done", request["job"])
        if done:
            yield context.call_activity("send_job_alert", request["phone"])
            break
        context.set_custom_status("The job is not done yet, checking again in a minute ...")
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=MONITOR_INTERVAL_MINUTES))
    return "Monitor completed!"


@bp.activity_trigger(input_name="job")
def job_is_done(job: str) -> bool:
    """The polled condition: the job's marker file exists."""
    return os.path.exists(job)


@bp.activity_trigger(input_name="phone")
def send_job_alert(phone: str) -> str:
    return f"alert sent to {phone}"


# ---- eternal orchestration: periodic cleanup with continue-as-new ------------------------------------------

CLEANUP_INTERVAL_HOURS = 1


@bp.orchestration_trigger(context_name="context")
def periodic_cleanup(context: df.DurableOrchestrationContext):
    state = context.get_input() or {"generation": 0, "removed": 0}
    removed = yield context.call_activity("do_cleanup", state["generation"])
    context.set_custom_status({"generation": state["generation"], "removedSoFar": state["removed"] + removed})

    # sleep for one hour between cleanups, then start over with a fresh history and the new state
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=CLEANUP_INTERVAL_HOURS))
    context.continue_as_new({"generation": state["generation"] + 1, "removed": state["removed"] + removed})


@bp.activity_trigger(input_name="generation")
def do_cleanup(generation: int) -> int:
    """Pretends to remove generation + 1 stale items."""
    return generation + 1
