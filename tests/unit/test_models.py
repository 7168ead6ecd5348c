"""Validation of POST /api/onboardings bodies: every bad request names its field and rule."""

from __future__ import annotations

import json

import pytest

from shared import catalog
from shared.models import MAX_BODY_BYTES, RequestError, parse_onboarding_request

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _body(**fields) -> bytes:
    base = {"tenantId": TENANT, "serviceMailbox": "sync@contoso.com"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_minimal_request_gets_the_default_profile_and_its_role():
    request = parse_onboarding_request(_body())
    assert request.method == "automatic"
    assert request.permission_profile == catalog.DEFAULT_PROFILE
    assert request.directory_role == "exchange-administrator"
    assert (request.certificate.validity_months, request.certificate.key_size,
            request.certificate.exportable) == (12, 2048, False)


def test_explicit_null_role_means_no_role_and_mailbox_is_normalised():
    request = parse_onboarding_request(_body(directoryRole=None, serviceMailbox="Sync@Contoso.COM",
                                             tenantId=TENANT.upper()))
    assert request.directory_role is None
    assert request.service_mailbox == "sync@contoso.com"
    assert request.tenant_id == TENANT


BAD_REQUESTS = [
    (b"", "body"),
    (b"not json", "body"),
    (b"[]", "body"),
    (b'"text"', "body"),
    (b"x" * (MAX_BODY_BYTES + 1), "body"),
    (_body(tenantId=...), "tenantId"),
    (_body(tenantId="contoso.onmicrosoft.com"), "tenantId"),
    (_body(tenantId="00000000-0000-0000-0000-000000000000"), "tenantId"),
    (_body(tenantId=42), "tenantId"),
    (_body(tenantId=TENANT + "' or 1 eq 1"), "tenantId"),
    (_body(serviceMailbox=...), "serviceMailbox"),
    (_body(serviceMailbox="not-an-address"), "serviceMailbox"),
    (_body(serviceMailbox="a@b@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox="sync@contoso.com\r\nBcc: x@evil.example"), "serviceMailbox"),
    (_body(serviceMailbox='"$(Remove-Item C:\\)"@contoso.com'), "serviceMailbox"),
    (_body(serviceMailbox="sync`$(whoami)@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox="sync@contoso.com'; Remove-MgApplication"), "serviceMailbox"),
    (_body(serviceMailbox="<script>@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox="syñc@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox=" sync@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox="a" * 250 + "@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox=["sync@contoso.com"]), "serviceMailbox"),
    (_body(method="semi-automatic"), "method"),
    (_body(permissionProfile="everything"), "permissionProfile"),
    (_body(directoryRole="global-administrator"), "directoryRole"),
    (_body(certificate={"validityMonths": 0}), "certificate.validityMonths"),
    (_body(certificate={"validityMonths": 25}), "certificate.validityMonths"),
    (_body(certificate={"validityMonths": "12"}), "certificate.validityMonths"),
    (_body(certificate={"keySize": 1024}), "certificate.keySize"),
    (_body(certificate={"exportable": "yes"}), "certificate.exportable"),
    (_body(certificate={"password": "p@ss"}), "certificate.password"),
    (_body(adminPassword="hunter2"), "adminPassword"),
]


@pytest.mark.parametrize(("body", "field"), BAD_REQUESTS)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(RequestError) as caught:
        parse_onboarding_request(body)
    fields = [p["field"] for p in caught.value.problems]
    assert field in fields
    assert all(p["rule"] for p in caught.value.problems)


def test_corpus_is_at_least_twenty_requests():
    assert len(BAD_REQUESTS) >= 20


def test_every_problem_is_reported_at_once():
    with pytest.raises(RequestError) as caught:
        parse_onboarding_request(_body(tenantId="x", serviceMailbox="y", extra=1))
    assert {p["field"] for p in caught.value.problems} == {"tenantId", "serviceMailbox", "extra"}
