"""The automatic onboarding's plan (functions/onboarding.py): which step needs which, the custom status while several
run, and the progress page's reading of the same steps (functions/progress.py)."""

from __future__ import annotations

from functions import progress
from functions.onboarding import onboarding_plan, plan_status
from shared.onboarding import NO_CHANGES, STEPS, merge_changes


def test_every_step_needs_only_steps_listed_before_it_and_the_page_knows_the_same_needs():
    plan = onboarding_plan({})
    names = [step.name for step in plan]
    # The plan's steps are the status's, in its order; the record is the proof's activity's (no step of its own).
    assert names == [name for name in STEPS if name != "record"]
    for index, step in enumerate(plan):
        assert set(step.needs) <= set(names[:index]), step
    assert {step.name: list(step.needs) for step in plan if step.needs} == {
        name: needs for name, needs in progress.AUTOMATIC_NEEDS.items() if name != "record"}
    assert progress.AUTOMATIC_NEEDS["record"] == ["proof"]
    assert [key for key, _ in progress.AUTOMATIC_STEPS] == list(STEPS)
    # Independent of each other: the certificate and the application; consent and the role; the key and the grants.
    needs = {step.name: set(step.needs) for step in plan}
    assert needs["certificate"] == needs["application"] == set()
    assert needs["consent"] == needs["directoryRole"] == {"servicePrincipal"}
    assert needs["keyCredential"] == {"certificate", "application"}
    assert needs["proof"] == {"keyCredential", "consent", "directoryRole"}


def test_the_status_names_every_step_in_progress_and_a_retry_only_when_nothing_else_runs():
    order = list(STEPS)
    created = {"application": {"appId": "a"}}
    running = {"certificate": None, "consent": None}
    states = {"certificate": {"attempt": 2, "retryAt": "2026-12-01T10:00:10Z", "waitingFor": "throttling"},
              "consent": {"attempt": 1}}
    status = plan_status(order, running, states, created)
    assert status == {"step": "certificate", "steps": ["certificate", "consent"], "attempt": 2, "created": created,
                      "retries": {"certificate": states["certificate"]}}
    # Consent waits too: a poller may come back at the earliest retry.
    states["consent"] = {"attempt": 1, "retryAt": "2026-12-01T10:00:05Z", "waitingFor": "replication"}
    status = plan_status(order, running, states, created)
    assert (status["retryAt"], status["waitingFor"]) == ("2026-12-01T10:00:05Z", "replication")
    assert set(status["retries"]) == {"certificate", "consent"}
    assert plan_status(order, {}, {}, created) == {"step": None, "steps": [], "created": created}


def test_one_runs_changes_from_consent_and_the_role_run_side_by_side():
    consent = {**NO_CHANGES, "permissionsAdded": ["User.Read.All"]}
    role = {**NO_CHANGES, "directoryRoleAdded": "Exchange Administrator"}
    assert merge_changes(consent, role) == {"permissionsAdded": ["User.Read.All"], "permissionsRemoved": [],
                                            "directoryRoleAdded": "Exchange Administrator",
                                            "directoryRolesRemoved": []}
    assert merge_changes(None, None) == NO_CHANGES


def test_the_page_shows_steps_that_ran_side_by_side_by_what_they_made():
    body = {"method": "automatic", "status": "running", "step": "certificate", "steps": ["certificate", "consent",
                                                                                         "directoryRole"],
            "created": {"application": {"appId": "a"}, "servicePrincipalId": "s"}}
    states = {key: state for key, _, state in progress.step_states(body)}
    assert states == {"certificate": "running", "application": "done", "servicePrincipal": "done",
                      "consent": "running", "directoryRole": "running", "keyCredential": "pending",
                      "proof": "pending", "record": "pending"}
    # The role finished before consent; the key went onto the app once the certificate was there.
    body.update(steps=["consent"], created={**body["created"], "certificate": {"thumbprint": "T"},
                                            "directoryRole": None, "keyCredential": {"thumbprint": "T"}})
    states = {key: state for key, _, state in progress.step_states(body)}
    assert [key for key, state in states.items() if state != "done"] == ["consent", "proof", "record"]
    # A failure: the failed step, what the others made, nothing after.
    failed = {"method": "automatic", "status": "failed", "steps": [], "error": {"step": "directoryRole"},
              "created": {"application": {}, "servicePrincipalId": "s", "permissions": []}}
    states = {key: state for key, _, state in progress.step_states(failed)}
    assert states == {"certificate": "pending", "application": "done", "servicePrincipal": "done",
                      "consent": "done", "directoryRole": "failed", "keyCredential": "pending",
                      "proof": "pending", "record": "pending"}
