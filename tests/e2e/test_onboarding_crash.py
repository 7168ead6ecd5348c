"""Resumption: the host is killed (kill -9) once after each step of an onboarding and started again.
Every run ends completed, with exactly one of each object."""

from __future__ import annotations

import time

import pytest

from shared.onboarding import STEPS
from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

# The step after which the host dies: it dies as soon as the orchestration announces the next step.
KILL_POINTS = STEPS[:-1]


@pytest.mark.parametrize("after", KILL_POINTS)
def test_a_host_killed_after_a_step_resumes_and_creates_each_object_once(
        simulator, product, vault, admin_consent, clean_faults, after):
    tenant = customers(simulator)[4]["tenantId"]
    admin_consent(tenant)
    # Slow every Azure call a little so that each step is long enough to be caught in flight.
    simulator.set_faults([{"origin": "*", "latencyMs": 60}])
    mailbox = f"crash-after-{after.lower()}@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert started["id"] == onboarding_id(tenant, mailbox)
    target = STEPS[STEPS.index(after) + 1]
    deadline = time.monotonic() + 60
    seen = None
    while time.monotonic() < deadline:
        seen = product.onboarding(started["id"])
        if seen["runtimeStatus"] in ("Completed", "Failed") or (
                seen["step"] in STEPS and STEPS.index(seen["step"]) >= STEPS.index(target)):
            break
        time.sleep(0.01)  # polling the status
    assert seen["runtimeStatus"] not in ("Completed", "Failed"), f"finished before the kill point: {seen}"
    product.kill()
    product.launch()
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
