"""The one classifier of step failures (shared/failures.py), table-driven over the real exception objects of each
SDK (azure-core, azure-identity's ClientAuthenticationError, azure-data-tables, kiota / msgraph, httpx), and the
retry budgets the orchestrator applies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse
from azure.data.tables._error import _decode_error
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from shared import failures
from shared.failures import CONSENT, CONSENT_FIX, REPLICATION, THROTTLING, TRANSIENT, Permanent, Transient, classify
from shared.graph import GraphError

TRACE = "\r\nTrace ID: 0f6c7a8e-1d1d-4b6e-9d7e-2c2b3a4f5e6d\r\nCorrelation ID: 5e1b\r\nTimestamp: 2026-11-30 10:00:00Z"


def _response(status: int, body: dict | None = None, headers: dict | None = None) -> RequestsTransportResponse:
    """An HTTP answer as azure-core's requests transport hands it to the SDKs."""
    raw = requests.Response()
    raw.status_code = status
    raw.reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error")
    raw.headers.update({"Content-Type": "application/json", **(headers or {})})
    raw._content = json.dumps(body or {}).encode()
    return RequestsTransportResponse(HttpRequest("GET", "https://service.example/x"), raw)


def _key_vault(status: int, code: str, message: str) -> HttpResponseError:
    """Key Vault's error as azure-keyvault-* raise it (azure-core parses {"error": {code, message}})."""
    return HttpResponseError(response=_response(status, {"error": {"code": code, "message": message}}))


def _table(status: int, code: str, message: str) -> HttpResponseError:
    """Table Storage's error as azure-data-tables raises it (its own decoder over Storage's odata.error body)."""
    response = _response(status, {"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}},
                         {"x-ms-error-code": code, "Content-Type": "application/json;odata=minimalmetadata"})
    return _decode_error(response)


def _odata(status: int, code: str, message: str) -> ODataError:
    """Graph's error as msgraph-sdk raises it."""
    return ODataError(error=MainError(code=code, message=message), response_status_code=status)


def _entra(code: str, text: str) -> ClientAuthenticationError:
    """Entra's refusal as azure-identity raises it."""
    return ClientAuthenticationError(message=f"ClientAssertionCredential.get_token failed: Authentication failed: "
                                             f"{code}: {text}{TRACE}")


_REQUEST = httpx.Request("GET", "https://graph.example/v1.0/servicePrincipals")

# (what, exception, transient, waitingFor, status, code)
CASES = [
    # Graph through msgraph-sdk (ODataError) and kiota (APIError), and as shared.graph wraps them
    ("graph 429 after the SDK's retries", _odata(429, "TooManyRequests", "Too many requests"), True, THROTTLING,
     429, "TooManyRequests"),
    ("graph 503", _odata(503, "serviceNotAvailable", "Service unavailable"), True, TRANSIENT, 503,
     "serviceNotAvailable"),
    ("graph 504", APIError(message="gateway timeout", response_status_code=504), True, TRANSIENT, 504,
     "UnknownError"),
    ("graph replication: new app", _odata(400, "Request_BadRequest", "The appId 'x' of the service principal does "
     "not reference a valid application object."), True, REPLICATION, 400, "Request_BadRequest"),
    ("graph replication: reference update", GraphError(400, "Request_BadRequest", "Not a valid reference update."),
     True, REPLICATION, 400, "Request_BadRequest"),
    ("graph replication: 404 reference", _odata(404, "Request_ResourceNotFound", "Resource 'x' does not exist or "
     "one of its queried reference-property objects are not present."), True, REPLICATION, 404,
     "Request_ResourceNotFound"),
    ("graph NoBackingApplicationObject", GraphError(400, "NoBackingApplicationObject", "no backing object"), True,
     REPLICATION, 400, "NoBackingApplicationObject"),
    ("graph 403 refused", _odata(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
     "operation."), False, None, 403, "Authorization_RequestDenied"),
    ("graph 400 invalid", GraphError(400, "CredentialInvalidLifetimeAsPerAppPolicy", "policy"), False, None, 400,
     "CredentialInvalidLifetimeAsPerAppPolicy"),
    ("kiota error without a status", APIError(message="could not deserialize"), False, None, 0, "UnknownError"),
    # Key Vault (azure-core HttpResponseError and its subclasses)
    ("key vault 429 storm", _key_vault(429, "Throttled", "Request was not processed because too many requests "
     "were received."), True, THROTTLING, 429, "Throttled"),
    ("key vault 500", _key_vault(500, "InternalServerError", "boom"), True, TRANSIENT, 500, "InternalServerError"),
    ("key vault 403 forbidden", _key_vault(403, "Forbidden", "The user does not have certificates create "
     "permission"), False, None, 403, "Forbidden"),
    ("key vault 404", ResourceNotFoundError(response=_response(404, {"error": {"code": "CertificateNotFound",
     "message": "not found"}})), False, None, 404, "CertificateNotFound"),
    ("key vault 409 deleted", ResourceExistsError(response=_response(409, {"error": {"code": "Conflict",
     "message": "Certificate is currently in a deleted but recoverable state"}})), False, None, 409, "Conflict"),
    ("408 request timeout", _key_vault(408, "RequestTimeout", "timeout"), True, TRANSIENT, 408, "RequestTimeout"),
    # Table Storage (azure-data-tables' own decoding of Storage's answer)
    ("table 503 ServerBusy", _table(503, "ServerBusy", "The server is currently unable to receive requests. "
     "Please retry your request."), True, THROTTLING, 503, "ServerBusy"),
    ("table 500", _table(500, "InternalError", "The server encountered an internal error."), True, TRANSIENT, 500,
     "InternalError"),
    ("table 412", _table(412, "UpdateConditionNotSatisfied", "The update condition specified in the request was "
     "not satisfied."), False, None, 412, "UpdateConditionNotSatisfied"),
    ("table 400 bad key", _table(400, "InvalidInput", "One of the request inputs is not valid."), False, None, 400,
     "InvalidInput"),
    ("HttpResponseError without a response", HttpResponseError(message="decode failed"), False, None, 0,
     "HttpResponseError"),
    # Entra through azure-identity
    ("AADSTS700016 never consented", _entra("AADSTS700016", "Application with identifier 'a' was not found in the "
     "directory 'Contoso'."), True, CONSENT, 0, "AADSTS700016"),
    ("AADSTS500011 resource not consented", _entra("AADSTS500011", "The resource principal named x was not found "
     "in the tenant named Contoso."), True, CONSENT, 0, "AADSTS500011"),
    ("AADSTS65001 not consented", _entra("AADSTS65001", "The user or administrator has not consented."), True,
     CONSENT, 0, "AADSTS65001"),
    ("AADSTS7000229 new service principal", _entra("AADSTS7000229", "The client application x is missing service "
     "principal in the tenant y."), True, REPLICATION, 0, "AADSTS7000229"),
    ("AADSTS700027 new certificate", _entra("AADSTS700027", "The certificate with identifier used to sign the "
     "client assertion is not registered on application."), True, REPLICATION, 0, "AADSTS700027"),
    ("AADSTS90033 directory unavailable", _entra("AADSTS90033", "A transient error has occurred."), True, TRANSIENT,
     0, "AADSTS90033"),
    ("AADSTS50196 loop detected", _entra("AADSTS50196", "The server terminated an operation because it "
     "encountered a client request loop."), True, THROTTLING, 0, "AADSTS50196"),
    ("AADSTS7000215 wrong secret", _entra("AADSTS7000215", "Invalid client secret provided."), False, None, 401,
     "AADSTS7000215"),
    ("AADSTS70021 no federated credential", _entra("AADSTS70021", "No matching federated identity record found."),
     False, None, 401, "AADSTS70021"),
    ("identity endpoint unreachable", ClientAuthenticationError(message="ManagedIdentityCredential authentication "
     "unavailable, no response from the IMDS endpoint."), True, TRANSIENT, 0, "AuthenticationFailed"),
    # the network
    ("azure-core connection refused", ServiceRequestError("Connection refused"), True, TRANSIENT, 0,
     "ServiceRequestError"),
    ("azure-core read timeout", ServiceResponseError("Read timed out"), True, TRANSIENT, 0, "ServiceResponseError"),
    ("httpx connect error", httpx.ConnectError("All connection attempts failed", request=_REQUEST), True, TRANSIENT,
     0, "ConnectError"),
    ("httpx read timeout", httpx.ReadTimeout("timed out", request=_REQUEST), True, TRANSIENT, 0, "ReadTimeout"),
    ("httpx 502", httpx.HTTPStatusError("bad gateway", request=_REQUEST,
                                        response=httpx.Response(502, request=_REQUEST)), True, TRANSIENT, 502,
     "HTTPStatusError"),
    ("connection reset", ConnectionResetError(104, "Connection reset by peer"), True, TRANSIENT, 0,
     "ConnectionResetError"),
    ("timeout", TimeoutError("the operation timed out"), True, TRANSIENT, 0, "TimeoutError"),
    # the steps' own verdicts, and everything else
    ("certificate still being created", Transient("Key Vault is still creating certificate c",
                                                  code="CertificateCreationPending"), True, TRANSIENT, 0,
     "CertificateCreationPending"),
    ("roles not in the token yet", Transient("token roles do not include ['User.Read.All'] yet", REPLICATION,
                                             "RolesNotInTokenYet"), True, REPLICATION, 0, "RolesNotInTokenYet"),
    ("catalog mismatch", Permanent(409, "CatalogMismatch", "the catalog says otherwise"), False, None, 409,
     "CatalogMismatch"),
    ("a bug", KeyError("certificate"), False, None, 0, "KeyError"),
    ("a bad value", ValueError("not a Table Storage key: 'a/b'"), False, None, 0, "ValueError"),
]


@pytest.mark.parametrize(("what", "exception", "transient", "waiting_for", "status", "code"), CASES,
                         ids=[case[0] for case in CASES])
def test_every_failure_is_classified_and_named(what, exception, transient, waiting_for, status, code):
    verdict = classify("consent", exception)
    assert verdict.transient is transient, verdict
    error = verdict.error
    assert error["step"] == "consent"
    assert error["status"] == status, error
    assert error["code"] == code, error
    assert error["message"], error
    assert error.get("waitingFor") == waiting_for, error
    assert verdict.outcome() == {"ok": False, "retry": transient, "error": error}
    json.dumps(error)  # JSON-safe: it goes into orchestration history and the record


def test_entra_messages_lose_their_per_attempt_trace_lines():
    error = classify("application", _entra("AADSTS700016", "Application with identifier 'a' was not found.")).error
    assert error["message"].endswith("Application with identifier 'a' was not found.")
    assert "Trace ID" not in error["message"]
    assert "Timestamp" not in error["message"]


def test_a_missing_consent_names_the_fix():
    error = classify("application", _entra("AADSTS700016", "Application with identifier 'a' was not found.")).error
    assert error["fix"] == CONSENT_FIX
    assert "open the onboarding link" in CONSENT_FIX
    assert "fix" not in classify("application", _odata(503, "x", "y")).error


def test_messages_are_bounded():
    error = classify("proof", ValueError("x" * 5000)).error
    assert len(error["message"]) == failures.MAX_MESSAGE


T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_a_missing_consent_gets_minutes_and_everything_else_about_twelve():
    assert failures.retry_deadline(CONSENT, T0) - T0 == failures.CONSENT_BUDGET
    assert timedelta(minutes=3) <= failures.CONSENT_BUDGET <= timedelta(minutes=5)
    for kind in (REPLICATION, THROTTLING, TRANSIENT, None):
        assert failures.retry_deadline(kind, T0) - T0 == failures.RETRY_BUDGET == timedelta(minutes=12)


def test_right_after_a_recorded_consent_the_propagation_window_counts():
    consented = T0 - timedelta(minutes=1)
    assert failures.retry_deadline(CONSENT, T0, consented) == consented + failures.CONSENT_PROPAGATION_WINDOW
    # long after the consent: the short budget again
    old = T0 - timedelta(days=2)
    assert failures.retry_deadline(CONSENT, T0, old) == T0 + failures.CONSENT_BUDGET
    # the consent does not change other kinds' budgets
    assert failures.retry_deadline(REPLICATION, T0, consented) == T0 + failures.RETRY_BUDGET


def _attempts_until_exhausted(kind: str) -> tuple[int, timedelta]:
    """Replays the orchestrator's rule: retry while the next attempt falls within the deadline."""
    now, attempt = T0, 1
    deadline = failures.retry_deadline(kind, T0)
    while now + failures.backoff(attempt) <= deadline:
        now += failures.backoff(attempt)
        attempt += 1
    return attempt, now - T0


def test_backoff_grows_to_a_minute_and_fills_the_budget():
    assert [failures.backoff(n).total_seconds() for n in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]
    attempts, spent = _attempts_until_exhausted(REPLICATION)
    assert attempts >= 15
    assert timedelta(minutes=11) <= spent <= failures.RETRY_BUDGET
    attempts, spent = _attempts_until_exhausted(CONSENT)
    assert timedelta(minutes=3) <= spent <= failures.CONSENT_BUDGET


def test_an_exhausted_budget_says_how_long_it_tried_and_names_the_fix():
    error = classify("application", _entra("AADSTS700016", "Application with identifier 'a' was not found.")).error
    final = failures.exhausted(error, 8, T0, T0 + timedelta(minutes=4, seconds=15))
    assert final["message"].startswith(CONSENT_FIX)
    assert "still failing after 8 attempts in 4 min" in final["message"]
    assert "AADSTS700016" in final["message"]
    assert final["fix"] == CONSENT_FIX
    assert final["code"] == "AADSTS700016"
    assert "waitingFor" not in final
    plain = failures.exhausted(classify("consent", _odata(503, "x", "busy")).error, 16, T0, T0 + timedelta(minutes=11))
    assert plain["message"] == "still failing after 16 attempts in 11 min: busy"
