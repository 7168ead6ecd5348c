"""The long-running-operation contract, driven as Azure's clients and Logic Apps drive it: azure-core's
LROPoller with LROBasePolling (a client nobody here wrote), a poller that follows Location with no header, the
status-code table by lifecycle status, tokens that read one onboarding only, the 409s of "the request is the
desired state", a start that fails, and an unhandled exception in Azure's error shape.

All on customer tenant 0, with mailboxes no other test uses."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest

from shared.onboarding import application_unique_name
from shared.state import ONBOARDINGS, StateStore, onboarding_id, tenant_of
from tests.conftest import customers

TERMINAL = ("completed", "failed", "expired", "retired")


@pytest.fixture(scope="module")
def tenant(simulator, admin_consent) -> str:
    tenant_id = customers(simulator)[0]["tenantId"]
    admin_consent(tenant_id)
    return tenant_id


@pytest.fixture
def without_role_management(simulator, tenant):
    """The onboarding app lacks RoleManagement.ReadWrite.Directory in the tenant: the directory role step fails
    for good (403). Restored afterwards."""
    consent_app = simulator.home["consentApp"]["clientId"]
    roles = simulator.info["defaultProvisionerRoles"]
    simulator.grant(tenant, [r for r in roles if r != "RoleManagement.ReadWrite.Directory"], principal=consent_app)
    # Tokens the product holds keep the roles they were issued with until they expire (as Entra's do): let the
    # hour of their lifetime pass, so the next token is issued without the role.
    simulator.advance_clock(3700)
    yield
    simulator.grant(tenant, roles, principal=consent_app)
    simulator.advance_clock(3700)  # and the tokens without the role expire in turn


def lro_poller(product, body: dict, query: str = "") -> tuple[LROPoller, dict]:
    """Start an onboarding through azure-core's pipeline and hand the 202 to LROPoller + LROBasePolling, as a
    generated Azure SDK client does. The poller gets no credential: it polls Location as it is."""
    client = PipelineClient(base_url=product.base_url)
    request = HttpRequest("POST", f"{product.base_url}/api/onboardings{query}", json=body,
                          headers={"x-functions-key": product.function_key})
    initial = client.send_request(request, _return_pipeline_response=True)
    headers = dict(initial.http_response.headers)
    product.post_answers.append(initial.http_response.text())
    product.responses.append(initial.http_response.text())
    poller = LROPoller(client, initial, lambda response: response.http_response.json(),
                       LROBasePolling(timeout=1))
    return poller, headers


def record_of(product, oid: str) -> dict:
    store = StateStore(product.connection_string)
    try:
        stored = store.get_onboarding(oid)
    finally:
        store.close()
    return stored.entity if stored else {}


def test_azure_core_lro_poller_reaches_the_terminal_body(simulator, product, tenant):
    mailbox = "lro-poller@contoso.com"
    poller, headers = lro_poller(product, {"tenantId": tenant, "serviceMailbox": mailbox})
    lower = {k.lower(): v for k, v in headers.items()}
    assert "location" in lower
    assert "retry-after" in lower
    # Location only: Operation-Location or Azure-AsyncOperation would make azure-core expect a status word.
    assert "operation-location" not in lower
    assert "azure-asyncoperation" not in lower
    assert 2 <= int(lower["retry-after"]) <= 5
    result = poller.result(timeout=120)
    assert poller.status() == "Succeeded"
    assert result["id"] == onboarding_id(tenant, mailbox)
    assert result["status"] == "completed"
    assert result["runtimeStatus"] == "Completed"
    assert result["certificate"]["thumbprint"]
    assert isinstance(result["steps"], list)


def test_azure_core_lro_poller_sees_a_failure_as_an_error_when_asked(simulator, product, tenant,
                                                                   without_role_management):
    mailbox = "lro-failure@contoso.com"
    poller, headers = lro_poller(product, {"tenantId": tenant, "serviceMailbox": mailbox},
                                 query="?returnInternalServerErrorOnFailure=true")
    location = {k.lower(): v for k, v in headers.items()}["location"]
    # The switch rides on the Location, after the token's query string with "&".
    assert re.search(r"\?token=[^&]+&returnInternalServerErrorOnFailure=true$", location), location
    with pytest.raises(HttpResponseError) as raised:
        poller.result(timeout=120)
    assert raised.value.status_code == 500
    assert raised.value.response.headers["x-ms-error-code"] == "OnboardingFailed"
    error = raised.value.response.json()["error"]
    assert error["code"] == "OnboardingFailed"
    assert error["target"] == "directoryRole"
    assert error["innererror"]["onboarding"]["status"] == "failed"

    # Without the switch a failure is a terminal 200 (Durable's default): the body says failed.
    plain = requests.get(location.replace("&returnInternalServerErrorOnFailure=true", ""), timeout=30)
    assert plain.status_code == 200
    assert plain.json()["status"] == "failed"
    assert product.api("GET", f"/onboardings/{onboarding_id(tenant, mailbox)}").status_code == 200
    with_switch = product.api("GET", f"/onboardings/{onboarding_id(tenant, mailbox)}"
                                     "?returnInternalServerErrorOnFailure=true")
    assert with_switch.status_code == 500
    assert with_switch.json()["error"]["code"] == "OnboardingFailed"


def follow(url: str, timeout: float = 120) -> tuple[requests.Response, list[requests.Response]]:
    """A poller that sends nothing but the URL (no header, no key), as Logic Apps does: GET Location until an
    answer that is not 202. Short sleeps between polls (the server's Retry-After is checked, not waited for)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(url, timeout=30)
        if response.status_code != 202:
            return response, seen
        seen.append(response)
        url = response.headers["Location"]
        time.sleep(0.1)
    raise AssertionError(f"still 202 after {timeout} s")


def test_a_poller_without_headers_follows_location_to_200(simulator, product, tenant, clean_faults):
    mailbox = "lro-plain@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    # Keep the run at its application step until the first poll has seen it running.
    simulator.hold("lro-plain", origin="graph", method="PATCH",
                   path=rf"^/v1\.0/applications\(uniqueName='{re.escape(application_unique_name(oid))}'\)")
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    url = started["statusQueryGetUri"]
    assert urlsplit(url).path == f"/api/onboardings/{oid}/status"
    assert "token" in parse_qs(urlsplit(url).query)
    simulator.wait_held("lro-plain", timeout=60)
    running = requests.get(url, timeout=30)
    assert running.status_code == 202, running.text
    assert running.headers["Location"].startswith(f"{product.base_url}/api/onboardings/{oid}/status?token=")
    assert 1 <= int(running.headers["Retry-After"]) <= 60
    assert running.json()["status"] == "running"
    assert running.json()["step"] in running.json()["steps"]
    simulator.release("lro-plain")
    final, polls = follow(url)
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "completed"
    assert all(p.headers.get("Retry-After") and p.headers.get("Location") for p in polls)
    # The same body shape as the operator's route.
    assert set(final.json()) == set(product.onboarding(oid))


def test_a_status_url_reads_its_own_onboarding_only(simulator, product, tenant):
    first = product.onboard({"tenantId": tenant, "serviceMailbox": "lro-mine@contoso.com"})
    second = product.onboard({"tenantId": tenant, "serviceMailbox": "lro-other@contoso.com"})
    product.finish(first["id"])
    product.finish(second["id"])
    token = parse_qs(urlsplit(first["statusQueryGetUri"]).query)["token"][0]
    assert requests.get(first["statusQueryGetUri"], timeout=30).status_code == 200
    stolen = f"{product.base_url}/api/onboardings/{second['id']}/status?token={token}"
    version, payload, mac = token.split(".")
    forged = f"{version}.{payload}.{'A' * len(mac)}"
    for url in (stolen, f"{product.base_url}/api/onboardings/{first['id']}/status?token={forged}",
                f"{product.base_url}/api/onboardings/{first['id']}/status"):
        response = requests.get(url, timeout=30)
        assert response.status_code == 403, (url, response.text)
        assert response.headers["x-ms-error-code"] == "AuthorizationFailed"
        error = response.json()["error"]
        assert error["code"] == "AuthorizationFailed"
        assert second["id"] not in response.text
        assert "lro-other" not in response.text
    # The function key is no substitute for the token on the anonymous route.
    keyed = product.call("GET", f"/api/onboardings/{first['id']}/status")
    assert keyed.status_code == 403


def test_the_status_code_table_for_running_completed_and_failed(simulator, product, tenant, clean_faults):
    mailbox = "lro-table@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    simulator.hold("lro-table", origin="graph", method="PATCH",
                   path=rf"^/v1\.0/applications\(uniqueName='{re.escape(application_unique_name(oid))}'\)")
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    simulator.wait_held("lro-table", timeout=60)
    switch = "returnInternalServerErrorOnFailure=true"
    for url in (started["statusQueryGetUri"], f"{started['statusQueryGetUri']}&{switch}"):
        response = requests.get(url, timeout=30)
        assert (response.status_code, response.json()["status"]) == (202, "running")
        assert "Location" in response.headers
        assert "Retry-After" in response.headers
    keyed = product.api("GET", f"/onboardings/{oid}")
    assert keyed.status_code == 202
    assert keyed.headers["Location"].startswith(f"{product.base_url}/api/onboardings/{oid}/status?token=")
    simulator.release("lro-table")
    product.finish(oid)
    for url in (started["statusQueryGetUri"], f"{started['statusQueryGetUri']}&{switch}"):
        response = requests.get(url, timeout=30)
        assert (response.status_code, response.json()["status"]) == (200, "completed")
        assert "Location" not in response.headers
    # failed: see test_azure_core_lro_poller_sees_a_failure_as_an_error_when_asked (200, or 500 with the switch).


def test_a_post_with_other_options_during_a_run_is_409_and_the_same_options_join(
        simulator, product, tenant, clean_faults):
    mailbox = "lro-conflict@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    body = {"tenantId": tenant, "serviceMailbox": mailbox}
    simulator.hold("lro-conflict", origin="graph", method="PATCH",
                   path=rf"^/v1\.0/applications\(uniqueName='{re.escape(application_unique_name(oid))}'\)")
    started = product.onboard(body)
    simulator.wait_held("lro-conflict", timeout=60)
    try:
        other = product.api("POST", "/onboardings", json={**body, "directoryRole": None})
        assert other.status_code == 409, other.text
        assert other.headers["x-ms-error-code"] == "OnboardingInProgress"
        error = other.json()["error"]
        assert oid in error["message"]
        running = error["innererror"]["runningOnboarding"]
        assert running["id"] == oid
        assert running["options"]["directoryRole"]  # the profile's role, which the second request drops
        assert [d["target"] for d in error["details"]] == ["directoryRole"]
        same = product.api("POST", "/onboardings", json={**body, "serviceMailbox": mailbox.upper()})
        assert same.status_code == 202, same.text
        assert same.json()["id"] == started["id"]
    finally:
        simulator.release("lro-conflict")
    assert product.finish(oid)["status"] == "completed"

    # Completed with a certificate: other certificate options are a rotation's job, not a re-run's.
    rekey = product.api("POST", "/onboardings", json={**body, "certificate": {"keySize": 3072}})
    assert rekey.status_code == 409, rekey.text
    error = rekey.json()["error"]
    assert error["code"] == "CertificateOptionsRequireRotation"
    assert f"/api/onboardings/{oid}/rotate" in error["message"]
    assert [d["target"] for d in error["details"]] == ["certificate.keySize"]
    # The same options, explicit or not, re-run.
    again = product.api("POST", "/onboardings", json={**body, "certificate": {"keySize": 2048}})
    assert again.status_code == 202, again.text
    assert product.finish(oid)["status"] == "completed"
    assert record_of(product, oid)["CertificateOptions"]


def test_an_unhandled_exception_answers_500_in_azures_shape_with_a_correlation_id(
        simulator, product, tenant, clean_faults):
    started = product.onboard({"tenantId": tenant, "serviceMailbox": "lro-broken@contoso.com"})
    oid = started["id"]
    product.finish(oid)
    # Table Storage refuses the record's read (a 403 the SDK does not retry): nothing in the product handles it.
    record = rf"/{ONBOARDINGS}\(PartitionKey='{re.escape(tenant_of(oid))}',RowKey='{re.escape(oid)}'\)"
    simulator.add_faults([{"origin": "tables", "method": "GET", "path": record, "status": 403, "count": 1}])
    response = product.api("GET", f"/onboardings/{oid}")
    assert response.status_code == 500, response.text
    assert response.headers["x-ms-error-code"] == "InternalServerError"
    error = response.json()["error"]
    correlation = error["innererror"]["correlationId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", correlation)
    assert correlation in error["message"]
    assert "Traceback" not in response.text
    assert "azure.core" not in response.text
    deadline = time.monotonic() + 10
    while not any(correlation in line for line in product.stderr_lines) and time.monotonic() < deadline:
        time.sleep(0.05)  # the host's stderr is read by a thread
    assert any(correlation in line for line in product.stderr_lines)


def test_a_start_that_fails_leaves_no_running_record(simulator, product, tenant, clean_faults):
    mailbox = "lro-no-start@contoso.com"
    oid = onboarding_id(tenant, mailbox)
    # The task hub refuses the start's writes (the host's table client tries 4 times on 503).
    simulator.add_faults([{"origin": "taskhub", "method": "POST", "path": r"\$batch", "status": 503, "count": 4}])
    before = simulator.requests_since(0)["next"]
    response = product.api("POST", "/onboardings", json={"tenantId": tenant, "serviceMailbox": mailbox})
    refused = [r for r in simulator.requests_since(before)["requests"] if r["origin"] == "taskhub"
               and r["status"] == 503]
    assert len(refused) == 4, "the start never met the fault"
    assert response.status_code == 500, response.text
    assert response.json()["error"]["innererror"]["correlationId"]
    record = record_of(product, oid)
    assert record["Status"] == "failed", record
    assert product.onboarding(oid)["status"] == "failed"
