"""Fault injection seen through the official SDKs: 5xx retried where the SDK retries, surfaced where not."""

from __future__ import annotations

import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from tests.integration.conftest import run


def _organization(graph_kit, home):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            return await graph_kit.client(credential).organization.get()

    return run(main())


def test_503_is_retried_by_msgraph(simulator, home, graph_kit, clean_faults):
    simulator.set_faults([{"origin": "graph", "path": "/organization", "status": 503, "count": 2, "retryAfter": 1}])
    before = simulator.requests_since(0)["next"]
    organization = _organization(graph_kit, home)
    assert organization.value[0].id == home["tenantId"]
    statuses = [r["status"] for r in simulator.requests_since(before)["requests"]
                if r["origin"] == "graph" and "/organization" in r["path"]]
    assert statuses == [503, 503, 200]


def test_500_is_not_retried_and_has_graphs_error_shape(simulator, home, graph_kit, clean_faults):
    simulator.set_faults([{"origin": "graph", "path": "/organization", "status": 500, "count": 1}])
    before = simulator.requests_since(0)["next"]
    with pytest.raises(ODataError) as caught:
        _organization(graph_kit, home)
    assert caught.value.response_status_code == 500
    assert caught.value.error.code == "InternalServerError"
    served = [r for r in simulator.requests_since(before)["requests"] if "/organization" in r["path"]]
    assert [r["status"] for r in served] == [500]


def test_fault_rules_are_validated(simulator):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.set_faults([{"origin": "graph", "status": 200}])
    assert caught.value.code == 400
    with pytest.raises(urllib.error.HTTPError):
        simulator.set_faults([{"origin": "graph", "latency": 5}])
