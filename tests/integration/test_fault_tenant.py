"""Faults scoped to one tenant, and the request log naming the calling app and the tenant (the fleet benchmark's
per-tenant 429s and its concurrency per app and tenant)."""

from __future__ import annotations

import urllib.error

import pytest

from tests.integration.conftest import run


def _organization(graph_kit, tenant):
    async def main():
        credential = graph_kit.secret_credential(tenant)
        async with credential:
            return await graph_kit.client(credential).organization.get()

    return run(main())


def test_a_429_for_one_tenant_reaches_only_that_tenant_and_msgraph_waits_its_retry_after(
        simulator, home, customer, graph_kit, clean_faults):
    simulator.set_faults([{"origin": "graph", "path": "/organization", "tenant": customer["tenantId"],
                           "status": 429, "count": 1, "retryAfter": 1}])
    before = simulator.requests_since(0)["next"]
    assert _organization(graph_kit, home).value[0].id == home["tenantId"]
    assert _organization(graph_kit, customer).value[0].id == customer["tenantId"]
    served = [r for r in simulator.requests_since(before)["requests"]
              if r["origin"] == "graph" and "/organization" in r["path"]]
    by_tenant = {t: [r for r in served if r["tenant_id"] == t] for t in (home["tenantId"], customer["tenantId"])}
    # Graph names no tenant in its path: the log takes it from the bearer token's tid, and the app from its appid/azp
    assert [r["status"] for r in by_tenant[home["tenantId"]]] == [200]
    assert [r["status"] for r in by_tenant[customer["tenantId"]]] == [429, 200]
    assert {r["app_id"] for r in by_tenant[home["tenantId"]]} == {home["provisioner"]["clientId"]}
    assert {r["app_id"] for r in by_tenant[customer["tenantId"]]} == {customer["provisioner"]["clientId"]}
    throttled, retried = by_tenant[customer["tenantId"]]
    assert retried["started"] - throttled["finished"] >= 0.95  # Retry-After: 1 honoured by msgraph's retry handler


def test_token_requests_name_the_app_of_the_form(simulator, customer, graph_kit):
    before = simulator.requests_since(0)["next"]
    _organization(graph_kit, customer)
    tokens = [r for r in simulator.requests_since(before)["requests"]
              if r["origin"] == "login" and r["path"].endswith("/oauth2/v2.0/token")]
    assert tokens
    assert {r["app_id"] for r in tokens} == {customer["provisioner"]["clientId"]}
    assert {r["tenant_id"] for r in tokens} == {customer["tenantId"]}


def test_a_tenant_in_a_fault_rule_must_be_a_tenant_id(simulator, clean_faults):
    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.set_faults([{"origin": "graph", "tenant": "contoso.onmicrosoft.com", "status": 429}])
    assert caught.value.code == 400
    rules = simulator.set_faults([{"origin": "graph", "tenant": "00000000-0000-0000-0000-00000000000a",
                                   "status": 429}])["rules"]
    assert rules[0]["tenant"] == "00000000-0000-0000-0000-00000000000a"
