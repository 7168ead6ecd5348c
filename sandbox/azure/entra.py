"""Entra ID: OIDC discovery, the v2.0 token endpoint (client credentials), admin consent, and the
App Service managed-identity endpoint.

Sources: learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
learn.microsoft.com/entra/identity-platform/certificate-credentials,
learn.microsoft.com/entra/identity-platform/v2-admin-consent,
learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference,
learn.microsoft.com/entra/identity-platform/reference-error-codes,
learn.microsoft.com/entra/identity-platform/v2-protocols-oidc (discovery, also for common / organizations /
consumers), learn.microsoft.com/entra/identity-platform/access-token-claims-reference (claims per version).

With replication delay on (PUT /_sandbox/faults), the token endpoint lags the directory as Entra's does: a new
service principal cannot sign in, a new certificate is not known, new grants are not in `roles` yet
(microsoft.REPLICATION_DELAY_FACTS).
"""

from __future__ import annotations

import hashlib
import html
import urllib.parse
from datetime import UTC, datetime

import jwt
from aiohttp import web

from . import microsoft as ms
from .errors import AADError
from .tokens import (
    CLIENT_CERTIFICATE,
    CLIENT_SECRET,
    TokenRejected,
    certificate_thumbprints,
    load_der_certificate,
    unverified_header,
    verify_with_certificate,
)
from .world import Tenant, World

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds of skew Entra tolerates on assertion times
MULTI_TENANT_AUDIENCES = {"AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount"}
# Workload identity federation: a managed identity's token for this audience is a client assertion for an
# app that trusts it. Source: learn.microsoft.com/entra/workload-id/
# workload-identity-federation-config-app-trust-managed-identity
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# Authority aliases that name no tenant (v2-protocols-oidc, "Find your app's OpenID configuration document URI").
MULTI_TENANT_AUTHORITIES = ("common", "organizations", "consumers")

routes = web.RouteTableDef()


def _world(request: web.Request) -> World:
    return request.app["world"]


def _login_url(request: web.Request) -> str:
    return request.app["urls"]["login"]


def _tenant_or_error(request: web.Request) -> Tenant:
    ref = request.match_info["tenant"]
    tenant = _world(request).tenant(ref)
    if tenant is None:
        raise AADError(400, "invalid_tenant", 90002,
                       f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and are "
                       "signing into the correct cloud. Check with your subscription administrator, this may "
                       "happen if there are no active subscriptions for the tenant.")
    return tenant


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@routes.get("/{tenant}/v2.0/.well-known/openid-configuration")
async def openid_configuration(request: web.Request) -> web.Response:
    """OIDC discovery; endpoints name the tenant by id even when asked by domain, as Entra does. The
    multi-tenant authorities (common, organizations, consumers) keep their alias in the endpoints; their
    issuer is a template with the literal `{tenantid}` (consumers: the Microsoft account tenant), see
    microsoft.DISCOVERY_FACTS."""
    alias = request.match_info["tenant"].lower()
    login = _login_url(request)
    if alias in MULTI_TENANT_AUTHORITIES:
        base = f"{login}/{alias}"
        issuer_tenant = ms.MSA_TENANT_ID if alias == "consumers" else "{tenantid}"
        issuer, region = f"{login}/{issuer_tenant}/v2.0", None
    else:
        tenant = _tenant_or_error(request)
        base = f"{login}/{tenant.id}"
        issuer, region = f"{base}/v2.0", "EU"
    return web.json_response({
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/openid/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "roles"],
        "tenant_region_scope": region,
        "cloud_instance_name": "sandbox.local",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    })


@routes.get("/{tenant}/discovery/v2.0/keys")
async def jwks(request: web.Request) -> web.Response:
    """The keys that sign the sandbox's tokens."""
    if request.match_info["tenant"].lower() not in MULTI_TENANT_AUTHORITIES:
        _tenant_or_error(request)
    return web.json_response(request.app["issuer"].jwks())


@routes.get("/common/discovery/instance")
async def instance_discovery(request: web.Request) -> web.Response:
    """MSAL's instance discovery (microsoft.INSTANCE_DISCOVERY_FACTS): Entra's cloud alias groups, and the OIDC
    document of the authority named by `authorization_endpoint`, if its host is one Entra knows; otherwise
    invalid_instance (AADSTS50049)."""
    endpoint = request.query.get("authorization_endpoint")
    if not endpoint:
        # UNCONFIRMED answer for this endpoint: Entra's usual one for a missing parameter (AADSTS900144).
        raise AADError(400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'authorization_endpoint'.")
    sandbox_host = urllib.parse.urlsplit(_login_url(request)).netloc.lower()
    groups = [{**group, "aliases": list(group["aliases"])} for group in ms.INSTANCE_DISCOVERY_METADATA]
    # The simulator's own loopback origin is a cloud of its own (a "self-entry" group), so an authority on it
    # validates as one on login.microsoftonline.com does.
    groups.append({"preferred_network": sandbox_host, "preferred_cache": sandbox_host, "aliases": [sandbox_host]})
    asked_host = request.host.lower()
    for group in groups:
        if asked_host in group["aliases"]:
            # Sandbox choice: the group of the host this request reached names that host as preferred_network
            # (MSAL.NET and msal-common send their requests to preferred_network), so clients stay on the
            # simulator or on the proxy's mapped name. For login.microsoftonline.com this is Entra's own value.
            group["preferred_network"] = asked_host
    parts = urllib.parse.urlsplit(endpoint)
    segments = [s for s in parts.path.split("/") if s]
    known = {alias for group in groups for alias in group["aliases"]}
    if parts.scheme != "https" or parts.netloc.lower() not in known \
            or segments[1:] not in (["oauth2", "authorize"], ["oauth2", "v2.0", "authorize"]):
        fact = ms.AADSTS_ERRORS["invalid_instance"]
        error = AADError(fact["status"], fact["error"], fact["aadsts"], fact["message"])
        error.extra = {"error_uri": f"https://login.microsoftonline.com/error?code={fact['aadsts']}"}
        raise error
    # The authorization endpoint's host and tenant are echoed; its version picks the OIDC document.
    version = "/v2.0" if segments[1:] == ["oauth2", "v2.0", "authorize"] else ""
    document = f"https://{parts.netloc}/{segments[0]}{version}/.well-known/openid-configuration"
    return web.json_response(
        {"tenant_discovery_endpoint": document, "api-version": request.query.get("api-version", "1.1"),
         "metadata": groups},
        headers={"Cache-Control": ms.INSTANCE_DISCOVERY_FACTS["cache_control"]})


def resolve_resource(tenant: Tenant, identifier: str) -> tuple[dict, str] | None:
    """The resource service principal named by a scope's resource part, and the token audience."""
    wanted = identifier.rstrip("/").lower()
    for sp in tenant.service_principals.values():
        names = [sp["appId"], *sp.get("servicePrincipalNames", [])]
        if any(n.rstrip("/").lower() == wanted for n in names):
            if sp["appId"] in ms.AUDIENCE_AS_REQUESTED and identifier.lower().startswith("https://"):
                return sp, identifier
            if sp["appId"] in ms.TOKEN_AUDIENCE:
                return sp, ms.TOKEN_AUDIENCE[sp["appId"]]
            uris = [n for n in sp.get("servicePrincipalNames", []) if n.startswith("https://")]
            return sp, (uris[0].rstrip("/") if uris else sp["appId"])
    return None


def _scope_resource(scope: str | None, tenant: Tenant) -> tuple[dict, str]:
    if not scope:
        raise AADError(400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'scope'.")
    scopes = scope.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise AADError(400, "invalid_scope", 1002012,
                       f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                       "scope value with /.default suffixed to the resource identifier (application ID URI).")
    identifier = scopes[0][: -len("/.default")]
    found = resolve_resource(tenant, identifier)
    if found is None:
        raise AADError(400, "invalid_resource", 500011,
                       f"The resource principal named {identifier} was not found in the tenant named "
                       f"{tenant.display_name}. This can happen if the application has not been installed by "
                       "the administrator of the tenant or consented to by any user in the tenant. You might "
                       "have sent your authentication request to the wrong tenant.")
    return found


def _client_not_found(client_id: str, tenant: Tenant) -> AADError:
    return AADError(400, "unauthorized_client", 700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{tenant.display_name}'. This can happen if the application has not been installed by the "
                    "administrator of the tenant or consented to by any user in the tenant. You may have sent "
                    "your authentication request to the wrong tenant.")


def _missing_service_principal(client_id: str, tenant: Tenant) -> AADError:
    # The app is registered in this tenant but has no service principal here (or the new one has not replicated
    # to the token service yet): microsoft.AADSTS_ERRORS["missing_service_principal"].
    fact = ms.AADSTS_ERRORS["missing_service_principal"]
    return AADError(fact["status"], fact["error"], fact["aadsts"],
                    fact["message"].format(client_id=client_id, tenant_id=tenant.id))


def _check_secret(world: World, app_home: Tenant, app: dict, secret: str) -> None:
    now = world.clock.epoch()
    for stored in app_home.client_secrets.get(app["id"], []):
        end = _parse_time(stored.get("endDateTime"))
        if stored["secretText"] == secret and (end is None or now < end):
            return
    raise AADError(401, "invalid_client", 7000215,
                   "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                   f"secret value, not the client secret ID, for a secret added to app '{app['appId']}'.")


def check_client_assertion(world: World, app: dict, assertion: str, expected_audiences: set[str]) -> None:
    """Validate a certificate client assertion against the app's keyCredentials on the sandbox clock."""
    client_id = app["appId"]
    try:
        header = unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise AADError(401, "invalid_client", 50027,
                       "JWT token is invalid or malformed.") from exc
    if header.get("alg") not in ("RS256", "PS256"):
        raise AADError(401, "invalid_client", 5002738,
                       f"Invalid JWT token. '{header.get('alg')}' is not a supported signature algorithm. "
                       "Supported signing algorithms are: 'RS256,RS384,RS512,PS256,PS384,PS512'")
    presented_s256 = (header.get("x5t#S256") or "").rstrip("=")
    presented_s1 = (header.get("x5t") or "").rstrip("=")
    if not presented_s256 and not presented_s1:
        raise AADError(401, "invalid_client", 700027,
                       "Client assertion failed signature validation. [Reason - The key was not found.]")
    presented = presented_s256 or presented_s1
    thumb_hex = _hex_thumbprint(presented)
    match = None
    for credential in app.get("keyCredentials", []):
        if credential.get("type") != "AsymmetricX509Cert" or not credential.get("_der"):
            continue
        s1, s256 = certificate_thumbprints(credential["_der"])
        if (presented_s256 and presented_s256 == s256) or (not presented_s256 and presented_s1 == s1):
            match = credential
            break
    found = world.home_application(client_id)
    if match is not None and found is not None and not world.key_credential_replicated(found[0], app, match):
        match = None  # a key added a moment ago has not reached the token service yet ("keyCredential" delay)
    if match is None:
        raise AADError(401, "invalid_client", 700027,
                       "The certificate with identifier used to sign the client assertion is not registered on "
                       f"application. [Reason - The key was not found., Thumbprint of key used by client: "
                       f"'{thumb_hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to "
                       f"see configured keys for app Id '{client_id}'. Review the documentation at "
                       "https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding "
                       "service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view="
                       "graph-rest-1.0&tabs=http to build a query request URL, such as "
                       f"'https://graph.microsoft.com/beta/applications/{app['id']}']")
    now = world.clock.epoch()
    start, end = _parse_time(match.get("startDateTime")), _parse_time(match.get("endDateTime"))
    if end is not None and now >= end:
        raise AADError(401, "invalid_client", 700027,
                       "Client assertion contains an invalid signature. [Reason - The key used is expired., "
                       f"Thumbprint of key used by client: '{thumb_hex}', Found key 'Start="
                       f"{match.get('startDateTime')}, End={match.get('endDateTime')}']")
    if start is not None and now + CLOCK_SKEW < start:
        raise AADError(401, "invalid_client", 700027,
                       "Client assertion contains an invalid signature. [Reason - The key is not yet valid., "
                       f"Thumbprint of key used by client: '{thumb_hex}']")
    try:
        claims = verify_with_certificate(assertion, load_der_certificate(match["_der"]))
    except jwt.PyJWTError as exc:
        raise AADError(401, "invalid_client", 700027,
                       "Client assertion contains an invalid signature. [Reason - The provided signature value "
                       f"did not match the expected signature value., Thumbprint of key used by client: "
                       f"'{thumb_hex}']") from exc
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AADError(401, "invalid_client", 700021,
                       "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
                       "documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                       "active-directory-certificate-credentials .")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if not any(a in expected_audiences for a in audiences):
        fact = ms.AADSTS_ERRORS["assertion_audience_invalid"]
        raise AADError(fact["status"], fact["error"], fact["aadsts"], fact["message"])
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if exp is None or now - CLOCK_SKEW >= exp or (nbf is not None and now + CLOCK_SKEW < nbf):
        raise AADError(401, "invalid_client", 700024,
                       f"Client assertion is not within its valid time range. Current time: "
                       f"{datetime.fromtimestamp(now, tz=UTC).isoformat()}, assertion valid from {nbf}, "
                       f"expiry time of assertion {exp}.")


def _hex_thumbprint(b64url: str) -> str:
    from .tokens import b64url_decode
    try:
        return b64url_decode(b64url).hex().upper()
    except ValueError:
        return b64url


@routes.post("/{tenant}/oauth2/v2.0/token")
async def token(request: web.Request) -> web.Response:
    """Client-credentials grant with a client secret or a certificate client assertion."""
    world = _world(request)
    if request.match_info["tenant"].lower() in ("common", "consumers"):
        fact = ms.AADSTS_ERRORS["grant_not_supported_on_alias"]
        raise AADError(fact["status"], fact["error"], fact["aadsts"], fact["message"])
    tenant = _tenant_or_error(request)
    form = await request.post()
    grant_type = form.get("grant_type")
    if grant_type != "client_credentials":
        raise AADError(400, "unsupported_grant_type", 70003,
                       f"The app requested an unsupported grant type '{grant_type}'.")
    client_id = form.get("client_id")
    if not client_id:
        raise AADError(400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'client_id'.")
    resource_sp, audience = _scope_resource(form.get("scope"), tenant)
    home = world.home_application(client_id)
    if home is None:
        raise _client_not_found(client_id, tenant)
    app_home, app = home
    client_sp = tenant.service_principal_by_app_id(client_id)
    if client_sp is None or not world.is_replicated(tenant, client_sp["id"], "servicePrincipal"):
        # In the app's home tenant Entra names the missing service principal; elsewhere the app was never
        # consented to (or its consent has not replicated yet).
        raise _missing_service_principal(client_id, tenant) if app_home.id == tenant.id \
            else _client_not_found(client_id, tenant)
    if not client_sp.get("accountEnabled", True):
        raise AADError(400, "unauthorized_client", 7000112,
                       f"Application '{client_id}'({app.get('displayName')}) is disabled.")
    if "client_assertion" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise AADError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'client_assertion_type'.")
        issuer = request.app["issuer"]
        if _header_kid(form["client_assertion"]) == issuer.kid:
            check_federated_assertion(world, issuer, app, form["client_assertion"])
            # azpacr/appidacr for a federated credential: UNCONFIRMED (a client assertion, so 2 as for certificates)
            return _token_response(request, tenant, client_sp, resource_sp, audience, CLIENT_CERTIFICATE)
        login = _login_url(request)
        expected = {f"{login}/{ref}/oauth2/v2.0/token" for ref in (tenant.id, tenant.domain,
                                                                    request.match_info["tenant"])}
        expected |= {f"{login}/{ref}/oauth2/token" for ref in (tenant.id, tenant.domain)}
        check_client_assertion(world, app, form["client_assertion"], expected)
        client_auth = CLIENT_CERTIFICATE
    elif "client_secret" in form:
        _check_secret(world, app_home, app, form["client_secret"])
        client_auth = CLIENT_SECRET
    else:
        raise AADError(401, "invalid_client", 7000218,
                       "The request body must contain the following parameter: 'client_assertion' or "
                       "'client_secret'.")
    return _token_response(request, tenant, client_sp, resource_sp, audience, client_auth)


def _token_response(request: web.Request, tenant: Tenant, client_sp: dict, resource_sp: dict,
                    audience: str, client_auth: str) -> web.Response:
    # `roles` catch up with new grants only after the "appRoleAssignment" replication delay.
    roles = _world(request).token_roles(tenant, client_sp["id"], resource_sp["id"])
    access_token, _ = request.app["issuer"].issue(tenant_id=tenant.id, object_id=client_sp["id"],
                                                  app_id=client_sp["appId"], audience=audience, roles=roles,
                                                  client_auth=client_auth)
    lifetime = 3599
    return web.json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                              "access_token": access_token}, headers={"Cache-Control": "no-store"})


def _header_kid(assertion: str) -> str | None:
    try:
        return unverified_header(assertion).get("kid")
    except jwt.PyJWTError:
        return None


def check_federated_assertion(world: World, issuer, app: dict, assertion: str) -> None:
    """A token the sandbox issued (a managed identity's, for api://AzureADTokenExchange) used as the
    client assertion of an app with a matching federatedIdentityCredential (issuer, subject, audience)."""
    try:
        claims = issuer.verify_federated(assertion)
    except TokenRejected as exc:
        raise AADError(401, "invalid_client", 700024 if "expired" in str(exc) else 700027,
                       f"Client assertion failed validation: {exc}.") from exc
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    for credential in app.get("_federatedIdentityCredentials", []):
        if credential["issuer"] == claims.get("iss") and credential["subject"] == claims.get("sub") \
                and any(a in credential["audiences"] for a in audiences):
            return
    raise AADError(400, "invalid_request", 70021,
                   f"No matching federated identity record found for presented assertion. Assertion Issuer: "
                   f"'{claims.get('iss')}'. Assertion Subject: '{claims.get('sub')}'. Assertion Audience: "
                   f"'{','.join(map(str, audiences))}'.")


def _redirect_matches(registered: list[str], requested: str) -> bool:
    """Exact match, except that loopback redirect URIs match on any port (RFC 8252 §7.3; Entra
    documents this under 'Localhost exceptions' in reply-url)."""
    if requested in registered:
        return True
    req = urllib.parse.urlsplit(requested)
    if req.hostname not in ("127.0.0.1", "localhost", "::1"):
        return False
    for uri in registered:
        reg = urllib.parse.urlsplit(uri)
        if (reg.scheme, reg.hostname, reg.path) == (req.scheme, req.hostname, req.path):
            return True
    return False


def _error_page(status: int, aadsts: int, message: str) -> web.Response:
    # Entra shows errors it cannot safely redirect (bad client or redirect URI) on its own page.
    text = f"AADSTS{aadsts}: {html.escape(message)}"
    return web.Response(status=status, content_type="text/html",
                        text=f"<html><body><h1>Sorry, but we're having trouble signing you in.</h1>"
                             f"<p id='error'>{text}</p></body></html>")


@routes.get("/{tenant}/adminconsent")
async def admin_consent(request: web.Request) -> web.Response:
    """The v1 admin-consent endpoint: the sandbox's administrator accepts (or, if configured, declines)
    at once and is redirected back with admin_consent, tenant and state."""
    return _admin_consent(request, v2=False)


@routes.get("/{tenant}/v2.0/adminconsent")
async def admin_consent_v2(request: web.Request) -> web.Response:
    """The v2 admin-consent endpoint (entra/identity-platform/v2-admin-consent): `scope` is required; a
    `/.default` scope consents to the app's required application permissions; the redirect carries
    admin_consent, tenant, scope and state (and admin_consent=True with an error)."""
    return _admin_consent(request, v2=True)


def _consenting_tenant(request: web.Request) -> Tenant | web.Response:
    """The tenant whose administrator consents: the one in the URL, or for `organizations` (and the older
    `common`) the one the sandbox's administrator signs in to (PUT /_sandbox/consent {"tenant": …})."""
    world = _world(request)
    ref = request.match_info["tenant"]
    if ref.lower() in ("organizations", "common"):
        chosen = request.app["consent"].get("tenant")
        tenant = world.tenants.get(chosen) if chosen else None
        if tenant is None:
            return _error_page(400, 90002, f"The sandbox's administrator has no tenant to sign in to for '{ref}': "
                                           "set one with PUT /_sandbox/consent {\"tenant\": <tenant id>}.")
        return tenant
    tenant = world.tenant(ref)
    if tenant is None:
        return _error_page(400, 90002, f"Tenant '{ref}' not found.")
    return tenant


def _admin_consent(request: web.Request, *, v2: bool) -> web.Response:
    world = _world(request)
    tenant = _consenting_tenant(request)
    if isinstance(tenant, web.Response):
        return tenant
    query = request.query
    client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
    home = world.home_application(client_id)
    if home is None:
        return _error_page(400, 700016, f"Application with identifier '{client_id}' was not found in the "
                                        f"directory '{tenant.display_name}'.")
    app_home, app = home
    if app_home.id != tenant.id and app.get("signInAudience") not in MULTI_TENANT_AUDIENCES:
        return _error_page(400, 700016, f"Application with identifier '{client_id}' was not found in the "
                                        f"directory '{tenant.display_name}'.")
    if not redirect_uri or not _redirect_matches(app.get("web", {}).get("redirectUris", []), redirect_uri):
        return _error_page(400, 50011, f"The redirect URI '{redirect_uri}' specified in the request does not "
                                       f"match the redirect URIs configured for the application '{client_id}'.")

    def back(params: dict) -> web.Response:
        if v2:  # v2 answers admin_consent=True on errors too (v2-admin-consent, "Error response")
            params = {"admin_consent": "True", **params}
        params = {**params, "state": query.get("state", "")} if "state" in query else params
        separator = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
        raise web.HTTPFound(redirect_uri + separator + urllib.parse.urlencode(params))

    scope = query.get("scope", "")
    if v2 and not scope.strip():
        fact = ms.AADSTS_ERRORS["admin_consent_scope_missing"]
        return back({"error": fact["error"], "error_description": f"AADSTS{fact['aadsts']}: {fact['message']}"})
    if request.app["consent"].get("decision", "accept") != "accept":
        fact = ms.AADSTS_ERRORS["admin_consent_declined_v2" if v2 else "admin_consent_declined"]
        return back({"error": fact["error"], "error_description": f"AADSTS{fact['aadsts']}: {fact['message']}"})
    # Application permissions are consented only through a static scope: "In order to request app permissions,
    # you must use the /.default value" (v2-admin-consent). Delegated (dynamic) scopes are not modelled.
    grant_roles = not v2 or any(s.endswith("/.default") for s in scope.split())
    sp = tenant.service_principal_by_app_id(client_id) or world.new_service_principal(tenant, app, app_home)
    for required in app.get("requiredResourceAccess", []) if grant_roles else []:
        resource = tenant.service_principal_by_app_id(required["resourceAppId"])
        if resource is None:
            return back({"error": "invalid_request",
                         "error_description": f"AADSTS650052: The app needs access to a service "
                                              f"(\"{required['resourceAppId']}\") that your organization has not "
                                              "subscribed to or enabled."})
        have = {a["appRoleId"] for a in tenant.assignments_of(sp["id"]) if a["resourceId"] == resource["id"]}
        for access in required.get("resourceAccess", []):
            if access.get("type") == "Role" and access["id"] not in have:
                world.new_app_role_assignment(tenant, sp, resource, access["id"])
    if v2:
        return back({"tenant": tenant.id, "scope": scope})
    return back({"admin_consent": "True", "tenant": tenant.id})


# -- App Service managed identity (plain HTTP, like IDENTITY_ENDPOINT inside App Service) ---------------

identity_routes = web.RouteTableDef()


@identity_routes.get("/msi/token")
async def managed_identity_token(request: web.Request) -> web.Response:
    """App Service's managed-identity endpoint, api-version 2019-08-01."""
    world = _world(request)
    if request.headers.get("X-IDENTITY-HEADER") != world.identity_header:
        return web.json_response({"statusCode": 401, "message": "Unauthorized request. X-IDENTITY-HEADER is "
                                  "missing or invalid."}, status=401)
    if request.query.get("api-version") != "2019-08-01":
        return web.json_response({"error": "invalid_request",
                                  "error_description": "api-version must be 2019-08-01"}, status=400)
    resource = request.query.get("resource", "")
    if resource.endswith("/.default"):
        resource = resource[: -len("/.default")]
    selectors = {k: request.query[k] for k in ("client_id", "principal_id", "object_id", "mi_res_id")
                 if k in request.query}
    found = None
    for tenant in world.tenants.values():
        for sp in tenant.service_principals.values():
            if sp["servicePrincipalType"] != "ManagedIdentity":
                continue
            default = not selectors and (tenant.id, sp["appId"]) == world.managed_identity_default
            chosen = selectors.get("client_id") == sp["appId"] or sp["id"] in (
                selectors.get("principal_id"), selectors.get("object_id"))
            if default or chosen:
                found = (tenant, sp)
    if found is None:
        return web.json_response({"statusCode": 400, "message": "No managed identity found for the specified "
                                  f"identity {selectors or 'system-assigned'}."}, status=400)
    tenant, sp = found
    if resource.rstrip("/") == TOKEN_EXCHANGE_AUDIENCE:
        # A v2.0 token whose iss/sub an app's federatedIdentityCredential names.
        access_token, expires_on = request.app["issuer"].issue(
            tenant_id=tenant.id, object_id=sp["id"], app_id=sp["appId"], audience=TOKEN_EXCHANGE_AUDIENCE,
            roles=[], issuer=f"{_login_url(request)}/{tenant.id}/v2.0")
        return web.json_response({"access_token": access_token, "expires_on": str(expires_on),
                                  "resource": resource, "token_type": "Bearer", "client_id": sp["appId"]})
    target = resolve_resource(tenant, resource)
    if target is None:
        return web.json_response({"statusCode": 400, "message": f"AADSTS500011: The resource principal named "
                                  f"{resource} was not found in the tenant named {tenant.display_name}."},
                                 status=400)
    resource_sp, audience = target
    roles = world.token_roles(tenant, sp["id"], resource_sp["id"])
    access_token, expires_on = request.app["issuer"].issue(tenant_id=tenant.id, object_id=sp["id"],
                                                           app_id=sp["appId"], audience=audience, roles=roles)
    return web.json_response({"access_token": access_token, "expires_on": str(expires_on),
                              "resource": resource, "token_type": "Bearer", "client_id": sp["appId"]})


def managed_identity_hash(value: str) -> str:
    """Short stable fingerprint (for logs that must not carry the identity header)."""
    return hashlib.sha256(value.encode()).hexdigest()[:8]


__all__ = ["check_client_assertion", "identity_routes", "ms", "resolve_resource", "routes"]
