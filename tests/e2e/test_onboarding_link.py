"""The onboarding link end to end: POST /api/onboarding-links, the link followed by an HTTP client that follows
redirects (requests) through the sandbox's admin-consent page and back to the callback, which starts the onboarding
and sends the browser to its progress page. The simulator's request log shows that the product only ever calls
app-only. Every refusal (a tampered or altered link, an expired one, a tampered state, a replayed state, a consent
from another tenant, a declined consent, a consent that does not exist) is an HTML page that says why and starts
nothing. The signing key rotates with links still valid, and the manual method's verifier consent URL tells the
waiting onboarding to verify.

Tenants: customers(simulator)[5], [6] and [7] only ([7] never consents to anything)."""

from __future__ import annotations

import base64
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from azure.data.tables import TableClient
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from shared.links import LINK_FIELDS
from shared.onboarding import application_unique_name
from shared.signing import token_version
from shared.state import CONSENT_STATES, onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ONE_OF_EACH, Product, objects_of

HTML = "text/html"


@pytest.fixture
def sandbox_consent(simulator):
    """Set how the simulated administrator answers consent prompts (decision, the tenant for `organizations`);
    back to accepting with no tenant afterwards."""
    yield lambda **answer: simulator.admin("PUT", "/consent", answer)
    simulator.admin("PUT", "/consent", {"decision": "accept", "tenant": None})


@pytest.fixture
def consent_states(azurite):
    """The product's consent-state rows, counted in Azurite."""
    client = TableClient.from_connection_string(azurite.connection_string, CONSENT_STATES)

    def count() -> int:
        try:
            return sum(1 for _ in client.list_entities(select=["PartitionKey"]))
        except Exception as error:  # the table does not exist before the first link is opened
            if "TableNotFound" in str(error) or "ResourceNotFound" in type(error).__name__:
                return 0
            raise

    yield count
    client.close()


def base_of(product: Product) -> str:
    return f"http://127.0.0.1:{product.port}"


def mailbox(tenant: dict | None = None, domain: str = "contoso.com") -> str:
    return f"link-{uuid.uuid4().hex[:10]}@{tenant['domain'] if tenant else domain}"


def make_link(product: Product, body: dict, **kwargs) -> dict:
    response = product.api("POST", "/onboarding-links", json=body, **kwargs)
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    """`url` with some query parameters replaced (the rest in their order)."""
    parts = urlsplit(url)
    query = {**query_of(url), **changes}
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def tamper(token: str) -> str:
    """The token with its MAC's first character changed."""
    version, payload, mac = token.split(".")
    return f"{version}.{payload}.{('B' if mac[0] == 'A' else 'A')}{mac[1:]}"


def page(response: requests.Response, status: int, *phrases: str) -> str:
    """An HTML answer with `status` that says each phrase (and the pages' security headers)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith(HTML)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for phrase in phrases:
        assert phrase in response.text, (phrase, response.text[:1500])
    return response.text


def to_entra(url: str) -> str:
    """Open the link without following: its 302 to Entra's admin-consent page."""
    response = requests.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def nothing_for(simulator, state, tenant_id: str, address: str) -> None:
    """Nothing exists for (tenant, mailbox): no onboarding record, no app, and no service principal of the product's
    onboarding app or verifier in the tenant (no consent was granted)."""
    instance = onboarding_id(tenant_id, address)
    assert state.get_onboarding(instance) is None
    objects = simulator.tenant_state(tenant_id)
    assert not [a for a in objects["applications"] if a.get("uniqueName") == application_unique_name(instance)]
    product_apps = {simulator.home["consentApp"]["clientId"], simulator.home["verifierApp"]["clientId"]}
    if tenant_id == customers(simulator)[7]["tenantId"]:
        assert not [s for s in objects["servicePrincipals"] if s["appId"] in product_apps]


def app_only(records: list[dict]) -> None:
    """The simulator's log: every token request is a client-credentials grant, no bearer token is delegated, and
    Graph was called with app-only tokens."""
    assert not [r for r in records if r.get("token_type") == "delegated"]
    grants = {r.get("grant_type") for r in records if r.get("grant_type")}
    assert grants <= {"client_credentials"}, grants
    assert any(r["origin"] == "graph" and r.get("token_type") == "app" for r in records)
    assert not [r for r in records if "/authorize" in r["path"] or "/devicecode" in r["path"]]


def no_secrets_logged(product: Product, *secrets: str) -> None:
    logs = "\n".join(product.stderr_lines)
    for secret in secrets:
        assert secret not in logs


def wait_for(product: Product, instance: str, wanted: set[str], timeout: float = 60) -> dict:
    """Poll the status (no time passes on the sandbox clock) until its lifecycle status is one of `wanted`."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = product.onboarding(instance)
        if status["status"] in wanted:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{instance} never reached {wanted}; last: {status}\n" + "\n".join(product.stderr_lines[-30:]))


# -- the link flow -----------------------------------------------------------------------------------------------

def test_a_link_onboards_the_tenant_whose_admin_consents_app_only_and_its_state_is_single_use(
        simulator, product, vault, state, sandbox_consent):
    tenant = customers(simulator)[5]
    tenant_id, address, base = tenant["tenantId"], mailbox(customers(simulator)[5]), base_of(product)
    sandbox_consent(decision="accept", tenant=tenant_id)  # the admin signs in to this tenant for `organizations`
    made = make_link(product, {"serviceMailbox": address, "expiresInHours": 24})
    link = made["url"]
    assert link.startswith(f"{base}/api/onboard?")
    params = query_of(link)
    assert "tenantId" not in params  # the consenting tenant is the one onboarded
    assert (params["serviceMailbox"], params["method"], params["directoryRole"]) == (address, "automatic",
                                                                                     "exchange-administrator")
    assert set(params) <= {*LINK_FIELDS, "sig"}
    now = datetime.fromisoformat(simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(made["expiresAt"].replace("Z", "+00:00"))
    assert abs(expires - (now + timedelta(hours=24))) < timedelta(minutes=1)

    mark = simulator.requests_since()["next"]
    answer = requests.get(link, timeout=60)  # follows every redirect, as a browser does
    assert [hop.status_code for hop in answer.history] == [302, 302, 303]
    consent_page = urlsplit(answer.history[0].headers["Location"])
    assert f"{consent_page.scheme}://{consent_page.netloc}" == simulator.info["loginUrl"].rstrip("/")
    assert consent_page.path == "/organizations/v2.0/adminconsent"
    asked = query_of(answer.history[0].headers["Location"])
    assert asked["client_id"] == simulator.home["consentApp"]["clientId"]
    assert asked["scope"] == "https://graph.microsoft.com/.default"
    assert asked["redirect_uri"] == f"{base}/api/onboard/callback"
    callback = answer.history[1].headers["Location"]
    assert callback.startswith(f"{base}/api/onboard/callback?")
    assert query_of(callback)["tenant"] == tenant_id
    assert query_of(callback)["state"] == asked["state"]
    instance = onboarding_id(tenant_id, address)
    view = answer.history[2].headers["Location"]
    assert view.startswith(f"{base}/api/onboardings/{instance}/view?token=")

    final = product.finish(instance)
    assert final["status"] == "completed", final
    assert (final["tenantId"], final["serviceMailbox"], final["warnings"]) == (tenant_id, address, [])
    assert objects_of(simulator, vault, tenant_id, address) == ONE_OF_EACH
    records = simulator.requests_since(mark)["requests"]
    app_only(records)
    # The only visit to the consent page is the browser's; no admin credential or code ever reached the product.
    assert len([r for r in records if "adminconsent" in r["path"]]) == 1

    # The state is single use: the same answer again starts nothing and links to the progress page.
    replay = requests.get(callback, allow_redirects=False, timeout=30)
    text = page(replay, 409, "already used", "Nothing new was started")
    assert f"{base}/api/onboardings/{instance}/view?token=" in text
    again = product.onboarding(instance)
    assert (again["status"], again["runtimeStatus"]) == ("completed", "Completed")
    history = product.history(instance)["historyEvents"]
    assert sum(1 for e in history if e["EventType"] == "ExecutionStarted") == 1
    no_secrets_logged(product, params["sig"], asked["state"], query_of(view)["token"])


def test_a_link_for_a_named_tenant_warns_about_a_mailbox_domain_the_tenant_has_not_verified(
        simulator, product, vault, state):
    tenant_id, address, base = customers(simulator)[6]["tenantId"], mailbox(), base_of(product)
    # The link is built from CERTAUTH_PUBLIC_BASE_URL, never from the request's Host header.
    made = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "permissionProfile":
                               "graph-contact-sync", "certificate": {"validityMonths": 6}, "expiresInHours": 2},
                     headers={"Host": "evil.example"})
    assert made["url"].startswith(f"{base}/api/onboard?")
    params = query_of(made["url"])
    assert (params["tenantId"], params["directoryRole"], params["validityMonths"]) == (tenant_id, "none", "6")
    answer = requests.get(made["url"], timeout=60)
    assert [hop.status_code for hop in answer.history] == [302, 302, 303]
    assert urlsplit(answer.history[0].headers["Location"]).path == f"/{tenant_id}/v2.0/adminconsent"
    instance = onboarding_id(tenant_id, address)
    assert answer.history[2].headers["Location"].startswith(f"{base}/api/onboardings/{instance}/view?token=")
    final = product.finish(instance)
    assert final["status"] == "completed", final
    [warning] = final["warnings"]
    assert warning["code"] == "MailboxDomainNotVerified"
    assert "contoso.com" in warning["message"]
    assert customers(simulator)[6]["domain"] in warning["message"]
    assert final["directoryRole"] is None
    assert objects_of(simulator, vault, tenant_id, address)["roleAssignments"] == 0


def test_a_manual_link_consents_the_verifier_and_its_consent_url_makes_the_waiting_onboarding_verify(
        simulator, product, state):
    tenant_id, base = customers(simulator)[6]["tenantId"], base_of(product)
    address = mailbox(customers(simulator)[6])
    made = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "method": "manual",
                               "expiresInHours": 2})
    answer = requests.get(made["url"], timeout=60)
    assert [hop.status_code for hop in answer.history] == [302, 302, 303]
    assert query_of(answer.history[0].headers["Location"])["client_id"] == simulator.home["verifierApp"]["clientId"]
    instance = onboarding_id(tenant_id, address)
    waiting = wait_for(product, instance, {"waitingForAdmin"})
    assert waiting["method"] == "manual"

    # The status's verifier consent URL carries a state of its own; the landing makes the onboarding verify now
    # (the AdminVerified event), not at its next poll: the sandbox clock does not move here.
    consent_url = waiting["adminConsentUrl"]
    assert urlsplit(consent_url).path == f"/{tenant_id}/adminconsent"
    assert token_version(query_of(consent_url)["state"])
    landed = requests.get(consent_url, timeout=60)
    assert [hop.status_code for hop in landed.history] == [302, 303]
    assert landed.history[1].headers["Location"].startswith(f"{base}/api/onboardings/{instance}/view?token=")
    checked = wait_for(product, instance, {"needsAttention"})
    assert checked["verification"]["missing"]  # the admin has not run the script: the verification says what misses
    assert "adminConsentUrl" not in checked  # the verifier's consent is recorded

    # A landing without a state, or with one that is not ours, starts nothing.
    callback = f"{base}/api/onboard/callback"
    page(requests.get(f"{callback}?admin_consent=True&tenant={tenant_id}", timeout=30), 400, "Nothing was started")
    forged = with_query(landed.history[0].headers["Location"], state=tamper(query_of(consent_url)["state"]))
    page(requests.get(forged, allow_redirects=False, timeout=30), 403, "could not be verified", "Nothing was started")
    assert product.onboarding(instance)["status"] == "needsAttention"


def test_two_callbacks_with_one_state_start_one_onboarding(simulator, product):
    tenant = customers(simulator)[5]
    tenant_id, address = tenant["tenantId"], mailbox(tenant)
    link = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "expiresInHours": 1})["url"]
    granted = requests.get(to_entra(link), allow_redirects=False, timeout=30)  # Entra's page: consent, redirect
    assert granted.status_code == 302
    callback = granted.headers["Location"]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: requests.get(callback, allow_redirects=False, timeout=60), range(2)))
    assert sorted(a.status_code for a in answers) == [303, 409]  # the ETag decides the race
    final = product.finish(onboarding_id(tenant_id, address))
    assert final["status"] == "completed", final


def test_a_consent_state_is_consumed_once_by_its_etag(state):
    """Table Storage's If-Match decides between two callbacks that both read the state unused."""
    nonce = uuid.uuid4().hex
    state.create_consent_state(nonce, {"Link": "{}", "Method": "automatic"})
    first, second = state.get_consent_state(nonce), state.get_consent_state(nonce)
    assert first.entity["Used"] is False
    assert first.etag == second.etag
    assert state.consume_consent_state(first, {"OnboardingId": "a"}) is True
    assert state.consume_consent_state(second, {"OnboardingId": "b"}) is False  # the ETag moved on
    after = state.get_consent_state(nonce)
    assert (after.entity["Used"], after.entity["OnboardingId"]) == (True, "a")
    assert state.consume_consent_state(after, {"OnboardingId": "c"}) is False  # used: never again


# -- refusals ----------------------------------------------------------------------------------------------------

def test_a_tampered_or_altered_link_answers_403_and_starts_nothing(simulator, product, state, consent_states):
    tenant_id, address = customers(simulator)[7]["tenantId"], mailbox()
    link = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "expiresInHours": 2})["url"]
    before = consent_states()
    sig = query_of(link)["sig"]
    cases = {
        "signature is not valid": with_query(link, sig=tamper(sig)),
        "changed after it was made": with_query(link, serviceMailbox=mailbox()),
        "signature (sig) is missing": link.split("&sig=")[0],
    }
    for reason, url in cases.items():
        response = requests.get(url, allow_redirects=False, timeout=30)
        page(response, 403, reason, "Nothing was started")
        assert "Location" not in response.headers
    assert consent_states() == before  # no state was made for a refused link
    nothing_for(simulator, state, tenant_id, address)


def test_a_consent_that_does_not_exist_or_a_tampered_state_starts_nothing(simulator, product, state,
                                                                          consent_states):
    tenant_id, address, base = customers(simulator)[7]["tenantId"], mailbox(), base_of(product)
    link = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "expiresInHours": 2})["url"]
    issued = query_of(to_entra(link))["state"]
    # Entra's answer is not authenticated: a made-up "consented" answer with a valid state meets no consent.
    made_up = f"{base}/api/onboard/callback?" + urlencode({"admin_consent": "True", "tenant": tenant_id,
                                                           "state": issued})
    for _ in range(2):  # not consumed: the page can be reloaded once the consent shows
        text = page(requests.get(made_up, allow_redirects=False, timeout=30), 403, "not visible yet",
                    "Nothing was started")
        assert "Try again" in text
    tampered = with_query(made_up, state=tamper(issued))
    page(requests.get(tampered, allow_redirects=False, timeout=30), 403, "could not be verified",
         "Nothing was started")
    no_secrets_logged(product, issued, query_of(link)["sig"])
    nothing_for(simulator, state, tenant_id, address)
    assert consent_states() >= 1


def test_a_consent_from_another_tenant_than_the_link_names_is_refused(simulator, product, state, sandbox_consent):
    link_tenant, other = customers(simulator)[7]["tenantId"], customers(simulator)[5]["tenantId"]
    address = mailbox()
    link = make_link(product, {"tenantId": link_tenant, "serviceMailbox": address, "expiresInHours": 2})["url"]
    consent_page = to_entra(link)
    # The admin is sent to `organizations` instead and signs in to another tenant (one that consented before).
    sandbox_consent(decision="accept", tenant=other)
    answer = requests.get(consent_page.replace(f"/{link_tenant}/v2.0/", "/organizations/v2.0/"), timeout=60)
    assert [hop.status_code for hop in answer.history] == [302]
    page(answer, 403, "Consent came from another tenant", link_tenant, other, "Nothing was started")
    nothing_for(simulator, state, link_tenant, address)
    nothing_for(simulator, state, other, address)


def test_a_declined_consent_says_what_happened_and_starts_nothing(simulator, product, state, sandbox_consent):
    tenant_id, address = customers(simulator)[7]["tenantId"], mailbox()
    sandbox_consent(decision="decline")
    link = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "expiresInHours": 2})["url"]
    answer = requests.get(link, timeout=60)
    assert [hop.status_code for hop in answer.history] == [302, 302]
    page(answer, 403, "Consent was not granted", "consent_required", "Global Administrator", "Nothing was started")
    nothing_for(simulator, state, tenant_id, address)


def test_an_expired_link_answers_403_and_starts_nothing(simulator, product, state, consent_states):
    tenant_id, address = customers(simulator)[7]["tenantId"], mailbox()
    link = make_link(product, {"tenantId": tenant_id, "serviceMailbox": address, "expiresInHours": 1})["url"]
    simulator.advance_clock(3601)
    before = consent_states()
    page(requests.get(link, allow_redirects=False, timeout=30), 403, "has expired", "Nothing was started")
    assert consent_states() == before
    nothing_for(simulator, state, tenant_id, address)


def test_making_a_link_needs_the_function_key_and_refuses_secrets(simulator, product):
    body = {"serviceMailbox": mailbox(), "expiresInHours": 1}
    assert product.call("POST", "/api/onboarding-links", key=None, json=body).status_code == 401
    refused = product.api("POST", "/onboarding-links", json={**body, "certificate": {"pfx": "MIIB", "password": ""}})
    assert refused.status_code == 400
    assert [d["target"] for d in refused.json()["error"]["details"]] == ["certificate.pfx", "certificate.password"]
    too_long = product.api("POST", "/onboarding-links", json={**body, "expiresInHours": 10_000})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["target"] == "expiresInHours"


# -- the signing key rotates -----------------------------------------------------------------------------------------

def test_a_link_signed_before_a_key_rotation_works_after_it_and_new_links_name_the_new_version(simulator, azurite):
    """The product caches key versions for minutes per process: each rotation step restarts it (a new Product)."""
    secret = f"certauth-link-rotation-{uuid.uuid4().hex[:8]}"  # this test's own signing key: the session's stays
    tenant_id = customers(simulator)[7]["tenantId"]
    home = simulator.home
    credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                        home["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    secrets = SecretClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False)
    started: list[Product] = []

    def restart() -> Product:
        if started:
            started[-1].stop()
        started.append(Product(simulator, azurite.connection_string,
                               env={"CERTAUTH_SIGNING_KEY_SECRET": secret}).launch())
        return started[-1]

    def on(product: Product, link: str) -> str:
        """The link on this product's origin (the signature covers the parameters, not the host)."""
        return base_of(product) + link[link.index("/api/onboard?"):]

    def rotate() -> str:
        value = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        added = secrets.set_secret(secret, value, content_type="application/vnd.certauth.hmac-sha256-key")
        return added.properties.version

    try:
        first = restart()
        old = make_link(first, {"tenantId": tenant_id, "serviceMailbox": mailbox(), "expiresInHours": 48})["url"]
        v1 = token_version(query_of(old)["sig"])
        v2 = rotate()
        second = restart()
        state = query_of(to_entra(on(second, old)))["state"]
        assert token_version(state) == v2  # the old link verifies; what it signs now is signed with the new key
        new = make_link(second, {"tenantId": tenant_id, "serviceMailbox": mailbox(), "expiresInHours": 48})["url"]
        assert token_version(query_of(new)["sig"]) == v2 != v1
        rotate()
        third = restart()
        # The version after next retires the first: its links stop; the second's still work.
        page(requests.get(on(third, old), allow_redirects=False, timeout=30), 403, "no longer accepts")
        to_entra(on(third, new))
    finally:
        for product in started:
            product.stop()
        secrets.close()
        credential.close()
