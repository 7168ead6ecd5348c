"""Runs started the way the Azure portal starts them.

- A timer function runs on demand through the host's admin API (what the portal's Code + Test / Run does for a
  non-HTTP function): POST /admin/functions/{name} with the master key (x-functions-key), Content-Type
  application/json and the body {"input": ""}; the host answers 202 Accepted and runs it in the background
  (learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http).
- An HTTP function's Test / Run sends the request to the function's URL with a function key (the portal's "Get
  function URL" carries it as code=).

Customer tenant 3, a mailbox no other test uses."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import requests

from tests.conftest import customers


def _latest(product) -> dict | None:
    answer = product.api("GET", "/expiry-runs/latest")
    return answer.json() if answer.status_code == 200 else None


def test_expiry_check_runs_through_the_admin_api_with_the_master_key(product, simulator) -> None:
    before = _latest(product)
    clock = datetime.fromisoformat(simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
    answer = product.call("POST", "/admin/functions/expiry_check", key="admin", json={"input": ""})
    assert answer.status_code == 202, answer.text
    assert answer.content == b""
    deadline = time.monotonic() + 60
    run = None
    while time.monotonic() < deadline:
        run = _latest(product)
        if run and run != before and run["status"] != "running":
            break
        time.sleep(0.1)  # polling the run's record; the run goes on in the background
    assert run is not None, "no expiry run was recorded"
    assert run != before, "no new expiry run was recorded"
    assert run["status"] == "completed", run
    assert datetime.fromisoformat(run["startedAt"].replace("Z", "+00:00")) >= clock.replace(microsecond=0)
    assert run["pastDue"] is False


def test_the_admin_api_needs_the_master_key(product) -> None:
    assert product.call("POST", "/admin/functions/expiry_check", key="function", json={"input": ""}).status_code == 401
    assert product.call("POST", "/admin/functions/expiry_check", key=None, json={"input": ""}).status_code == 401
    assert product.call("POST", "/admin/functions/no_such_function", key="admin", json={"input": ""}).status_code == \
        404


def test_an_onboarding_starts_from_the_function_url_with_its_key(product, simulator, admin_consent) -> None:
    tenant = customers(simulator)[3]["tenantId"]
    admin_consent(tenant)
    mailbox = f"portal-run-{uuid.uuid4().hex[:8]}@contoso.com"
    url = f"{product.url('/api/onboardings')}?code={product.function_key}"  # the portal's function URL
    answer = requests.post(url, json={"tenantId": tenant, "serviceMailbox": mailbox}, timeout=30)
    assert answer.status_code == 202, answer.text
    assert product.finish(answer.json()["id"])["status"] == "completed"
