"""functions.api: the status-code table, Retry-After, status links and Azure's error shape."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from functions import api
from functions.onboarding import _lifecycle


@pytest.mark.parametrize(("lifecycle", "plain", "with_switch"), [
    ("pending", 202, 202), ("running", 202, 202), ("waitingForAdmin", 202, 202),
    ("waitingForCertificate", 202, 202), ("needsAttention", 202, 202),
    ("completed", 200, 200), ("retired", 200, 200), ("failed", 200, 500), ("expired", 200, 500),
])
def test_the_status_code_table(lifecycle: str, plain: int, with_switch: int) -> None:
    assert api.http_status(lifecycle, fail_on_error=False) == plain
    assert api.http_status(lifecycle, fail_on_error=True) == with_switch


def test_the_table_covers_every_lifecycle_status_once() -> None:
    assert set(api.PROGRESSING).isdisjoint(api.TERMINAL)
    assert set(api.FAILURES) <= set(api.TERMINAL)


@pytest.mark.parametrize(("recorded", "runtime", "lifecycle"), [
    ("running", "Pending", "pending"), ("running", "Running", "running"), ("running", "Suspended", "running"),
    ("running", "ContinuedAsNew", "running"), ("waitingForAdmin", "Running", "waitingForAdmin"),
    ("needsAttention", "Running", "needsAttention"), ("completed", "Running", "running"),
    ("completed", "Completed", "completed"), ("running", "Completed", "completed"),
    ("failed", "Failed", "failed"), ("running", "Failed", "failed"), ("running", "Terminated", "failed"),
    ("expired", "Completed", "expired"), ("retired", None, "retired"), ("failed", None, "failed"),
])
def test_lifecycle_from_the_record_and_the_runtime(recorded: str, runtime: str | None, lifecycle: str) -> None:
    assert _lifecycle(recorded, runtime) == lifecycle


def test_every_non_terminal_durable_status_is_active() -> None:
    import azure.durable_functions as df

    terminal = {"Completed", "Failed", "Terminated", "Canceled"}
    every = {status.value for status in df.OrchestrationRuntimeStatus}
    assert every - terminal == api.ACTIVE_RUNTIME


def test_retry_after_fits_the_work() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    at = (now + timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
    assert api.retry_after("running", {"step": "consent", "steps": ["consent"]}, now) == 2
    assert api.retry_after("pending", None, now) == 5
    assert api.retry_after("running", {"step": "consent", "retryAt": at, "waitingFor": "replication"}, now) == 41
    far = (now + timedelta(hours=1)).isoformat()
    assert api.retry_after("running", {"retryAt": far}, now) == 60
    assert api.retry_after("running", {"retryAt": now.isoformat()}, now) == 5
    assert api.retry_after("running", {"waitingFor": "consent"}, now) == 20
    assert api.retry_after("waitingForAdmin", {"step": "verify"}, now) == 60
    assert 2 <= api.retry_after("running", {"retryAt": "not a time"}, now) <= 5


def test_extra_query_parameters_follow_an_existing_query_with_an_ampersand() -> None:
    assert api.with_query("https://x.example/a?token=t", returnInternalServerErrorOnFailure="true") == \
        "https://x.example/a?token=t&returnInternalServerErrorOnFailure=true"
    assert api.with_query("https://x.example/a", b="1") == "https://x.example/a?b=1"
    assert api.with_query("https://x.example/a?x=1") == "https://x.example/a?x=1"


def request(url: str, params: dict | None = None) -> func.HttpRequest:
    return func.HttpRequest("GET", url, params=params or {}, body=b"")


def test_status_links_use_the_public_base_url_when_set() -> None:
    req = request("http://127.0.0.1:7071/api/onboardings?x=1")
    assert api.public_base(req, None) == "http://127.0.0.1:7071"
    assert api.public_base(req, "https://api.contoso.com/certauth/") == "https://api.contoso.com/certauth"
    link = api.status_link("https://api.contoso.com", "t.1", "v.p.m", fail_on_error=True)
    assert link == ("https://api.contoso.com/api/onboardings/t.1/status?token=v.p.m"
                    "&returnInternalServerErrorOnFailure=true")
    assert api.wants_failure_as_error(request(link, {"returnInternalServerErrorOnFailure": "true"}))
    assert not api.wants_failure_as_error(request(link, {"returnInternalServerErrorOnFailure": "false"}))


def test_validation_problems_take_azures_error_shape() -> None:
    response = api.validation_error([{"field": "certificate.keySize", "rule": "must be 2048, 3072 or 4096"}])
    assert response.status_code == 400
    assert response.headers["x-ms-error-code"] == "InvalidRequest"
    error = json.loads(response.get_body())["error"]
    assert error["target"] == "certificate.keySize"
    assert error["details"] == [{"code": "InvalidValue", "target": "certificate.keySize",
                                 "message": "must be 2048, 3072 or 4096"}]
    several = json.loads(api.validation_error([{"field": "a", "rule": "x"}, {"field": "b", "rule": "y"}])
                         .get_body())["error"]
    assert "target" not in several
    assert [d["target"] for d in several["details"]] == ["a", "b"]


def test_an_unhandled_exception_answers_500_with_a_correlation_id_the_log_carries(caplog) -> None:
    log = logging.getLogger("certauth.test")

    @api.handled(log)
    async def broken(req: func.HttpRequest) -> func.HttpResponse:
        raise KeyError("internal detail /home/site/wwwroot")

    with caplog.at_level(logging.ERROR, logger="certauth.test"):
        response = asyncio.run(broken(request("http://x/api/y")))
    assert response.status_code == 500
    assert response.headers["x-ms-error-code"] == "InternalServerError"
    body = json.loads(response.get_body())
    correlation = body["error"]["innererror"]["correlationId"]
    assert correlation in body["error"]["message"]
    assert response.headers["x-ms-correlation-request-id"] == correlation
    assert "internal detail" not in response.get_body().decode()
    assert "Traceback" not in response.get_body().decode()
    assert [r for r in caplog.records if correlation in r.getMessage() and r.exc_info]
    assert broken.__name__ == "broken"
