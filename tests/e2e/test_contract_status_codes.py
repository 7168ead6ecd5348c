"""Every status code the descriptions document, reached by an explicit request to the product on the sandbox host,
each answer checked against the served OpenAPI 3.1 description (status, content type, headers, body schema) by
schemathesis' own checks. The last test says which documented (operation, status) pairs no test reached.

Tenant: customer 3, unique mailboxes; a failing onboarding uses a tenant that does not exist. The verifier is
consented in customer 3 (as tests/e2e/test_progress_page.py does). GET /api/expiry-runs/latest answers 404 before
the expiry monitor's first run in this Table Storage: in the suite this module runs before any test that runs it.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import schemathesis
import trustme
from azure.data.tables import TableClient
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared import links
from shared.openapi import OPERATIONS
from shared.signing import SigningKeys, make_token
from shared.state import ONBOARDINGS
from tests.conftest import customers
from tests.customer_pfx import sign_for_csr, utc

CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
TABLE = {op.operation_id: op for op in OPERATIONS}
DOCUMENTED = {(op.operation_id, code) for op in OPERATIONS for code in op.answers}
REACHED: set[tuple[str, int]] = set()
UNKNOWN = "00000000-0000-4000-8000-000000000001.0123456789abcdef0123"


def mailbox(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@contoso.com"


class Api:
    """Calls an operation of the route table and checks the answer against the served description."""

    def __init__(self, product, schema) -> None:
        self.product, self.schema = product, schema
        self.operations = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            self.operations[schema.get_operation_id(operation)] = operation

    def call(self, operation_id: str, expected: int, *, id: str | None = None, query: dict | None = None,
             key: bool = True, **kwargs) -> requests.Response:
        route = TABLE[operation_id].route.replace("{id}", id or UNKNOWN)
        url = self.product.url(f"/api/{route}") + (f"?{urlencode(query)}" if query else "")
        return self.url(operation_id, expected, url, key=key, method=TABLE[operation_id].method, **kwargs)

    def url(self, operation_id: str, expected: int, url: str, *, key: bool = False, method: str = "GET",
            **kwargs) -> requests.Response:
        headers = {**({"x-functions-key": self.product.function_key} if key else {}), **kwargs.pop("headers", {})}
        response = requests.request(method, url, headers=headers, allow_redirects=False, timeout=60, **kwargs)
        assert response.status_code == expected, (operation_id, response.status_code, response.text[:800])
        self.check(operation_id, response)
        return response

    def check(self, operation_id: str, response: requests.Response) -> None:
        operation = self.operations.get(operation_id)
        if operation is not None:  # schemathesis leaves out the route that serves the description it loaded
            operation.Case().validate_response(response, checks=CHECKS)
        REACHED.add((operation_id, response.status_code))


@pytest.fixture(scope="module")
def api(product) -> Api:
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    return Api(product, schemathesis.openapi.from_url(product.url("/api/openapi.json"), config=config))


@pytest.fixture(scope="module")
def tenant(simulator, admin_consent) -> str:
    tenant_id = customers(simulator)[3]["tenantId"]
    admin_consent(tenant_id)
    simulator.consent_verifier(tenant_id)
    return tenant_id


@pytest.fixture(scope="module")
def signing(simulator, product) -> SigningKeys:
    """The product's signing keys, read from the simulator's Key Vault as the home tenant's provisioner (to make
    tokens for routes no answer hands out one for)."""
    home = simulator.home
    credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                        home["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    client = SecretClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False)
    return SigningKeys(client, product.env.get("CERTAUTH_SIGNING_KEY_SECRET", "certauth-signing-key"))


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def forged(url: str) -> str:
    token = token_of(url)
    return url.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))


def wait_status(product, instance: str, wanted: tuple[str, ...], timeout: float = 60) -> dict:
    """Poll (short sleeps; no sandbox time passes) until the lifecycle status is one of `wanted`."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = product.onboarding(instance)
        if status["status"] in wanted:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{instance} never got to {wanted}: {status}")


def follow(product, instance: str, done, timeout: float = 120) -> dict:
    """Poll an instance until done(status document); move the sandbox clock to each pending durable timer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = product.status(instance, history=True) or {}
        if done(document):
            return document
        events = document.get("historyEvents") or []
        fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
        pending = [e for e in events if e["EventType"] == "TimerCreated" and e.get("EventId") not in fired]
        if pending:
            now = datetime.fromisoformat(product.simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
            due = min(datetime.fromisoformat(e["FireAt"].replace("Z", "+00:00")) for e in pending)
            if due > now:
                product.simulator.advance_clock((due - now).total_seconds() + 0.5)
        time.sleep(0.05)  # polling the status, not waiting for time to pass
    raise AssertionError(f"{instance} did not get there\n" + "\n".join(product.stderr_lines[-30:]))


def ended(document: dict) -> bool:
    return document.get("runtimeStatus") in ("Completed", "Failed", "Terminated")


def test_the_check_refuses_an_answer_the_description_does_not_document(api, product) -> None:
    not_found = requests.get(product.url(f"/api/onboardings/{UNKNOWN}"), timeout=30,
                             headers={"x-functions-key": product.function_key})
    assert not_found.status_code == 404
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        api.operations["StartOnboarding"].Case().validate_response(not_found, checks=CHECKS)
    description = requests.get(product.url("/api/openapi.json"), timeout=30)  # a 200 that is no certificates page
    with pytest.raises(FailureGroup, match="Response violates schema"):
        api.operations["ListCertificates"].Case().validate_response(description, checks=CHECKS)


def test_without_the_function_key_every_keyed_route_is_401(api) -> None:
    for operation in OPERATIONS:
        if operation.auth == "function":
            assert 401 in operation.answers, operation.operation_id
            api.call(operation.operation_id, 401, key=False)


def test_bad_input_is_400_in_azures_shape(api) -> None:
    for operation in OPERATIONS:
        if operation.auth == "function" and 400 in operation.answers and "{id}" in operation.route:
            answer = api.call(operation.operation_id, 400, id="not-an-onboarding-id")
            assert answer.json()["error"]["details"][0]["target"] == "id"
    api.call("StartOnboarding", 400, json={"tenantId": "nope", "serviceMailbox": "a@contoso.com"})
    api.call("ListOnboardings", 400, query={"top": "0"})
    api.call("ListCertificates", 400, query={"expiringWithinDays": "soon"})
    api.call("CreateOnboardingLink", 400, json={"serviceMailbox": "a@contoso.com"})  # no expiresInHours


def test_unknown_onboardings_are_404(api) -> None:
    for operation_id in ("GetOnboarding", "GetOnboardingAudit", "GetOnboardingScript", "VerifyOnboarding",
                         "RotateOnboardingCertificate", "OffboardOnboarding", "GetRemovalScript", "VerifyRemoval"):
        api.call(operation_id, 404)


def test_the_expiry_monitor_before_and_after_its_first_run(api, product) -> None:
    api.call("GetLatestExpiryRun", 404)
    assert product.call("POST", "/admin/functions/expiry_check", key="admin", json={"input": ""}).status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        latest = product.api("GET", "/expiry-runs/latest")
        if latest.status_code == 200 and latest.json()["status"] != "running":
            break
        time.sleep(0.1)
    run = api.call("GetLatestExpiryRun", 200).json()
    assert run["status"] == "completed", run
    page = api.call("ListCertificates", 200, query={"top": "1"}).json()
    assert len(page["value"]) <= 1


def test_the_descriptions_are_served_without_a_key(api) -> None:
    assert api.call("GetOpenApiDescription", 200, key=False).json()["openapi"] == "3.1.0"
    assert api.call("GetSwaggerDescription", 200, key=False).json()["swagger"] == "2.0"


def test_the_verifiers_consent_landing_with_nothing_waiting(api, product, tenant, signing) -> None:
    state = links.verifier_state(signing.current(), tenant, 1)
    landing = product.url("/api/onboard/callback?" + urlencode({"admin_consent": "True", "tenant": tenant,
                                                                "state": state}))
    assert "No onboarding of this tenant is waiting" in api.url("CompleteOnboardingConsent", 200, landing).text


def test_an_automatic_onboarding_from_start_to_offboarding(api, product, simulator, tenant, clean_faults) -> None:
    address = mailbox("contract-auto")
    # Hold its application upsert: the status answers 202 while it runs, whatever the machine's speed.
    started_mark = uuid.uuid4().hex[:8]
    simulator.hold(f"app-{started_mark}", origin="graph", path=r"applications")
    accepted = api.call("StartOnboarding", 202, json={"tenantId": tenant, "serviceMailbox": address}).json()
    instance, status_url = accepted["id"], accepted["statusQueryGetUri"]
    simulator.wait_held(f"app-{started_mark}")
    running = api.url("GetOnboardingStatusByToken", 202, status_url)
    assert running.headers["Location"] == status_url
    api.call("GetOnboarding", 202, id=instance)
    simulator.release(f"app-{started_mark}")
    assert product.finish(instance)["status"] == "completed"

    assert api.call("GetOnboarding", 200, id=instance).json()["status"] == "completed"
    assert api.url("GetOnboardingStatusByToken", 200, status_url).json()["id"] == instance
    assert api.url("GetOnboardingStatusByToken", 403, forged(status_url)).json()["error"]["code"] == \
        "AuthorizationFailed"
    events = [entry["event"] for entry in api.call("GetOnboardingAudit", 200, id=instance).json()["value"]]
    assert events[-1] == "onboarding.completed"
    listed = api.call("ListOnboardings", 200, query={"tenantId": tenant, "status": "completed"}).json()
    assert instance in {item["id"] for item in listed["value"]}
    rerun = api.call("StartOnboarding", 409, json={"tenantId": tenant, "serviceMailbox": address,
                                                   "certificate": {"keySize": 4096}})
    assert rerun.json()["error"]["code"] == "CertificateOptionsRequireRotation"
    token = token_of(status_url)
    view = {"token": token}
    assert "text/html" in api.call("ViewOnboarding", 200, id=instance, query=view, key=False).headers["Content-Type"]
    api.call("ViewOnboarding", 403, id=instance, query={"token": "x"}, key=False)
    for operation_id in ("GetOnboardingScript", "VerifyOnboarding", "GetOnboardingCsr", "GetRemovalScript",
                         "VerifyRemoval"):
        api.call(operation_id, 409, id=instance)
    api.call("UploadOnboardingCertificate", 409, id=instance, data=b"not yet")
    api.call("ViewOnboardingScript", 409, id=instance, query=view, key=False)
    api.call("ViewOnboardingVerify", 409, id=instance, query=view, key=False)
    api.call("ViewOnboardingScript", 403, id=instance, query={"token": "x"}, key=False)
    api.call("ViewOnboardingVerify", 403, id=instance, query={"token": "x"}, key=False)

    # Rotation: a bad option, then the rotation (its grace timer keeps it running: 202, and an offboarding must
    # wait), then to its end.
    api.call("RotateOnboardingCertificate", 400, id=instance, json={"keySize": 1000})
    rotation = api.call("RotateOnboardingCertificate", 202, id=instance).json()
    rotation_url = rotation["statusQueryGetUri"]
    api.url("GetRotationStatus", 202, rotation_url)
    api.url("GetRotationStatus", 403, forged(rotation_url))
    assert api.call("OffboardOnboarding", 409, id=instance).json()["error"]["code"] == "RotationInProgress"
    follow(product, rotation["id"], ended, timeout=180)
    assert api.url("GetRotationStatus", 200, rotation_url).json()["status"] == "completed"

    # Offboarding: held at its first Graph DELETE (202), then to its end (200), then a second DELETE (200).
    simulator.hold(f"off-{started_mark}", origin="graph", method="DELETE")
    offboarding = api.call("OffboardOnboarding", 202, id=instance).json()
    offboarding_url = offboarding["statusQueryGetUri"]
    simulator.wait_held(f"off-{started_mark}")
    api.url("GetOffboardingStatus", 202, offboarding_url)
    api.url("GetOffboardingStatus", 403, forged(offboarding_url))
    simulator.release(f"off-{started_mark}")
    follow(product, offboarding["id"], ended, timeout=180)
    assert api.url("GetOffboardingStatus", 200, offboarding_url).json()["status"] == "retired"
    assert api.call("OffboardOnboarding", 200, id=instance).json()["status"] == "retired"


def test_a_manual_onboarding_waiting_for_the_admin(api, product, tenant, signing) -> None:
    accepted = api.call("StartOnboarding", 202, json={"tenantId": tenant, "serviceMailbox": mailbox("contract-man"),
                                                      "method": "manual"}).json()
    instance = accepted["id"]
    wait_status(product, instance, ("waitingForAdmin", "needsAttention"))
    api.call("GetOnboarding", 202, id=instance)
    view = {"token": token_of(accepted["statusQueryGetUri"])}
    assert api.call("GetOnboardingScript", 200, id=instance).content.startswith(b"\xef\xbb\xbf")
    api.call("ViewOnboarding", 200, id=instance, query=view, key=False)
    api.call("ViewOnboardingScript", 200, id=instance, query=view, key=False)
    assert api.call("VerifyOnboarding", 202, id=instance).headers["Location"]
    wait_status(product, instance, ("waitingForAdmin", "needsAttention"))
    assert "/view?token=" in api.call("ViewOnboardingVerify", 303, id=instance, query=view,
                                      key=False).headers["Location"]
    assert api.call("RotateOnboardingCertificate", 409, id=instance).json()["error"]["code"] == "OnboardingInProgress"
    assert api.call("OffboardOnboarding", 409, id=instance).json()["error"]["code"] == "OnboardingInProgress"
    assert api.call("GetRemovalScript", 200, id=instance).content.startswith(b"\xef\xbb\xbf")
    # Tokens for statuses that do not exist (yet): no rotation, no offboarding of this onboarding.
    later = int(time.time()) + 600
    rotation = make_token(signing.current(), "rotationStatus", instance, later)
    api.call("GetRotationStatus", 404, id=instance, query={"token": rotation}, key=False)
    offboarding = make_token(signing.current(), "offboardingStatus", instance, later)
    api.call("GetOffboardingStatus", 404, id=instance, query={"token": offboarding}, key=False)

    # The operator gives up on it (Durable's terminate); its offboarding then waits for the removal script.
    stopped = product.call("POST", f"/runtime/webhooks/durabletask/instances/{instance}/terminate?reason=contract",
                           key="admin")
    assert stopped.status_code == 202, stopped.text
    follow(product, instance, ended)
    removal = api.call("OffboardOnboarding", 202, id=instance).json()
    follow(product, removal["id"], lambda d: (d.get("customStatus") or {}).get("step") == "waitingForAdmin")
    assert api.call("VerifyRemoval", 202, id=instance).json()["id"] == removal["id"]


def test_a_csr_for_the_customers_ca_then_its_certificate(api, product, simulator, tenant) -> None:
    accepted = api.call("StartOnboarding", 202, json={"tenantId": tenant, "serviceMailbox": mailbox("contract-csr"),
                                                      "certificate": {"issuer": "customer"}}).json()
    instance = accepted["id"]
    wait_status(product, instance, ("waitingForCertificate",))
    csr = x509.load_pem_x509_csr(api.call("GetOnboardingCsr", 200, id=instance).content)
    api.call("UploadOnboardingCertificate", 400, id=instance, data=b"")
    now = utc(float(simulator.admin("GET", "/clock")["epochSeconds"]))
    signed = sign_for_csr(trustme.CA(), csr.public_bytes(serialization.Encoding.DER), now)
    merged = api.call("UploadOnboardingCertificate", 202, id=instance, data=signed,
                      headers={"Content-Type": "application/x-pem-file"}).json()
    assert merged["certificate"]["thumbprint"]
    assert product.finish(instance)["status"] == "completed"


def test_a_failed_onboarding_then_gone(api, product, azurite) -> None:
    nowhere = str(uuid.uuid4())  # a tenant that does not exist: the first Graph step fails for good
    accepted = api.call("StartOnboarding", 202, query={"returnInternalServerErrorOnFailure": "true"},
                        json={"tenantId": nowhere, "serviceMailbox": mailbox("contract-fail")}).json()
    instance, failing_url = accepted["id"], accepted["statusQueryGetUri"]
    assert product.finish(instance)["status"] == "failed"
    api.call("GetOnboarding", 200, id=instance)
    failure = api.call("GetOnboarding", 500, id=instance, query={"returnInternalServerErrorOnFailure": "true"})
    assert failure.json()["error"]["code"] == "OnboardingFailed"
    api.url("GetOnboardingStatusByToken", 500, failing_url)
    # Its offboarding fails too (nothing can be read in a tenant that does not exist).
    offboarding = api.call("OffboardOnboarding", 202, id=instance,
                           query={"returnInternalServerErrorOnFailure": "true"}).json()
    follow(product, offboarding["id"], ended, timeout=180)
    gone = api.url("GetOffboardingStatus", 500, offboarding["statusQueryGetUri"])
    assert gone.json()["error"]["code"] == "OffboardingFailed"

    # Gone: no record, no instance. Its tokens still verify, and find nothing.
    TableClient.from_connection_string(azurite.connection_string, ONBOARDINGS).delete_entity(nowhere, instance)
    for purged in (instance, offboarding["id"]):
        product.call("DELETE", f"/runtime/webhooks/durabletask/instances/{purged}", key="admin")
    api.url("GetOnboardingStatusByToken", 404, failing_url.split("&returnInternalServerErrorOnFailure")[0])
    view = {"token": token_of(failing_url)}
    api.call("ViewOnboarding", 404, id=instance, query=view, key=False)
    api.call("ViewOnboardingScript", 404, id=instance, query=view, key=False)
    api.call("ViewOnboardingVerify", 404, id=instance, query=view, key=False)


def test_an_onboarding_link_and_its_consent(api, product, simulator, tenant, signing) -> None:
    link = api.call("CreateOnboardingLink", 201, json={"tenantId": tenant, "serviceMailbox": mailbox("contract-link"),
                                                       "expiresInHours": 1}).json()["url"]
    path = link.split(product.base_url, 1)[1] if link.startswith(product.base_url) else urlsplit(link).path + "?" + \
        urlsplit(link).query
    opened = api.url("OpenOnboardingLink", 302, product.url(path))
    api.url("OpenOnboardingLink", 403, product.url(re.sub(r"sig=[^&]+", "sig=forged", path)))
    # A link this service signed whose request it no longer accepts (an unknown permission profile).
    params = {"tenantId": tenant, "serviceMailbox": "x@contoso.com", "method": "automatic",
              "permissionProfile": "everything"}
    stale = links.link_url(product.base_url, params, links.sign_link(signing.current(), params,
                                                                     int(time.time()) + 600))
    api.url("OpenOnboardingLink", 400, stale)
    # Entra's admin-consent page (the simulator) consents and redirects back to the callback.
    granted = requests.get(opened.headers["Location"], allow_redirects=False, timeout=30)
    assert granted.status_code == 302, granted.text[:300]
    callback = granted.headers["Location"]
    started = api.url("CompleteOnboardingConsent", 303, callback)
    assert "/view?token=" in started.headers["Location"]
    api.url("CompleteOnboardingConsent", 409, callback)
    api.url("CompleteOnboardingConsent", 400, product.url("/api/onboard/callback"))
    api.url("CompleteOnboardingConsent", 403, re.sub(r"state=[^&]+", "state=forged", callback))


def test_the_list_of_onboardings_pages_with_absolute_next_links(api, product, tenant) -> None:
    first = api.call("ListOnboardings", 200, query={"tenantId": tenant, "top": "1"}).json()
    assert len(first["value"]) == 1
    assert first["value"][0]["tenantId"] == tenant
    assert first["nextLink"].startswith(f"{product.env['CERTAUTH_PUBLIC_BASE_URL']}/api/onboardings?")
    assert "code=" not in first["nextLink"]  # no key in a link: it goes as a header
    second = api.url("ListOnboardings", 200, first["nextLink"], key=True).json()
    assert second["value"][0]["id"] != first["value"][0]["id"]
    seen, link = [], None
    while True:
        page = api.url("ListOnboardings", 200, link, key=True).json() if link else \
            api.call("ListOnboardings", 200, query={"tenantId": tenant, "top": "2"}).json()
        seen += [item["id"] for item in page["value"]]
        if not (link := page["nextLink"]):
            break
    assert len(seen) == len(set(seen)) >= 3  # the automatic, manual and CSR onboardings of this module, and more
    completed = api.call("ListOnboardings", 200, query={"status": "completed"}).json()["value"]
    assert {item["status"] for item in completed} == {"completed"}
    everything = api.call("ListOnboardings", 200).json()["value"]
    assert {item["id"] for item in completed} & {item["id"] for item in everything}


def test_every_documented_status_code_was_reached() -> None:
    missing, extra = DOCUMENTED - REACHED, REACHED - DOCUMENTED
    assert not missing, f"documented but not reached: {sorted(missing)}"
    assert not extra, f"reached but not documented: {sorted(extra)}"
