"""The product's shared credentials (shared/credentials.py) ask Entra ID once for a token that many callers need at
the same moment: steps running side by side, onboardings of one tenant starting together. Real azure-identity
credentials against the simulator's managed-identity and token endpoints, with latency so that the callers overlap.
"""

from __future__ import annotations

import threading

from shared import reuse
from shared.credentials import SingleFlight, provisioner_credential
from tests.conftest import customers

CALLERS = 6
LATENCY_MS = 300  # long enough for every caller to miss the cache while the first request is out


def _token_requests(simulator, since: int) -> dict[str, int]:
    served = simulator.requests_since(since)["requests"]
    return {"login": len([r for r in served if r["origin"] == "login" and "/oauth2/v2.0/token" in r["path"]]),
            "identity": len([r for r in served if r["origin"] == "identity"])}


def _at_once(credential, scope: str) -> list[str]:
    """`CALLERS` threads asking `credential` for `scope` at the same moment; the tokens they got."""
    start = threading.Barrier(CALLERS)
    tokens: list[str] = []

    def ask() -> None:
        start.wait()
        tokens.append(credential.get_token(scope).token)

    threads = [threading.Thread(target=ask) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return tokens


def test_callers_missing_the_cache_together_make_one_token_request(simulator, product_env, admin_consent,
                                                                   clean_faults):
    tenant = customers(simulator)[2]["tenantId"]
    admin_consent(tenant)
    scope = f"{product_env.graph_resource}/.default"
    simulator.set_faults([{"origin": "login", "latencyMs": LATENCY_MS},
                          {"origin": "identity", "latencyMs": LATENCY_MS}])

    # Without single flight (the same azure-identity credential the product builds, unwrapped): each caller asks.
    reuse.clear()
    bare = provisioner_credential(product_env, tenant)
    assert isinstance(bare, SingleFlight)
    since = simulator.requests_since(0)["next"]
    tokens = _at_once(bare._credential, scope)
    assert len(tokens) == CALLERS
    unwrapped = _token_requests(simulator, since)
    assert unwrapped["login"] > 1, unwrapped

    # The product's shared credential: one token request (and one managed-identity request for its assertion).
    reuse.clear()
    shared = provisioner_credential(product_env, tenant)
    since = simulator.requests_since(0)["next"]
    tokens = _at_once(shared, scope)
    assert len(tokens) == CALLERS
    assert len(set(tokens)) == 1
    assert _token_requests(simulator, since) == {"login": 1, "identity": 1}

    # Cached from then on: no request at all.
    since = simulator.requests_since(0)["next"]
    assert shared.get_token(scope).token == tokens[0]
    assert _token_requests(simulator, since) == {"login": 0, "identity": 0}
    reuse.clear()
