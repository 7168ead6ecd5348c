"""Resumption: the host is killed (kill -9) once in each step of an onboarding and started again. Every run ends
completed, with exactly one of each object.

The kill point is exact, not timed: a hold rule parks the first call that a step makes of its own (below), the test
waits until that call is held — so every step it needs has completed and the orchestration has moved on — checks
that the product reports that step among the steps in progress, kills the host while the call is still parked, lets
the call go, and starts the host again. Steps that run beside it (the orchestration runs independent steps at once)
may be anywhere in their own work: the run must converge all the same. No latency, no sleeping.
"""

from __future__ import annotations

import re

import pytest

from shared.keyvault import certificate_name
from shared.onboarding import STEPS, application_unique_name
from shared.state import AUDIT, onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, objects_of

# The step whose first call is held when the host dies: every step.
KILL_POINTS = STEPS


def first_call_of(step: str, onboarding: str) -> dict:
    """The first request that `step` makes of its own (origin, method, path regex) — token requests aside,
    which a warm token cache may skip. From shared/onboarding.py and the simulator's request log of a
    normal onboarding."""
    unique_name = re.escape(application_unique_name(onboarding))
    name = re.escape(certificate_name(onboarding))
    return {
        # Key Vault: the certificate's latest version, read to decide whether it is reused
        "certificate": {"origin": "vault", "method": "GET", "path": rf"^/certificates/{name}/?(\?|$)"},
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
        # Graph: the app's keyCredentials, read before the certificate is merged into them
        "keyCredential": {"origin": "graph", "method": "GET", "path": r"^/v1\.0/applications/[^/?(]+\?"},
        # Key Vault: the signature of the token proof's client assertion
        "proof": {"origin": "vault", "method": "POST", "path": rf"^/keys/{name}/[^/]+/sign"},
        # Table Storage: the audit entry of the completion, written by the proof's activity once the record says
        # completed (so the host dies between the record's two writes)
        "record": {"origin": "tables", "method": "PUT",
                   "path": rf"/{AUDIT}\(PartitionKey='{re.escape(onboarding)}',RowKey='[^']*-record'\)"},
    }[step]


# The step in progress that the status names while that call is held: the completion is the proof's activity.
REPORTED = {"record": "proof"}


@pytest.mark.parametrize("at", KILL_POINTS)
def test_a_host_killed_in_a_step_resumes_and_creates_each_object_once(
        simulator, product, vault, admin_consent, clean_faults, at):
    tenant = customers(simulator)[4]["tenantId"]
    admin_consent(tenant)
    mailbox = f"crash-at-{at.lower()}@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    call = first_call_of(at, oid)
    simulator.hold("kill-point", **call)

    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert started["id"] == oid
    [held] = simulator.wait_held("kill-point", timeout=60)
    assert (held["origin"], re.search(call["path"], held["path"]) is not None) == (call["origin"], True), held
    seen = product.onboarding(oid)
    assert seen["runtimeStatus"] == "Running", seen
    reported = REPORTED.get(at, at)
    assert reported in seen["steps"], f"killing the host in {at}: expected {reported} in progress, it is at {seen}"
    assert seen["step"] == seen["steps"][0]

    product.kill()
    simulator.release("kill-point")   # the parked call goes on; its answer reaches no one
    product.launch()
    status = product.finish(oid)
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
