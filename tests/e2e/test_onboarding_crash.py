"""Resumption: the host is killed (kill -9) once after each step of an onboarding and started again.
Every run ends completed, with exactly one of each object.

The kill point is exact, not timed: a hold rule parks the first call that the *next* step makes of its own
(below), the test waits until that call is held — so the step before has completed and the orchestration has
moved on — checks that the product reports that next step, kills the host while the call is still parked,
lets the call go, and starts the host again. No latency, no sleeping.
"""

from __future__ import annotations

import re

import pytest

from shared.keyvault import certificate_name
from shared.onboarding import STEPS, application_unique_name
from shared.state import ONBOARDINGS, onboarding_id, tenant_of
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

# The step after which the host dies.
KILL_POINTS = STEPS[:-1]


def first_call_of(step: str, onboarding: str) -> dict:
    """The first request that `step` makes of its own (origin, method, path regex) — token requests aside,
    which a warm token cache may skip. From shared/onboarding.py and the simulator's request log of a
    normal onboarding."""
    unique_name = re.escape(application_unique_name(onboarding))
    return {
        # Graph: the app registration's upsert by uniqueName
        "application": {"origin": "graph", "method": "PATCH",
                        "path": rf"^/v1\.0/applications\(uniqueName='{unique_name}'\)"},
        # Graph: the service principal's upsert by appId
        "servicePrincipal": {"origin": "graph", "method": "PATCH", "path": r"^/v1\.0/servicePrincipals\(appId="},
        # Graph: the existing app role assignments of our service principal (read before any grant)
        "consent": {"origin": "graph", "method": "GET", "path": r"^/v1\.0/servicePrincipals/[^/?]+/appRoleAssignments"},
        # Graph: the existing directory role assignments (read before the assignment)
        "directoryRole": {"origin": "graph", "method": "GET",
                          "path": r"^/v1\.0/roleManagement/directory/roleAssignments"},
        # Key Vault: the certificate's key, read to sign the client assertion of the token proof
        "proof": {"origin": "vault", "method": "*", "path": rf"^/keys/{re.escape(certificate_name(onboarding))}/"},
        # Table Storage: the onboarding record, read before the ETag-guarded "completed" update (the steps
        # before only merge into it blindly, with PATCH). The POST reads it once first (skip=1).
        "record": {"origin": "tables", "method": "GET", "skip": 1,
                   "path": rf"/{ONBOARDINGS}\(PartitionKey='{re.escape(tenant_of(onboarding))}',"
                           rf"RowKey='{re.escape(onboarding)}'\)"},
    }[step]


@pytest.mark.parametrize("after", KILL_POINTS)
def test_a_host_killed_after_a_step_resumes_and_creates_each_object_once(
        simulator, product, vault, admin_consent, clean_faults, after):
    tenant = customers(simulator)[4]["tenantId"]
    admin_consent(tenant)
    mailbox = f"crash-after-{after.lower()}@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    target = STEPS[STEPS.index(after) + 1]
    call = first_call_of(target, oid)
    simulator.hold("kill-point", **call)

    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert started["id"] == oid
    [held] = simulator.wait_held("kill-point", timeout=60)
    assert (held["origin"], re.search(call["path"], held["path"]) is not None) == (call["origin"], True), held
    seen = product.onboarding(oid)
    assert seen["runtimeStatus"] == "Running", seen
    assert seen["step"] == target, f"killing the host after {after}: expected it at {target}, it is at {seen}"

    product.kill()
    simulator.release("kill-point")   # the parked call goes on; its answer reaches no one
    product.launch()
    status = product.finish(oid)
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
