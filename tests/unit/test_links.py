"""shared.links: the onboarding link's request, its signature over the canonical parameters, the consent state, the
admin-consent URL; and the configuration and validation answers of POST /api/onboarding-links."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, parse_qsl, urlsplit

import azure.functions as func
import pytest

from functions import links as routes
from shared import links
from shared.models import LinkRequest, OnboardingRequest, RequestError
from shared.settings import Settings, SettingsError, get_settings
from shared.signing import SigningKey, make_token

KEY = SigningKey("0123456789abcdef0123456789abcdef", b"k" * 32)
NEXT = SigningKey("fedcba9876543210fedcba9876543210", b"n" * 32)
NOW = 1_800_000_000
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BASE = "https://certauth.contoso.com"
SETTINGS = Settings(provisioner_client_id="11111111-1111-1111-1111-111111111111",
                    verifier_client_id="22222222-2222-2222-2222-222222222222", public_base_url=BASE)


def keys(*versions: SigningKey) -> dict[str, bytes]:
    return {k.version: k.key for k in versions}


def parse(body: dict) -> tuple[LinkRequest, int]:
    return links.parse_link_request(json.dumps(body).encode())


def problems(body) -> list[dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestError) as caught:
        links.parse_link_request(raw)
    return caught.value.problems


def signed(params: dict, expires: int = NOW + 3600, key: SigningKey = KEY) -> dict:
    return {**params, "sig": links.sign_link(key, params, expires)}


# -- the link's request --------------------------------------------------------------------------------------

def test_a_link_request_is_an_onboarding_request_whose_tenant_is_optional() -> None:
    request, hours = parse({"serviceMailbox": "Sync@Contoso.com", "expiresInHours": 48})
    assert (request.tenant_id, request.service_mailbox, request.method, hours) == (None, "sync@contoso.com",
                                                                                   "automatic", 48)
    assert request.directory_role == "exchange-administrator"  # the profile's role, as POST /api/onboardings
    named, _ = parse({"tenantId": TENANT.upper(), "serviceMailbox": "a@contoso.com", "expiresInHours": 1})
    assert named.tenant_id == TENANT


def test_the_same_model_refuses_what_post_onboardings_refuses() -> None:
    found = problems({"tenantId": "contoso", "serviceMailbox": "a b@contoso.com", "method": "magic",
                      "certificate": {"keySize": 1024}, "extra": 1, "expiresInHours": 24})
    fields = {p["field"] for p in found}
    assert fields == {"tenantId", "serviceMailbox", "method", "certificate.keySize", "extra"}
    assert any("GUID" in p["rule"] for p in found if p["field"] == "tenantId")
    assert [p["field"] for p in problems({"tenantId": None, "serviceMailbox": "a@contoso.com",
                                          "expiresInHours": 1})] == ["tenantId"]


def test_a_secret_never_goes_into_a_link() -> None:
    found = problems({"serviceMailbox": "a@contoso.com", "expiresInHours": 1,
                      "certificate": {"pfx": "MIIB", "password": "hunter2"}})
    assert [p["field"] for p in found] == ["certificate.pfx", "certificate.password"]
    assert all("secret never goes into a URL" in p["rule"] for p in found)
    assert "hunter2" not in json.dumps(found)
    only_password = problems({"serviceMailbox": "a@contoso.com", "expiresInHours": 1,
                              "certificate": {"password": ""}})
    assert [p["field"] for p in only_password] == ["certificate.password"]


@pytest.mark.parametrize("hours", [None, 0, links.MAX_LINK_HOURS + 1, 1.5, True, "24"])
def test_expires_in_hours_is_a_bounded_whole_number(hours) -> None:
    body = {"serviceMailbox": "a@contoso.com", **({} if hours is None else {"expiresInHours": hours})}
    found = problems(body)
    assert [p["field"] for p in found] == ["expiresInHours"]
    assert found[0]["rule"] == ("is required" if hours is None else
                                f"must be a whole number of hours from 1 to {links.MAX_LINK_HOURS}")


@pytest.mark.parametrize(("raw", "rule"), [(b"", "must be a JSON object"), (b"[1]", "must be a JSON object"),
                                       (b"{", "must be valid JSON"), (b"x" * 20000, "must be at most 16384 bytes")])
def test_a_body_that_is_no_json_object_is_refused(raw, rule) -> None:
    assert problems(raw) == [{"field": "body", "rule": rule}]


def test_the_parameters_write_out_what_the_link_decides_and_read_back_through_the_model() -> None:
    request, _ = parse({"serviceMailbox": "a@contoso.com", "permissionProfile": "graph-contact-sync",
                        "certificate": {"validityMonths": 6, "exportable": False}, "expiresInHours": 1})
    params = links.link_parameters(request)
    assert params == {"serviceMailbox": "a@contoso.com", "method": "automatic",
                      "permissionProfile": "graph-contact-sync", "directoryRole": "none",
                      "validityMonths": "6", "exportable": "false"}
    again = links.request_of(params)
    assert isinstance(again, LinkRequest)
    assert again.tenant_id is None
    assert again.certificate.model_fields_set == {"validity_months", "exportable"}  # keySize stays implicit
    onboarding = links.request_of(params, TENANT)
    assert type(onboarding) is OnboardingRequest
    assert onboarding.model_dump() == {**request.model_dump(), "tenant_id": TENANT}
    role, _ = parse({"serviceMailbox": "a@contoso.com", "directoryRole": "global-reader", "method": "manual",
                     "certificate": {"issuer": "customer"}, "expiresInHours": 1})
    assert links.link_parameters(role) == {"serviceMailbox": "a@contoso.com", "method": "manual",
                                           "permissionProfile": "exchange-contact-sync",
                                           "directoryRole": "global-reader", "issuer": "customer"}
    assert links.request_of(links.link_parameters(role)).directory_role == "global-reader"


def test_parameters_that_no_longer_validate_name_the_field() -> None:
    with pytest.raises(RequestError) as caught:
        links.request_of({"serviceMailbox": "a@contoso.com", "permissionProfile": "retired-profile",
                          "keySize": "big"}, TENANT)
    assert {p["field"] for p in caught.value.problems} == {"permissionProfile", "certificate.keySize"}


# -- the signature ---------------------------------------------------------------------------------------------

PARAMS = {"tenantId": TENANT, "serviceMailbox": "a@contoso.com", "method": "automatic",
          "permissionProfile": "exchange-contact-sync", "directoryRole": "exchange-administrator"}


def test_a_signed_link_reads_back_and_names_its_key_version() -> None:
    query = signed(PARAMS)
    assert links.sig_version(query) == KEY.version
    assert links.check_link(query, keys(KEY), now=NOW)["e"] == NOW + 3600
    # Parameters that are not the link's carry no meaning (a mail client's tracking): they change nothing.
    assert links.check_link({**query, "utm_source": "mail"}, keys(KEY), now=NOW)


@pytest.mark.parametrize("change", [
    {"serviceMailbox": "b@contoso.com"}, {"tenantId": "00000000-0000-0000-0000-000000000001"},
    {"method": "manual"}, {"directoryRole": "none"}, {"validityMonths": "1"}, {"serviceMailbox": "A@contoso.com"}])
def test_any_altered_or_added_parameter_fails_the_signature(change) -> None:
    with pytest.raises(links.Rejected) as caught:
        links.check_link({**signed(PARAMS), **change}, keys(KEY), now=NOW)
    assert caught.value.reason == "altered"


def test_a_removed_parameter_fails_the_signature() -> None:
    query = signed(PARAMS)
    del query["tenantId"]  # a link for one tenant made into a link for any
    with pytest.raises(links.Rejected, match="altered"):
        links.check_link(query, keys(KEY), now=NOW)


def test_forged_expired_retired_and_missing_signatures_are_told_apart() -> None:
    query = signed(PARAMS)
    sig = query["sig"]
    cases = {
        "forged": {**query, "sig": sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")},
        "retired": signed(PARAMS, key=NEXT),
        "missing": {k: v for k, v in query.items() if k != "sig"},
        "malformed": {**query, "sig": "not-a-token"},
    }
    for reason, case in cases.items():
        with pytest.raises(links.Rejected) as caught:
            links.check_link(case, keys(KEY), now=NOW)
        assert caught.value.reason == reason
    with pytest.raises(links.Rejected, match="expired"):
        links.check_link(query, keys(KEY), now=NOW + 3600)
    with pytest.raises(links.Rejected, match="malformed"):
        links.sig_version(cases["malformed"])


def test_a_link_of_the_previous_key_version_verifies_while_that_version_is_accepted() -> None:
    old = signed(PARAMS, key=KEY)
    assert links.check_link(old, keys(NEXT, KEY), now=NOW)       # after one rotation
    with pytest.raises(links.Rejected, match="retired"):
        links.check_link(old, keys(NEXT), now=NOW)                # once the version after next signs


def test_the_url_carries_the_parameters_readable_in_order_then_sig() -> None:
    query = signed(PARAMS)
    url = links.link_url(BASE, PARAMS, query["sig"])
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/api/onboard"
    assert parse_qsl(parts.query) == [*PARAMS.items(), ("sig", query["sig"])]
    assert links.check_link(dict(parse_qsl(parts.query)), keys(KEY), now=NOW)


# -- the state ---------------------------------------------------------------------------------------------------

def test_a_state_is_signed_single_nonce_and_expires_with_its_link_at_the_latest() -> None:
    nonce = links.new_nonce()
    assert links.state_expiry(NOW + 60, now=NOW) == NOW + 60
    assert links.state_expiry(NOW + 86400, now=NOW) == NOW + links.STATE_SECONDS
    state = links.make_state(KEY, nonce, NOW + 60)
    assert links.state_claims(state) == (KEY.version, links.STATE_PURPOSE, nonce)
    assert links.check_state(state, keys(KEY), links.STATE_PURPOSE, nonce, now=NOW)["s"] == nonce
    with pytest.raises(links.Rejected, match="expired"):
        links.check_state(state, keys(KEY), links.STATE_PURPOSE, nonce, now=NOW + 60)


def test_a_tampered_or_foreign_state_is_refused() -> None:
    nonce = links.new_nonce()
    state = links.make_state(KEY, nonce, NOW + 60)
    version, payload, mac = state.split(".")
    other = links.make_state(KEY, links.new_nonce(), NOW + 60).split(".")[1]
    with pytest.raises(links.Rejected, match="forged"):  # another nonce's payload under this MAC
        links.check_state(f"{version}.{other}.{mac}", keys(KEY), links.STATE_PURPOSE,
                          links.state_claims(f"{version}.{other}.{mac}")[2], now=NOW)
    status = make_token(KEY, "status", f"{TENANT}.0123456789abcdef0123", NOW + 60)
    with pytest.raises(links.Rejected, match="altered"):  # a status token is no state
        links.state_claims(status)
    for garbage in ("", "a.b", "x" * 40, f"{version}.!!.{mac}", f"{version}.{payload}"):
        with pytest.raises(links.Rejected):
            links.state_claims(garbage)


def test_the_verifier_state_is_the_same_all_day_and_names_the_tenant() -> None:
    morning = links.verifier_state(KEY, TENANT.upper(), 7, now=NOW - NOW % 86400 + 60)
    evening = links.verifier_state(KEY, TENANT, 7, now=NOW - NOW % 86400 + 86000)
    assert morning == evening
    assert links.verifier_state(KEY, TENANT, 7, now=NOW - NOW % 86400 + 86400 + 60) != morning
    assert links.state_claims(morning) == (KEY.version, links.VERIFIER_PURPOSE, TENANT)
    payload = links.check_state(morning, keys(KEY), links.VERIFIER_PURPOSE, TENANT, now=NOW)
    assert payload["e"] - NOW > 7 * 86400


# -- Entra's admin-consent URL ---------------------------------------------------------------------------------

def test_the_consent_url_asks_entra_for_the_method_s_app_in_the_link_s_tenant_or_any() -> None:
    url = links.admin_consent_redirect(SETTINGS, BASE, PARAMS, "the-state")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"https://login.microsoftonline.com/{TENANT}/v2.0/adminconsent"
    assert parse_qs(parts.query) == {"client_id": [SETTINGS.provisioner_client_id],
                                     "scope": ["https://graph.microsoft.com/.default"],
                                     "redirect_uri": [f"{BASE}/api/onboard/callback"], "state": ["the-state"]}
    manual = urlsplit(links.admin_consent_redirect(SETTINGS, BASE, {"method": "manual"}, "s"))
    assert manual.path == "/organizations/v2.0/adminconsent"
    assert parse_qs(manual.query)["client_id"] == [SETTINGS.verifier_client_id]


def test_links_need_the_public_base_url_and_say_so() -> None:
    assert links.public_base(SETTINGS) == BASE
    with pytest.raises(SettingsError, match="CERTAUTH_PUBLIC_BASE_URL is required for onboarding links"):
        links.public_base(Settings())


def test_the_mailbox_domain_is_checked_against_the_verified_domains() -> None:
    assert links.domain_warnings("a@Contoso.com", ["contoso.com", "contoso.onmicrosoft.com"]) == []
    [warning] = links.domain_warnings("a@fabrikam.com", ["contoso.com"])
    assert warning["code"] == "MailboxDomainNotVerified"
    assert "fabrikam.com" in warning["message"]
    assert links.domain_warnings("a@contoso.com", None)[0]["code"] == "VerifiedDomainsNotRead"


def test_tenant_ids_from_entra_must_be_guids() -> None:
    assert links.is_guid(TENANT)
    assert links.is_guid(TENANT.upper())
    assert not any(links.is_guid(v) for v in (None, "", "contoso.com", "00000000-0000-0000-0000-000000000000",
                                              f"{TENANT}x"))


# -- POST /api/onboarding-links without a signing key: its configuration and validation answers --------------------

@pytest.fixture
def environment(monkeypatch):
    """The product's settings from this test's environment (cached settings cleared before and after)."""
    for name in ("CERTAUTH_PUBLIC_BASE_URL", "CERTAUTH_PROVISIONER_CLIENT_ID", "CERTAUTH_VERIFIER_CLIENT_ID",
                 "CERTAUTH_ALLOW_EXPORTABLE_KEYS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def post(body: dict, host: str = "certauth.contoso.com") -> func.HttpResponse:
    request = func.HttpRequest("POST", f"https://{host}/api/onboarding-links", headers={"Host": host},
                               body=json.dumps(body).encode())
    return asyncio.run(routes.make_link(request))


def test_without_the_public_base_url_no_link_is_made(environment) -> None:
    environment.setenv("CERTAUTH_PROVISIONER_CLIENT_ID", SETTINGS.provisioner_client_id)
    answer = post({"serviceMailbox": "a@contoso.com", "expiresInHours": 1})
    assert answer.status_code == 500
    error = json.loads(answer.get_body())["error"]
    assert error["code"] == "PublicBaseUrlNotConfigured"
    assert "CERTAUTH_PUBLIC_BASE_URL" in error["message"]


def test_a_method_without_its_app_or_a_forbidden_export_is_refused_before_signing(environment) -> None:
    environment.setenv("CERTAUTH_PUBLIC_BASE_URL", BASE)
    answer = post({"serviceMailbox": "a@contoso.com", "method": "manual", "certificate": {"exportable": True},
                   "expiresInHours": 1})
    assert answer.status_code == 400
    details = {d["target"]: d["message"] for d in json.loads(answer.get_body())["error"]["details"]}
    assert set(details) == {"method", "certificate.exportable"}
    assert "CERTAUTH_VERIFIER_CLIENT_ID" in details["method"]
    pfx = post({"serviceMailbox": "a@contoso.com", "certificate": {"pfx": "MIIB", "password": "p"},
                "expiresInHours": 1})
    assert pfx.status_code == 400
    assert [d["target"] for d in json.loads(pfx.get_body())["error"]["details"]] == ["certificate.pfx",
                                                                                   "certificate.password"]


def test_an_html_route_answers_a_missing_setting_with_a_page_not_a_trace(environment) -> None:
    async def broken(req):
        links.public_base(get_settings())

    page = asyncio.run(routes._pages(broken)(None))
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    text = page.get_body().decode()
    assert "CERTAUTH_PUBLIC_BASE_URL" in text
    assert "Nothing was started" in text
    assert "Traceback" not in text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
