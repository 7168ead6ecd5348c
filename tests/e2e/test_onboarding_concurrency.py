"""Two concurrent onboarding requests for one (tenant, mailbox) while the host's start is as racy as Azure
Storage's (check-then-insert): both are accepted and the onboarding converges on one set of objects."""

from __future__ import annotations

import threading

import pytest

from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, Product, objects_of

# the other e2e modules use customer tenants 1-4; this one uses tenant 0 and its own mailbox
TENANT_INDEX = 0
MAILBOX = "concurrent-starts@contoso.com"


@pytest.fixture(scope="module")
def racy_product(simulator, azurite):
    """The product on a host whose start-by-id waits 500 ms between its existence check and its insert."""
    process = Product(simulator, azurite.connection_string)
    process.env["SANDBOX_HOST_START_RACE_MS"] = "500"
    process.launch()
    yield process
    process.stop()


def test_two_concurrent_onboardings_of_one_mailbox_converge_on_one_app(simulator, racy_product, vault,
                                                                       admin_consent):
    tenant = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant)
    body = {"tenantId": tenant, "serviceMailbox": MAILBOX}
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(racy_product.api("POST", "/onboardings", json=body)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    expected = onboarding_id(tenant, MAILBOX)
    assert {a.json()["id"] for a in answers} == {expected}

    status = racy_product.finish(expected)
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, MAILBOX) == ONE_OF_EACH
    history = racy_product.history(expected)
    assert [e["EventType"] for e in history["historyEvents"]].count("ExecutionStarted") == 1
