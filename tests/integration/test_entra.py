"""Entra ID in the simulator, driven through azure-identity: secrets, managed identity, admin consent."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _secret_credential(simulator, tenant_ref: str, identity: dict, secret: str | None = None):
    return ClientSecretCredential(tenant_ref, identity["clientId"], secret or identity["clientSecret"],
                                  authority=simulator.info["authorityHost"], disable_instance_discovery=True)


def test_client_secret_token_carries_granted_roles(simulator, customer):
    simulator.grant(customer["tenantId"], ["Organization.Read.All", "Application.Read.All"])
    try:
        token = _secret_credential(simulator, customer["tenantId"], customer["provisioner"]).get_token(GRAPH_SCOPE)
        claims = _claims(token.token)
        assert claims["roles"] == ["Application.Read.All", "Organization.Read.All"]
        assert claims["tid"] == customer["tenantId"]
        assert claims["appid"] == customer["provisioner"]["clientId"]
        assert claims["oid"] == customer["provisioner"]["servicePrincipalId"]
        assert claims["aud"] == "https://graph.microsoft.com"
    finally:
        simulator.grant(customer["tenantId"], simulator.info["defaultProvisionerRoles"])


def test_tenant_can_be_named_by_domain(simulator, customer):
    token = _secret_credential(simulator, customer["domain"], customer["provisioner"]).get_token(GRAPH_SCOPE)
    assert _claims(token.token)["tid"] == customer["tenantId"]


def test_wrong_secret_is_refused_with_aadsts7000215(simulator, customer):
    credential = _secret_credential(simulator, customer["tenantId"], customer["provisioner"], secret="nope")
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(GRAPH_SCOPE)


def test_unknown_tenant_is_refused_with_aadsts90002(simulator, customer):
    unknown = "00000000-0000-0000-0000-00000000beef"
    credential = _secret_credential(simulator, unknown, customer["provisioner"])
    # MSAL stops at discovery, as it does against Entra, whose discovery answers AADSTS90002.
    with pytest.raises(ClientAuthenticationError, match="Unable to get authority configuration"):
        credential.get_token(GRAPH_SCOPE)
    url = f"{simulator.info['loginUrl']}/{unknown}/v2.0/.well-known/openid-configuration"
    context = ssl.create_default_context(cafile=simulator.info["caBundle"])
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, context=context)
    assert caught.value.code == 400
    body = json.loads(caught.value.read())
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]


def test_app_of_another_tenant_is_not_found_with_aadsts700016(simulator, home, customer):
    credential = _secret_credential(simulator, customer["tenantId"], home["provisioner"])
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        credential.get_token(GRAPH_SCOPE)


def test_unknown_resource_is_refused_with_aadsts500011(simulator, customer):
    credential = _secret_credential(simulator, customer["tenantId"], customer["provisioner"])
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        credential.get_token("https://nothing.example/.default")


def test_managed_identity_endpoint_gives_the_provisioner_a_token(simulator, home, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", simulator.info["identityEndpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", simulator.info["identityHeader"])
    token = ManagedIdentityCredential().get_token(GRAPH_SCOPE)
    claims = _claims(token.token)
    assert claims["tid"] == home["tenantId"]
    assert claims["oid"] == home["managedIdentity"]["principalId"]
    assert set(simulator.info["defaultProvisionerRoles"]) == set(claims["roles"])


def test_managed_identity_endpoint_refuses_a_wrong_header(simulator, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", simulator.info["identityEndpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(GRAPH_SCOPE)


def _follow_consent(simulator, tenant_id: str, client_id: str, redirect_uri: str, state: str):
    query = urllib.parse.urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "state": state})
    request = urllib.request.Request(f"{simulator.info['loginUrl']}/{tenant_id}/adminconsent?{query}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=simulator.info["caBundle"])))
    try:
        response = opener.open(request)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location"), exc.read().decode()
    return response.status, None, response.read().decode()


def test_admin_consent_redirects_and_grants_the_multi_tenant_app(simulator, home, customer):
    app = home["consentApp"]
    redirect = "http://127.0.0.1:7071/api/onboard/callback"  # loopback: any port matches the registration
    state = simulator.tenant_state(customer["tenantId"])
    before = state["counts"]
    # Another test may have consented already; consent then adds nothing.
    existed = any(sp["appId"] == app["clientId"] for sp in state["servicePrincipals"])
    status, location, _ = _follow_consent(simulator, customer["tenantId"], app["clientId"], redirect, "s-1")
    assert status == 302
    parsed = urllib.parse.urlsplit(location)
    assert location.startswith(redirect + "?")
    assert dict(urllib.parse.parse_qsl(parsed.query)) == {
        "admin_consent": "True", "tenant": customer["tenantId"], "state": "s-1"}
    after = simulator.tenant_state(customer["tenantId"])["counts"]
    assert after["servicePrincipals"] == before["servicePrincipals"] + (0 if existed else 1)
    sp = next(sp for sp in simulator.tenant_state(customer["tenantId"])["servicePrincipals"]
              if sp["appId"] == app["clientId"])
    assert sp["appOwnerOrganizationId"] == home["tenantId"]
    token = ClientSecretCredential(customer["tenantId"], app["clientId"], app["clientSecret"],
                                   authority=simulator.info["authorityHost"],
                                   disable_instance_discovery=True).get_token(GRAPH_SCOPE)
    assert set(_claims(token.token)["roles"]) == set(simulator.info["defaultProvisionerRoles"])
    # A second consent adds nothing.
    _follow_consent(simulator, customer["tenantId"], app["clientId"], redirect, "s-2")
    assert simulator.tenant_state(customer["tenantId"])["counts"] == after


def test_admin_consent_refuses_an_unregistered_redirect_uri(simulator, home, customer):
    status, location, body = _follow_consent(simulator, customer["tenantId"], home["consentApp"]["clientId"],
                                             "https://evil.example/callback", "s")
    assert status == 400
    assert location is None
    assert "AADSTS50011" in body


def test_declined_consent_redirects_with_access_denied(simulator, home, customer):
    simulator.admin("PUT", "/consent", {"decision": "decline"})
    try:
        status, location, _ = _follow_consent(simulator, customer["tenantId"], home["consentApp"]["clientId"],
                                              "http://127.0.0.1/api/onboard/callback", "s")
    finally:
        simulator.admin("PUT", "/consent", {"decision": "accept"})
    assert status == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["error"] == "access_denied"
    assert query["state"] == "s"


def test_clock_moves_forward_only(simulator):
    before = simulator.admin("GET", "/clock")
    after = simulator.advance_clock(60)
    assert after["offsetSeconds"] == pytest.approx(before["offsetSeconds"] + 60)
    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.advance_clock(-1)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"].startswith("advanceSeconds")


def test_managed_identity_federates_into_the_multi_tenant_app(simulator, home, customer, monkeypatch):
    """Workload identity federation: the home managed identity's token for api://AzureADTokenExchange is the
    client assertion of the consent app, in any tenant that consented to it; no secret involved."""
    from azure.identity import ClientAssertionCredential

    monkeypatch.setenv("IDENTITY_ENDPOINT", simulator.info["identityEndpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", simulator.info["identityHeader"])
    managed = ManagedIdentityCredential()
    exchange = managed.get_token("api://AzureADTokenExchange/.default")
    assert _claims(exchange.token)["sub"] == home["managedIdentity"]["principalId"]
    credential = ClientAssertionCredential(home["tenantId"], home["consentApp"]["clientId"],
                                           lambda: managed.get_token("api://AzureADTokenExchange/.default").token,
                                           authority=simulator.info["authorityHost"])
    claims = _claims(credential.get_token(GRAPH_SCOPE).token)
    assert claims["appid"] == home["consentApp"]["clientId"]
    assert claims["tid"] == home["tenantId"]


def test_a_foreign_token_is_no_federated_assertion(simulator, home, customer):
    """The provisioner's own access token (wrong audience, wrong subject) matches no federated credential."""
    from azure.identity import ClientAssertionCredential

    other = _secret_credential(simulator, home["tenantId"], home["provisioner"]).get_token(GRAPH_SCOPE).token
    credential = ClientAssertionCredential(home["tenantId"], home["consentApp"]["clientId"], lambda: other,
                                           authority=simulator.info["authorityHost"])
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        credential.get_token(GRAPH_SCOPE)


# -- token claims per version, discovery, admin consent v2 / organizations ---------------------------------

def _get_json(simulator, path: str) -> dict:
    context = ssl.create_default_context(cafile=simulator.info["caBundle"])
    with urllib.request.urlopen(f"{simulator.info['loginUrl']}{path}", context=context) as response:
        return json.loads(response.read())


def _open(simulator, path: str):
    """GET a login URL without following redirects: (status, Location, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=simulator.info["caBundle"])))
    try:
        response = opener.open(f"{simulator.info['loginUrl']}{path}")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location"), exc.read().decode()
    return response.status, None, response.read().decode()


def test_a_client_secret_token_is_v1_with_appidacr_1(simulator, customer):
    claims = _claims(_secret_credential(simulator, customer["tenantId"], customer["provisioner"])
                     .get_token(GRAPH_SCOPE).token)
    assert claims["ver"] == "1.0"
    assert claims["iss"] == f"https://sts.windows.net/{customer['tenantId']}/"
    assert claims["appidacr"] == "1"  # 0 public client, 1 client secret, 2 certificate (claims reference)
    assert not {"azp", "azpacr"} & set(claims)  # v2.0 claims


def test_the_token_exchange_token_is_v2_with_azp(simulator, home, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", simulator.info["identityEndpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", simulator.info["identityHeader"])
    claims = _claims(ManagedIdentityCredential().get_token("api://AzureADTokenExchange/.default").token)
    assert claims["ver"] == "2.0"
    assert claims["iss"].endswith("/v2.0")
    assert claims["azp"] == home["managedIdentity"]["clientId"]
    assert not {"appid", "appidacr"} & set(claims)


@pytest.mark.parametrize("alias", ["common", "organizations", "consumers"])
def test_discovery_for_the_multi_tenant_authorities(simulator, alias):
    document = _get_json(simulator, f"/{alias}/v2.0/.well-known/openid-configuration")
    login = simulator.info["loginUrl"]
    assert document["token_endpoint"] == f"{login}/{alias}/oauth2/v2.0/token"
    assert document["authorization_endpoint"] == f"{login}/{alias}/oauth2/v2.0/authorize"
    expected_tenant = "9188040d-6c67-4c5b-b112-36a304b66dad" if alias == "consumers" else "{tenantid}"
    assert document["issuer"] == f"{login}/{expected_tenant}/v2.0"
    assert _get_json(simulator, f"/{alias}/discovery/v2.0/keys")["keys"]


def test_client_credentials_on_common_is_refused_with_aadsts9001023(simulator, customer):
    credential = _secret_credential(simulator, "common", customer["provisioner"])
    with pytest.raises(ClientAuthenticationError, match="AADSTS9001023"):
        credential.get_token(GRAPH_SCOPE)


def _consent_query(app: dict, redirect: str, state: str, scope: str | None = "https://graph.microsoft.com/.default"):
    params = {"client_id": app["clientId"], "redirect_uri": redirect, "state": state}
    if scope is not None:
        params["scope"] = scope
    return urllib.parse.urlencode(params)


def _redirect_query(location: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


REDIRECT = "http://127.0.0.1/api/onboard/callback"


def test_v2_admin_consent_grants_the_required_permissions_and_echoes_the_scope(simulator, home, customer):
    app = home["consentApp"]
    status, location, _ = _open(simulator, f"/{customer['tenantId']}/v2.0/adminconsent?"
                                           + _consent_query(app, REDIRECT, "v2-1"))
    assert status == 302
    assert location.startswith(REDIRECT + "?")
    assert _redirect_query(location) == {"admin_consent": "True", "tenant": customer["tenantId"],
                                         "scope": "https://graph.microsoft.com/.default", "state": "v2-1"}
    token = ClientSecretCredential(customer["tenantId"], app["clientId"], app["clientSecret"],
                                   authority=simulator.info["authorityHost"],
                                   disable_instance_discovery=True).get_token(GRAPH_SCOPE)
    assert set(_claims(token.token)["roles"]) == set(simulator.info["defaultProvisionerRoles"])


def test_v2_admin_consent_needs_a_scope(simulator, home, customer):
    status, location, _ = _open(simulator, f"/{customer['tenantId']}/v2.0/adminconsent?"
                                           + _consent_query(home["consentApp"], REDIRECT, "s", scope=None))
    assert status == 302
    query = _redirect_query(location)
    assert query["admin_consent"] == "True"
    assert query["error"] == "invalid_request"
    assert query["error_description"].startswith("AADSTS900144")
    assert query["state"] == "s"


def test_v2_declined_consent_says_consent_required(simulator, home, customer):
    simulator.admin("PUT", "/consent", {"decision": "decline"})
    try:
        status, location, _ = _open(simulator, f"/{customer['tenantId']}/v2.0/adminconsent?"
                                               + _consent_query(home["consentApp"], REDIRECT, "s"))
    finally:
        simulator.admin("PUT", "/consent", {"decision": "accept"})
    assert status == 302
    query = _redirect_query(location)
    assert (query["admin_consent"], query["error"]) == ("True", "consent_required")
    assert query["error_description"].startswith("AADSTS65004")


@pytest.mark.parametrize("path", ["/organizations/v2.0/adminconsent", "/organizations/adminconsent"])
def test_organizations_consent_names_the_tenant_the_administrator_signed_in_to(simulator, home, customer, path):
    chosen = customer
    assert simulator.admin("PUT", "/consent", {"tenant": chosen["domain"]})["tenant"] == chosen["tenantId"]
    try:
        status, location, _ = _open(simulator, f"{path}?" + _consent_query(home["consentApp"], REDIRECT, "org"))
    finally:
        simulator.admin("PUT", "/consent", {"tenant": None})
    assert status == 302
    query = _redirect_query(location)
    assert query["admin_consent"] == "True"
    assert query["tenant"] == chosen["tenantId"]
    assert query["state"] == "org"
    state = simulator.tenant_state(chosen["tenantId"])
    assert any(sp["appId"] == home["consentApp"]["clientId"] for sp in state["servicePrincipals"])


def test_organizations_consent_without_a_signed_in_tenant_is_an_error_page(simulator, home):
    status, location, body = _open(simulator, "/organizations/v2.0/adminconsent?"
                                              + _consent_query(home["consentApp"], REDIRECT, "s"))
    assert (status, location) == (400, None)
    assert "PUT /_sandbox/consent" in body


def test_the_consent_setting_refuses_an_unknown_tenant(simulator):
    with pytest.raises(urllib.error.HTTPError) as caught:
        simulator.admin("PUT", "/consent", {"tenant": "nowhere.example"})
    assert caught.value.code == 400
    assert simulator.admin("PUT", "/consent", {"decision": "accept"})["decision"] == "accept"


# -- instance discovery (MSAL's authority validation and aliases) and the Azure Resource Manager resource ------

ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
ENTRA_WORLDWIDE = {"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
                   "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com",
                               "sts.windows.net"]}


def _discovery(simulator, authorization_endpoint: str, api_version: str = "1.1"):
    """GET /common/discovery/instance on the simulator's login origin: (status, headers, JSON body)."""
    query = urllib.parse.urlencode({"api-version": api_version, "authorization_endpoint": authorization_endpoint})
    context = ssl.create_default_context(cafile=simulator.info["caBundle"])
    try:
        with urllib.request.urlopen(f"{simulator.info['loginUrl']}/common/discovery/instance?{query}",
                                    context=context) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def test_instance_discovery_answers_entra_s_alias_groups(simulator):
    """MSAL Python's alias lookup (api-version 1.1, the v1 authorize endpoint of common): Entra's groups, the
    v1 document of the tenant named, and the simulator's own origin as a cloud of its own."""
    status, headers, body = _discovery(simulator, "https://login.microsoftonline.com/common/oauth2/authorize")
    assert status == 200
    assert body["tenant_discovery_endpoint"] == "https://login.microsoftonline.com/common/.well-known/openid-configuration"
    assert body["api-version"] == "1.1"
    assert body["metadata"][0] == ENTRA_WORLDWIDE
    assert len(body["metadata"]) == 6  # Entra's five clouds and the sandbox's origin
    loopback = urllib.parse.urlsplit(simulator.info["loginUrl"]).netloc
    assert body["metadata"][-1] == {"preferred_network": loopback, "preferred_cache": loopback, "aliases": [loopback]}
    assert headers["Cache-Control"] == "max-age=86400, private"


def test_instance_discovery_echoes_a_v2_authority_and_its_document_exists(simulator, customer):
    tenant, login = customer["tenantId"], simulator.info["loginUrl"]
    status, _, body = _discovery(simulator, f"{login}/{tenant}/oauth2/v2.0/authorize")
    assert status == 200
    assert body["tenant_discovery_endpoint"] == f"{login}/{tenant}/v2.0/.well-known/openid-configuration"
    document = _get_json(simulator, f"/{tenant}/v2.0/.well-known/openid-configuration")
    assert document["token_endpoint"] == f"{login}/{tenant}/oauth2/v2.0/token"


@pytest.mark.parametrize("endpoint", ["https://login.contoso.example/common/oauth2/v2.0/authorize",
                                      "http://login.microsoftonline.com/common/oauth2/authorize",
                                      "https://login.microsoftonline.com/common/saml2"])
def test_instance_discovery_of_an_unknown_authority_is_invalid_instance(simulator, endpoint):
    status, _, body = _discovery(simulator, endpoint)
    assert status == 400
    assert body["error"] == "invalid_instance"
    assert body["error_codes"] == [50049]
    assert body["error_description"].startswith("AADSTS50049: Unknown or invalid instance.")
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=50049"


@pytest.fixture(scope="module")
def login_proxy(simulator):
    """The intercepting proxy with login.microsoftonline.com mapped to the simulator (as tests/azcli use it)."""
    from pathlib import Path

    from sandbox.intercept import InterceptProxy

    info = simulator.info
    with InterceptProxy({"login.microsoftonline.com": info["loginUrl"]}, Path(info["caBundle"]).parent) as proxy:
        yield proxy


def test_msal_on_the_real_authority_does_what_az_login_does(simulator, home, login_proxy):
    """MSAL Python on https://login.microsoftonline.com/<tenant> (through the proxy), as `az login
    --service-principal` drives it: remove_tokens_for_client() asks instance discovery for the aliases, then a
    token for Azure Resource Manager (the CLI's first scope); nothing leaves the sandbox."""
    import msal
    import requests

    session = requests.Session()
    session.trust_env = False  # the proxy below, never a NO_PROXY of this environment
    session.proxies = {"https": login_proxy.url}
    session.verify = simulator.info["caBundle"]
    start = len(login_proxy.log)
    app = msal.ConfidentialClientApplication(
        home["provisioner"]["clientId"], client_credential=home["provisioner"]["clientSecret"],
        authority=f"https://login.microsoftonline.com/{home['tenantId']}", http_client=session)
    app.remove_tokens_for_client()  # raises if instance discovery fails
    assert app.authority_groups["login.microsoftonline.com"][0] == set(ENTRA_WORLDWIDE["aliases"])
    result = app.acquire_token_for_client(["https://management.core.windows.net//.default"])
    assert "access_token" in result, result
    claims = _claims(result["access_token"])
    assert claims["aud"] == "https://management.core.windows.net/"
    assert claims["tid"] == home["tenantId"]
    assert "roles" not in claims  # the provisioner holds no ARM application permissions
    decisions = login_proxy.log[start:]
    assert decisions
    assert all(d.action in ("intercepted", "tunnelled") for d in decisions), decisions


def test_every_tenant_has_the_azure_service_management_principal(simulator, customer):
    arm = [sp for sp in simulator.tenant_state(customer["tenantId"])["servicePrincipals"] if sp["appId"] == ARM_APP_ID]
    assert len(arm) == 1
    assert arm[0]["displayName"] == "Windows Azure Service Management API"
    assert {"https://management.core.windows.net/", "https://management.azure.com/"} <= set(
        arm[0]["servicePrincipalNames"])
    assert arm[0]["appOwnerOrganizationId"] == "f8cdef31-a31e-4b4a-93e4-5f571e91255a"


def test_a_token_for_resource_manager_names_the_resource_as_asked(simulator, customer):
    claims = _claims(_secret_credential(simulator, customer["tenantId"], customer["provisioner"])
                     .get_token("https://management.azure.com/.default").token)
    assert claims["aud"] == "https://management.azure.com"
    assert claims["appid"] == customer["provisioner"]["clientId"]
    assert "roles" not in claims


def test_request_log_says_who_asked(simulator, customer):
    """Each logged request names a token request's grant type and whether a bearer token was app-only: what the
    onboarding-link test reads to show that the product never holds a user's token."""
    import requests

    start = simulator.requests_since(0)["next"]
    token = _secret_credential(simulator, customer["tenantId"], customer["provisioner"]).get_token(GRAPH_SCOPE)
    requests.get(f"{simulator.info['graphUrl']}/organization", headers={"Authorization": f"Bearer {token.token}"},
                 timeout=10)
    requests.get(f"{simulator.info['graphUrl']}/organization", headers={"Authorization": "Bearer x.!.y"}, timeout=10)
    records = simulator.requests_since(start)["requests"]
    assert [r["grant_type"] for r in records if r["path"].endswith("/oauth2/v2.0/token")] == ["client_credentials"]
    graph = [r for r in records if r["origin"] == "graph"]
    assert [r["token_type"] for r in graph] == ["app", "unreadable"]
