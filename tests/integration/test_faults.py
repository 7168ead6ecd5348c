"""Fault injection seen through the official SDKs: 5xx retried where the SDK retries, surfaced where not."""

from __future__ import annotations

import urllib.error

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


# -- hold points: a request parked until the test lets it go -------------------------------------------------

def _in_thread(call):
    """Run `call` on a thread; returns (thread, box) where box["result"] / box["error"] is set when it ends."""
    import threading

    box: dict = {}

    def run_it():
        try:
            box["result"] = call()
        except Exception as exc:
            box["error"] = exc

    thread = threading.Thread(target=run_it, daemon=True)
    thread.start()
    return thread, box


def _discovery(simulator, tenant_id: str):
    import requests

    return requests.get(f"{simulator.info['loginUrl']}/{tenant_id}/v2.0/.well-known/openid-configuration",
                        verify=simulator.info["caBundle"], timeout=60)


def test_a_held_request_waits_until_released_and_others_are_served_meanwhile(simulator, home, customer,
                                                                             clean_faults):
    simulator.hold("discovery", origin="login", method="GET", path=rf"^/{home['tenantId']}/v2\.0/\.well-known")
    before = simulator.requests_since(0)["next"]
    thread, box = _in_thread(lambda: _discovery(simulator, home["tenantId"]))
    [held] = simulator.wait_held("discovery", timeout=30)
    assert held["origin"] == "login"
    assert held["method"] == "GET"
    assert held["path"] == f"/{home['tenantId']}/v2.0/.well-known/openid-configuration"
    assert thread.is_alive(), "the held request was answered before its release"
    assert not box
    # The simulator keeps serving: the same route for another tenant, and the admin API.
    assert _discovery(simulator, customer["tenantId"]).status_code == 200
    assert simulator.admin("GET", "/holds")["discovery"]["held"][0]["path"] == held["path"]
    assert thread.is_alive()
    assert not box
    assert simulator.release("discovery") == 1
    thread.join(timeout=60)
    assert box["result"].status_code == 200
    assert box["result"].json()["issuer"].endswith(f"/{home['tenantId']}/v2.0")
    served = [r for r in simulator.requests_since(before)["requests"] if r["path"] == held["path"]]
    assert [r["status"] for r in served] == [200]
    # count 1: the next matching request is not held.
    assert _discovery(simulator, home["tenantId"]).status_code == 200


def test_a_hold_released_with_a_status_fails_in_the_services_shape(simulator, clean_faults):
    import requests

    simulator.hold("org", origin="graph", path=r"^/v1\.0/organization")
    thread, box = _in_thread(lambda: requests.get(f"{simulator.info['graphUrl']}/organization",
                                                  verify=simulator.info["caBundle"], timeout=60))
    simulator.wait_held("org")
    assert simulator.release("org", status=503) == 1
    thread.join(timeout=60)
    answer = box["result"]
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "ServiceUnavailable"
    assert "request-id" in answer.headers


def test_several_requests_are_held_and_removing_the_rule_releases_them(simulator, home, clean_faults):
    simulator.hold("two", origin="login", path=r"/\.well-known/openid-configuration", count=2)
    first, box1 = _in_thread(lambda: _discovery(simulator, home["tenantId"]))
    second, box2 = _in_thread(lambda: _discovery(simulator, home["tenantId"]))
    held = simulator.wait_held("two", count=2)
    assert len(held) == 2
    simulator.set_faults([])   # no rule names the hold point any more: what it held goes on
    first.join(timeout=60)
    second.join(timeout=60)
    assert box1["result"].status_code == box2["result"].status_code == 200


def test_a_star_rule_holds_cloud_origins_and_wait_held_times_out_when_nothing_comes(simulator, clean_faults):
    import urllib.error

    simulator.hold("never", origin="*", path=r"^/nothing-goes-here$")
    with pytest.raises(TimeoutError):
        simulator.wait_held("never", timeout=0.2)
    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.wait_held("unknown-hold", timeout=0.2)
    assert caught.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.hold("never", origin="graph")
    assert caught.value.code == 409   # hold names are unique


def test_hold_rules_are_validated(simulator, clean_faults):
    import urllib.error

    for rule in ({"hold": "x", "status": 503}, {"hold": "x", "ratePerSecond": 2}, {"hold": ""},
                 {"hold": "a b"}, {"hold": "x", "count": 0}, {"origin": "nowhere", "latencyMs": 1},
                 {"origin": "graph", "path": "("}):
        with pytest.raises(urllib.error.HTTPError) as caught:
            simulator.set_faults([rule])
        assert caught.value.code == 400, rule


def test_a_hold_with_skip_lets_that_many_matching_requests_through_first(simulator, home, clean_faults):
    simulator.hold("second", origin="login", method="GET", path=rf"^/{home['tenantId']}/v2\.0/\.well-known",
                   skip=1)
    assert _discovery(simulator, home["tenantId"]).status_code == 200   # the first one passes
    thread, box = _in_thread(lambda: _discovery(simulator, home["tenantId"]))
    [held] = simulator.wait_held("second", timeout=30)
    assert held["path"] == f"/{home['tenantId']}/v2.0/.well-known/openid-configuration"
    assert thread.is_alive()
    assert not box
    assert simulator.release("second") == 1
    thread.join(timeout=60)
    assert box["result"].status_code == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        simulator.add_faults([{"origin": "graph", "status": 503, "skip": 1}])
    assert refused.value.code == 400
