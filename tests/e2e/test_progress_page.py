"""The progress page (GET /api/onboardings/{id}/view?token=…) in headless Chromium: the product on the sandbox host,
the simulator for Entra, Graph and Key Vault, Debian's chromium through Playwright.

Screenshots of a running, a completed and a failed onboarding (and the manual method's page) go to
artifacts/progress-page/ (git ignores artifacts/); UPDATE_SCREENSHOTS=1 also refreshes the README's
docs/progress-completed.png.

Tenants: customers(simulator)[3] (completed, running, hostile mailboxes, tokens, manual) and [4] (the failure: its
onboarding app loses RoleManagement.ReadWrite.Directory, given back afterwards)."""

from __future__ import annotations

import html
import json
import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from shared.signing import SigningKeys, make_token
from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import REPO
from tests.e2e.test_manual_method import run_script, wait_status
from tests.mailboxes import HOSTILE_HTML, HOSTILE_VALID

pytestmark = pytest.mark.timeout(300)

ARTIFACTS = REPO / "artifacts" / "progress-page"
DOCS_SCREENSHOT = REPO / "docs" / "progress-completed.png"
AUTOMATIC = ["certificate", "application", "servicePrincipal", "consent", "directoryRole", "keyCredential", "proof",
             "record"]
MANUAL = ["certificate", "waitingForAdmin", "verification", "proof", "record"]
# Every element the page is made of: anything else in the DOM was injected.
PAGE_TAGS = {"html", "head", "meta", "link", "title", "style", "script", "noscript", "body", "main", "h1", "h2", "h3",
             "p", "code", "div", "strong", "ol", "ul", "li", "span", "section", "dl", "dt", "dd", "a", "form",
             "button"}
HOSTILE_BATCH = 7
# Recorded before any of the page's own scripts run (an init script is the browser's, not the page's: CSP
# doesn't apply to it): every CSP violation the page causes.
WATCH_VIOLATIONS = """window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));"""
# The DOM of the page's changing part as data: tags, attributes (sorted) and text, to compare what the script built
# with what the server rendered.
DOM_OF_PROGRESS = """() => {
  const walk = (node) => node.nodeType === Node.TEXT_NODE ? node.data :
    [node.tagName.toLowerCase(), [...node.attributes].map((a) => [a.name, a.value]).sort(),
     [...node.childNodes].map(walk)];
  return walk(document.getElementById("progress")).slice(2);
}"""


class Watched:
    """A page with what it logged: console errors, uncaught exceptions, CSP violations, navigations, requests."""

    def __init__(self, context, page) -> None:
        self.context, self.page = context, page
        self.errors: list[str] = []
        self.navigations: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("framenavigated", lambda f: self.navigations.append(f.url) if f == page.main_frame else None)
        page.on("request", lambda r: self.requests.append(r.url))

    javascript = True  # False: the context runs no script (and no init script records violations)

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no CSP violation."""
        assert self.errors == [], self.errors
        if self.javascript:
            assert self.page.evaluate("window.__violations") == []

    def states(self) -> list[tuple[str, str]]:
        """(step, state) of each step shown."""
        return [(li.get_attribute("data-step"), li.get_attribute("data-state"))
                for li in self.page.locator("#steps > li").all()]

    def facts(self, selector: str) -> dict[str, str]:
        """A <dl class="facts"> as {name: value}."""
        names = self.page.locator(f"{selector} dl.facts > dt").all_inner_texts()
        values = self.page.locator(f"{selector} dl.facts > dd").all_inner_texts()
        return dict(zip(names, values, strict=True))


@pytest.fixture
def open_page(browser):
    """Open a URL in a fresh browser context (JavaScript on or off); every context is closed after the test."""
    contexts = []

    def opener(url: str, *, javascript: bool = True) -> Watched:
        context = browser.new_context(java_script_enabled=javascript, viewport={"width": 860, "height": 900},
                                      accept_downloads=True)
        contexts.append(context)
        context.add_init_script(WATCH_VIOLATIONS)
        page = context.new_page()
        watched = Watched(context, page)
        watched.javascript = javascript
        response = page.goto(url)
        assert response.status == 200, (response.status, page.content()[:500])
        if javascript:
            page.wait_for_selector('#progress[data-script="on"]')  # the inline script ran under the page's CSP
        return watched

    yield opener
    for context in contexts:
        context.close()


def screenshot(watched: Watched, name: str, *, docs: bool = False) -> None:
    """Save the page as artifacts/progress-page/<name>.png (and as the README's picture when asked)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    watched.page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        DOCS_SCREENSHOT.write_bytes(target.read_bytes())


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def csp_of(response: requests.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: sources}."""
    directives = [part.split() for part in response.headers["Content-Security-Policy"].split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


def assert_page_headers(response: requests.Response) -> str:
    """The security headers every page sends; the answer's script nonce."""
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    policy = csp_of(response)
    [nonce_source] = policy["script-src"]
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{20,})'", nonce_source).group(1)
    assert policy == {"default-src": ["'none'"], "script-src": [f"'nonce-{nonce}'"], "style-src": [f"'nonce-{nonce}'"],
                      "connect-src": ["'self'"], "img-src": ["'self'", "data:"], "form-action": ["'self'"],
                      "base-uri": ["'none'"], "frame-ancestors": ["'none'"]}
    return nonce


def wait_lifecycle(watched: Watched, lifecycle: str, timeout: float = 30) -> None:
    watched.page.wait_for_selector(f'#progress[data-lifecycle="{lifecycle}"]', timeout=timeout * 1000)


def fresh_dom(open_page, url: str):
    """The server's rendering of the page now (a new load), as DOM_OF_PROGRESS data."""
    fresh = open_page(url)
    return fresh.page.evaluate(DOM_OF_PROGRESS)


@pytest.fixture(scope="module")
def tenant(simulator, admin_consent) -> str:
    """Customer tenant 3, its administrator consented to the onboarding app (which gives back any role taken)."""
    tenant_id = customers(simulator)[3]["tenantId"]
    admin_consent(tenant_id)
    return tenant_id


def test_a_completed_onboarding_shows_every_step_done_and_the_result(product, tenant, open_page):
    mailbox = f"progress-done-{uuid.uuid4().hex[:8]}@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    view = started["viewUrl"]
    assert urlsplit(view).path == f"/api/onboardings/{started['id']}/view"
    assert token_of(view) == token_of(started["statusQueryGetUri"])
    final = product.finish(started["id"])
    assert final["status"] == "completed", final

    # Anonymous: no function key, only the token. A strict CSP with a fresh nonce per answer, used by the script.
    first, second = requests.get(view, timeout=30), requests.get(view, timeout=30)
    assert first.status_code == 200, first.text
    nonce = assert_page_headers(first)
    assert nonce != assert_page_headers(second)
    assert first.text.count("<script") == 1
    assert f'<script nonce="{nonce}">' in first.text
    assert 'http-equiv="refresh"' not in first.text  # terminal: nothing to refresh for

    watched = open_page(view)
    page = watched.page
    assert page.title() == f"Onboarding of {mailbox}"
    assert page.locator("#mailbox").text_content() == mailbox
    assert page.locator("#tenant").text_content() == tenant
    assert page.locator("#state").inner_text().startswith("Completed")
    assert watched.states() == [(step, "done") for step in AUTOMATIC]
    assert page.locator("#steps [aria-current]").count() == 0
    details = page.locator("#steps .detail").all_inner_texts()
    assert f"thumbprint {final['certificate']['thumbprint']}" in details
    assert f"app (client) id {final['application']['appId']}" in details
    assert "Exchange Administrator" in details
    result = watched.facts("#result")
    assert result["App (client) id"] == final["application"]["appId"]
    assert result["Service principal"] == final["servicePrincipalId"]
    assert result["Certificate thumbprint"] == final["certificate"]["thumbprint"]
    assert set(result["Permissions"].split(", ")) == set(final["permissions"])
    assert page.locator("#error").count() == 0
    assert page.locator("#manual").count() == 0
    assert "no longer updates" in page.locator("#updates").inner_text()
    assert not [url for url in watched.requests if "/status?" in url]
    watched.assert_clean()
    screenshot(watched, "completed", docs=True)


def test_a_running_onboarding_updates_itself_to_completed_without_a_reload(simulator, product, tenant, open_page,
                                                                           clean_faults):
    mailbox = f"progress-running-{uuid.uuid4().hex[:8]}@contoso.com"
    # Park the run at its directory role step: the role assignment's POST waits at the simulator until released.
    simulator.hold("progress-role", origin="graph", method="POST",
                   path=r"^/v1\.0/roleManagement/directory/roleAssignments")
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    simulator.wait_held("progress-role", timeout=60)
    # The steps beside the role (the certificate, its key on the app, consent) go on: wait until only the role is
    # left in progress, so that the page has one state to show.
    wait_steps(product, started["id"], ["directoryRole"])

    watched = open_page(started["viewUrl"])
    page = watched.page
    running = [(step, "done") for step in AUTOMATIC[:4]] + [("directoryRole", "running"), ("keyCredential", "done"),
                                                            ("proof", "pending"), ("record", "pending")]
    assert watched.states() == running
    assert page.locator("#steps [aria-current=step]").get_attribute("data-step") == "directoryRole"
    assert page.locator("#state").inner_text().startswith("In progress")
    screenshot(watched, "running")

    # Without JavaScript: the same state, and a refresh while it runs (the page reloads itself).
    plain = open_page(started["viewUrl"], javascript=False)
    assert plain.states() == running
    assert plain.page.locator("#progress").get_attribute("data-script") is None  # no script ran
    refresh = plain.page.locator('meta[http-equiv="refresh"]')
    assert refresh.count() == 1
    assert refresh.get_attribute("content") == "2"  # a running step: the status URL's Retry-After
    assert "reloads every 2 seconds" in plain.page.locator("main").inner_text()
    with plain.page.expect_event("framenavigated", timeout=15_000):
        pass  # the refresh reloads the page by itself
    assert plain.states() == running

    page.evaluate("window.__sameDocument = true")
    navigations = len(watched.navigations)
    assert simulator.release("progress-role") == 1
    final = product.finish(started["id"])
    assert final["status"] == "completed", final
    wait_lifecycle(watched, "completed")
    assert page.evaluate("window.__sameDocument") is True  # updated in place: no reload, no navigation
    assert len(watched.navigations) == navigations
    polls = [url for url in watched.requests if urlsplit(url).path.endswith(f"/{started['id']}/status")]
    assert polls, "the page never polled the status JSON"
    assert all(token_of(url) == token_of(started["viewUrl"]) for url in polls)
    assert watched.states() == [(step, "done") for step in AUTOMATIC]
    assert watched.facts("#result")["App (client) id"] == final["application"]["appId"]
    assert page.locator("#announce").text_content() == "Completed"
    assert "no longer updates" in page.locator("#updates").inner_text()
    # What the script built from the JSON is what the server renders for the same state.
    assert page.evaluate(DOM_OF_PROGRESS) == fresh_dom(open_page, started["viewUrl"])
    watched.assert_clean()

    # The page without JavaScript gets there by its refreshes, and then stops refreshing.
    plain.page.wait_for_selector('#progress[data-lifecycle="completed"]', timeout=20_000)
    assert plain.page.locator('meta[http-equiv="refresh"]').count() == 0
    assert plain.states() == [(step, "done") for step in AUTOMATIC]
    plain.assert_clean()


def wait_steps(product, instance: str, steps: list[str], timeout: float = 60) -> dict:
    """The onboarding's status once exactly `steps` are in progress."""
    deadline = time.monotonic() + timeout
    while True:
        status = product.onboarding(instance)
        if status["steps"] == steps:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)  # polling the status


@pytest.fixture
def without_role_management(simulator, admin_consent):
    """Customer tenant 4, whose onboarding app holds every Graph role but RoleManagement.ReadWrite.Directory: the
    directory role step fails for good (403). Its roles are given back afterwards."""
    tenant_id = customers(simulator)[4]["tenantId"]
    admin_consent(tenant_id)
    consent_app = simulator.home["consentApp"]["clientId"]
    roles = simulator.info["defaultProvisionerRoles"]
    simulator.grant(tenant_id, [r for r in roles if r != "RoleManagement.ReadWrite.Directory"], principal=consent_app)
    try:
        yield tenant_id
    finally:
        simulator.grant(tenant_id, roles, principal=consent_app)


def test_a_failure_shows_the_step_graphs_error_and_what_to_do(product, without_role_management, open_page):
    tenant_id = without_role_management
    mailbox = f"progress-failed-{uuid.uuid4().hex[:8]}@contoso.com"
    started = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox})
    watched = open_page(started["viewUrl"])  # open while it runs: the script shows the failure when it comes
    final = product.finish(started["id"])
    assert (final["status"], final["error"]["step"], final["error"]["code"]) == (
        "failed", "directoryRole", "Authorization_RequestDenied"), final
    wait_lifecycle(watched, "failed")
    page = watched.page
    # The key goes onto the app beside the role: whether it got there before the role failed is the run's own
    # record (what it made), which the page follows.
    key = "done" if "keyCredential" in final["created"] else "pending"
    assert watched.states() == [(step, "done") for step in AUTOMATIC[:4]] + [
        ("directoryRole", "failed"), ("keyCredential", key), ("proof", "pending"), ("record", "pending")]
    assert page.locator("#state").inner_text().startswith("Failed")
    error = watched.facts("#error")
    assert error == {"Step": "Directory role", "Answer": "403 Authorization_RequestDenied",
                     "Message": final["error"]["message"]}
    assert final["error"]["message"]  # Graph's own words, as Graph said them
    advice = page.locator("#next").inner_text()
    assert "RoleManagement.ReadWrite.Directory" in advice
    assert "consents to the onboarding app again" in advice
    assert page.locator("#result").count() == 0
    assert page.evaluate(DOM_OF_PROGRESS) == fresh_dom(open_page, started["viewUrl"])
    watched.assert_clean()
    screenshot(watched, "failed")


def test_hostile_mailboxes_are_shown_as_text_and_inject_nothing(simulator, product, tenant, open_page,
                                                               clean_faults):
    def check(watched: Watched, mailbox: str) -> None:
        page = watched.page
        assert page.locator("#mailbox").text_content() == mailbox
        assert page.title() == f"Onboarding of {mailbox}"
        tags = set(page.evaluate("[...document.querySelectorAll('*')].map((e) => e.tagName.toLowerCase())"))
        assert tags <= PAGE_TAGS, tags - PAGE_TAGS
        assert page.evaluate("document.scripts.length") == 1
        assert page.evaluate("[...document.querySelectorAll('*')].flatMap((e) => [...e.attributes])"
                             ".filter((a) => a.name.startsWith('on')).length") == 0
        assert page.evaluate("typeof window.pwned") == "undefined"
        watched.assert_clean()

    mailboxes = [*HOSTILE_VALID, *HOSTILE_HTML]
    # In batches, each parked at its directory role step (fewer than the host's activity workers) while its pages
    # open: every page is rendered by the server while running, then by the script from the JSON it polls.
    for first in range(0, len(mailboxes), HOSTILE_BATCH):
        batch = mailboxes[first:first + HOSTILE_BATCH]
        hold = f"progress-hostile-{first}"
        simulator.hold(hold, origin="graph", method="POST", path=r"^/v1\.0/roleManagement/directory/roleAssignments",
                       count=len(batch))
        started = [product.onboard({"tenantId": tenant, "serviceMailbox": m}) for m in batch]
        simulator.wait_held(hold, timeout=60, count=len(batch))
        pages = [open_page(s["viewUrl"]) for s in started]
        for watched, mailbox in zip(pages, batch, strict=True):
            assert watched.page.locator("#progress").get_attribute("data-lifecycle") == "running"
            check(watched, mailbox)  # the server's rendering
        assert simulator.release(hold) == len(batch)
        for watched, accepted, mailbox in zip(pages, started, batch, strict=True):
            assert product.finish(accepted["id"], timeout=120)["status"] == "completed"
            wait_lifecycle(watched, "completed", timeout=40)
            check(watched, mailbox)  # the script's rendering
            raw = requests.get(accepted["viewUrl"], timeout=30).text
            assert html.escape(mailbox, quote=True) in raw
            if html.escape(mailbox, quote=True) != mailbox:
                assert mailbox not in raw  # never unescaped, anywhere in the markup


def _signing_keys(simulator, product) -> SigningKeys:
    """The product's signing keys, read from the simulator's Key Vault as the home tenant's provisioner."""
    home = simulator.home
    credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                        home["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    client = SecretClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False,
                          connection_verify=simulator.info["caBundle"])
    return SigningKeys(client, product.env.get("CERTAUTH_SIGNING_KEY_SECRET", "certauth-signing-key"))


def test_missing_forged_expired_or_foreign_tokens_get_a_403_page(simulator, product, tenant):
    mine = product.onboard({"tenantId": tenant, "serviceMailbox": f"progress-mine-{uuid.uuid4().hex[:8]}@contoso.com"})
    other_mailbox = f"progress-other-{uuid.uuid4().hex[:8]}@contoso.com"
    other = product.onboard({"tenantId": tenant, "serviceMailbox": other_mailbox})
    product.finish(mine["id"])
    product.finish(other["id"])
    token = token_of(mine["viewUrl"])
    version, payload, mac = token.split(".")
    # Signed with the product's own key, but expired a minute ago on the product's clock (the sandbox clock).
    now = datetime.fromisoformat(simulator.admin("GET", "/clock")["now"].replace("Z", "+00:00")).timestamp()
    expired = make_token(_signing_keys(simulator, product).current(), "status", mine["id"], int(now) - 60)
    base = product.base_url
    refused = {"missing": "", "forged": f"{version}.{payload}.{'A' * len(mac)}", "expired": expired,
               "foreign": token_of(other["viewUrl"]), "garbage": "<script>alert(1)</script>"}
    for name, bad in refused.items():
        for method, action in (("GET", ""), ("GET", "/script"), ("POST", "/verify")):
            url = f"{base}/api/onboardings/{mine['id']}/view{action}" + (f"?token={quote(bad, safe='')}" if bad else "")
            response = requests.request(method, url, timeout=30, allow_redirects=False)
            assert response.status_code == 403, (name, action, response.status_code, response.text[:300])
            assert_page_headers(response)
            assert "<h1>This link is not valid</h1>" in response.text
            assert "<script>alert" not in response.text
            assert other_mailbox not in response.text
            assert other["id"] not in response.text
    # The token's own onboarding only, and the function key is no substitute for it.
    assert requests.get(f"{base}/api/onboardings/{other['id']}/view?token={quote(token, safe='')}",
                        timeout=30).status_code == 403
    keyed = product.call("GET", f"/api/onboardings/{mine['id']}/view")
    assert keyed.status_code == 403
    assert requests.get(f"{base}/api/onboardings/not-an-id/view?token={quote(token, safe='')}",
                        timeout=30).status_code == 403
    # The expired token was refused for its expiry alone: the same key signs a valid one.
    valid = make_token(_signing_keys(simulator, product).current(), "status", mine["id"], int(now) + 600)
    assert requests.get(f"{base}/api/onboardings/{mine['id']}/view?token={valid}", timeout=30).status_code == 200
    # The page's actions on an automatic onboarding: a page saying why, with the way back.
    script = requests.get(f"{base}/api/onboardings/{mine['id']}/view/script?token={quote(token, safe='')}",
                          timeout=30)
    assert script.status_code == 409
    assert_page_headers(script)
    assert "automatic method" in script.text
    assert html.escape(mine["viewUrl"], quote=True) in script.text


@pytest.fixture
def restore_provisioner(simulator, tenant):
    """The script's sign-in gives the tenant's provisioner the script's scopes: give it its own roles back after."""
    yield
    simulator.grant(tenant, simulator.info["defaultProvisionerRoles"])


def test_the_manual_page_downloads_the_script_and_verifies_from_the_page(simulator, product, tenant, open_page,
                                                                         restore_provisioner):
    mailbox = f"progress-manual-{uuid.uuid4().hex[:8]}@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox, "method": "manual"})
    instance = started["id"]
    assert instance == onboarding_id(tenant, mailbox)
    waiting = wait_status(product, instance, "waitingForAdmin")

    watched = open_page(started["viewUrl"])
    page = watched.page
    assert watched.states() == [("certificate", "done"), ("waitingForAdmin", "waiting"), ("verification", "pending"),
                                ("proof", "pending"), ("record", "pending")]
    assert page.locator("#state").inner_text().startswith("Waiting for the administrator")
    assert page.locator("#consent").get_attribute("href") == waiting["adminConsentUrl"]
    assert page.locator("#verify button").is_enabled()
    screenshot(watched, "manual-waiting")

    # Without JavaScript: the same download link and verify form, and a refresh.
    plain = open_page(started["viewUrl"], javascript=False)
    assert plain.page.locator("#script").get_attribute("href") == page.locator("#script").get_attribute("href")
    assert plain.page.locator("#verify").get_attribute("method") == "post"
    assert plain.page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "15"

    # The script from the page is the operator's script, byte for byte, without the function key.
    with page.expect_download() as download:
        page.click("#script")
    assert download.value.suggested_filename == f"certauth-{tenant}.ps1"
    script = Path(download.value.path()).read_bytes()
    operator = product.api("GET", f"/onboardings/{instance}/script")
    assert operator.status_code == 200
    assert script == operator.content

    run_script(simulator, customers(simulator)[3], script)
    simulator.consent_verifier(tenant)
    page.evaluate("window.__sameDocument = true")
    with page.expect_response(lambda r: urlsplit(r.url).path.endswith("/view/verify")) as answer:
        page.click("#verify button")  # the script posts the form itself and stays on the page
    assert (answer.value.request.method, answer.value.status) == ("POST", 303)
    # The note says so until the page shows the result (it can be that quick).
    page.wait_for_selector('#verify-note:text-is("Verification requested: this page shows what it finds."), '
                           '#progress[data-lifecycle="completed"]')
    final = product.finish(instance)
    assert final["status"] == "completed", final
    wait_lifecycle(watched, "completed")
    assert page.evaluate("window.__sameDocument") is True
    assert watched.states() == [(step, "done") for step in MANUAL]
    assert watched.facts("#result")["App (client) id"] == final["application"]["appId"]
    assert page.locator("#manual").count() == 0
    watched.assert_clean()

    # Nothing waits any more: the button's action says so as a page (409), without the function key.
    late = requests.post(f"{product.base_url}/api/onboardings/{instance}/view/verify?token="
                         f"{quote(token_of(started['viewUrl']), safe='')}", timeout=30, allow_redirects=False)
    assert late.status_code == 409
    assert_page_headers(late)
    assert "not waiting for the administrator" in late.text


def test_the_verify_form_works_without_javascript(simulator, product, tenant, open_page):
    mailbox = f"progress-form-{uuid.uuid4().hex[:8]}@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox, "method": "manual"})
    wait_status(product, started["id"], "waitingForAdmin")
    simulator.consent_verifier(tenant)  # the verifier can read the tenant; the admin has not run the script
    plain = open_page(started["viewUrl"], javascript=False)
    with plain.page.expect_navigation():
        plain.page.click("#verify button")  # POST …/view/verify, then 303 back to the page
    assert urlsplit(plain.page.url).path == f"/api/onboardings/{started['id']}/view"
    assert token_of(plain.page.url) == token_of(started["viewUrl"])
    # The verification ran and found nothing set up; the page, reloaded by its refresh, says what is missing.
    attention = wait_status(product, started["id"], "needsAttention")
    assert attention["verification"]["missing"]
    plain.page.wait_for_selector('#progress[data-lifecycle="needsAttention"]', timeout=30_000)
    assert plain.page.locator("#missing li").all_inner_texts() == attention["verification"]["missing"]
    assert plain.page.locator("#state").inner_text().startswith("Needs your attention")
    # The administrator's step needs attention again: the fix is the script (again), then verify.
    assert plain.states() == [("certificate", "done"), ("waitingForAdmin", "attention"), ("verification", "pending"),
                              ("proof", "pending"), ("record", "pending")]
    plain.assert_clean()


# Markup, script and a javascript: URL where the page shows data: what no value that reaches it may become.
EVIL = '"\'><img src=x onerror="window.pwned=1"><script>window.pwned=1</script>&lt;</p>'


def _evil_body(status: str, **changes) -> dict:
    """A status body with EVIL in every value the page shows (more than the product's own data paths can carry:
    the mailbox rule refuses < > ", but Graph's messages and the record's JSON are not the page's to trust)."""
    body = {"id": "x", "runtimeStatus": "Running", "status": status, "method": "manual", "step": "waitingForAdmin",
            "tenantId": EVIL, "serviceMailbox": EVIL, "application": {"appId": EVIL}, "servicePrincipalId": EVIL,
            "certificate": {"thumbprint": EVIL, "notAfter": EVIL}, "permissions": [EVIL, EVIL], "directoryRole": EVIL,
            "created": {"certificate": {"thumbprint": EVIL}, "appId": EVIL}, "warnings": [EVIL, {"message": EVIL}],
            "verification": {"verified": [EVIL], "notVerified": [], "missing": [EVIL]},
            "adminConsentUrl": "javascript:window.pwned=1", "error": None}
    return {**body, **changes}


def test_the_renderers_turn_any_value_into_text(browser):
    """The server's rendering and the script's, fed EVIL everywhere. The page comes from the product's own renderer
    (functions/progress.py), served by Playwright's router instead of a host, with the JSON the script polls."""
    from functions.progress import progress_page

    page_answer = progress_page(_evil_body("needsAttention"), {}, "t")
    polls = [_evil_body("needsAttention", verification={"missing": [EVIL, "second"]}),
             _evil_body("failed", step="verification", error={"step": EVIL, "status": EVIL, "code": EVIL,
                                                              "message": EVIL, "fix": EVIL})]
    served: list[str] = []

    def serve(route) -> None:
        path = urlsplit(route.request.url).path
        served.append(path)
        if path.endswith("/view"):
            route.fulfill(status=200, headers={**dict(page_answer.headers), "Content-Type": "text/html; charset=utf-8"},
                          body=page_answer.get_body())
        else:
            body = polls[0] if len(served) == 2 else polls[1]
            route.fulfill(status=202, headers={"Content-Type": "application/json", "Retry-After": "1"},
                          body=json.dumps(body))

    context = browser.new_context()
    try:
        context.add_init_script(WATCH_VIOLATIONS)
        context.route("http://certauth.invalid/**", serve)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("http://certauth.invalid/api/onboardings/x/view?token=t")

        def injected() -> dict:
            return page.evaluate("""() => ({
              tags: [...new Set([...document.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()))],
              scripts: document.scripts.length,
              handlers: [...document.querySelectorAll('*')].flatMap((e) => [...e.attributes])
                .filter((a) => a.name.startsWith('on')).length,
              pwned: typeof window.pwned,
              javascriptLinks: [...document.links].filter((a) => a.protocol === 'javascript:').length})""")

        def assert_inert() -> None:
            found = injected()
            assert set(found["tags"]) <= PAGE_TAGS, set(found["tags"]) - PAGE_TAGS
            assert (found["scripts"], found["handlers"], found["pwned"], found["javascriptLinks"]) == (
                1, 0, "undefined", 0), found
            assert page.locator("#mailbox").text_content() == EVIL
            assert page.title() == f"Onboarding of {EVIL}"

        assert page.locator("#missing li").all_text_contents() == [EVIL]  # the server's rendering
        assert page.locator("#consent").count() == 0  # a javascript: URL is no link
        assert_inert()
        page.wait_for_selector("#missing li:nth-child(2)")  # the script's rendering of the first poll
        assert page.locator("#missing li").all_text_contents() == [EVIL, "second"]
        assert page.locator("#consent").count() == 0
        assert_inert()
        page.wait_for_selector('#progress[data-lifecycle="failed"]')  # the second poll: a failure, all EVIL
        assert page.locator("#error dd").all_text_contents() == [EVIL, f"{EVIL} {EVIL}", EVIL]
        assert page.locator("#next").text_content() == EVIL
        assert [li.text_content() for li in page.locator("#warnings li").all()] == [EVIL, EVIL]
        assert_inert()
        assert page.evaluate("window.__violations") == []
        assert errors == []
        assert served[:3] == ["/api/onboardings/x/view", "/api/onboardings/x/status", "/api/onboardings/x/status"]
    finally:
        context.close()
