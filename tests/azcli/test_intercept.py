"""The intercepting proxy the Azure CLI test runs through (sandbox/intercept.py); runs in every `make test`."""

from __future__ import annotations

import socket

import pytest
import requests

from .conftest import VAULT_NAME


def _through(proxy) -> dict:
    return {"https": proxy.url, "http": proxy.url}


def test_mapped_host_is_answered_by_the_simulator(simulator, intercept_proxy):
    """graph.microsoft.com through the proxy: TLS for that name signed by the sandbox CA, the simulator's answer."""
    response = requests.get("https://graph.microsoft.com/v1.0/organization", proxies=_through(intercept_proxy),
                            verify=simulator.info["caBundle"], timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert intercept_proxy.log[-1].target == "graph.microsoft.com:443"
    assert intercept_proxy.log[-1].action == "intercepted"


def test_discovery_on_the_real_authority(simulator, intercept_proxy):
    """login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration comes from the simulator."""
    tenant = simulator.home["tenantId"]
    response = requests.get(f"https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration",
                            proxies=_through(intercept_proxy), verify=simulator.info["caBundle"], timeout=30)
    assert response.status_code == 200
    assert tenant in response.json()["token_endpoint"]


def test_vault_name_is_mapped_and_others_are_not(simulator, intercept_proxy):
    """<vault>.vault.azure.net reaches the vault (its 401 challenge); another vault's name is refused."""
    response = requests.get(f"https://{VAULT_NAME}.vault.azure.net/certificates?api-version=7.5",
                            proxies=_through(intercept_proxy), verify=simulator.info["caBundle"], timeout=30)
    assert response.status_code == 401
    assert 'resource="https://vault.azure.net"' in response.headers["WWW-Authenticate"]
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get("https://other.vault.azure.net/certificates?api-version=7.5", proxies=_through(intercept_proxy),
                     verify=simulator.info["caBundle"], timeout=30)


@pytest.mark.parametrize("target", ["management.azure.com:443", "example.com:443", "graph.microsoft.com:80",
                                    "127.0.0.1:22"])
def test_other_hosts_are_refused(intercept_proxy, target):
    """CONNECT to anything the sandbox does not serve: 403, and nothing is dialled."""
    with socket.create_connection(("127.0.0.1", intercept_proxy.port), timeout=10) as client:
        client.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        status = client.recv(4096).split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 403 Forbidden"
    assert intercept_proxy.log[-1].target == target
    assert intercept_proxy.log[-1].action == "refused"


def test_plain_http_proxying_is_refused(intercept_proxy):
    """A forward-proxy GET (no CONNECT) is refused too."""
    response = requests.get("http://example.com/", proxies=_through(intercept_proxy), timeout=10)
    assert response.status_code == 403


def test_simulator_origin_is_tunnelled(simulator, intercept_proxy):
    """The simulator's own loopback origins (named in its discovery documents) pass through unchanged."""
    response = requests.get(f"{simulator.info['loginUrl']}/_sandbox/clock", proxies=_through(intercept_proxy),
                            verify=simulator.info["caBundle"], timeout=30)
    assert response.status_code == 200
    assert intercept_proxy.log[-1].action == "tunnelled"
