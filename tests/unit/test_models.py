"""Validation of POST /api/onboardings bodies: every bad request names its field and rule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared import catalog
from shared.models import (
    DEFAULT_VALIDITY_MONTHS,
    MAX_BODY_BYTES,
    RequestError,
    iso_duration,
    months_within,
    parse_onboarding_request,
    validity_months_for,
)

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
    # No validityMonths: the product picks it (12, or what the tenant's policy allows: validity_months_for).
    assert (request.certificate.validity_months, request.certificate.key_size,
            request.certificate.exportable) == (None, 2048, False)
    assert validity_months_for(request.certificate.validity_months, None) == DEFAULT_VALIDITY_MONTHS == 12


def test_explicit_null_role_means_no_role_and_mailbox_is_normalised():
    request = parse_onboarding_request(_body(directoryRole=None, serviceMailbox="Sync@Contoso.COM",
                                             tenantId=TENANT.upper()))
    assert request.directory_role is None
    assert request.service_mailbox == "sync@contoso.com"
    assert request.tenant_id == TENANT


@pytest.mark.parametrize("mailbox", [
    # Outside Entra's UPN characters but inside Exchange's alias rule: accepted (they were refused before).
    "o'brien+sync@contoso.com", "a/b#c?d@contoso.com", "{$x}@contoso.com", "x'|iex|'@contoso.com",
    "a=b&c*d@contoso.com", "x`y`@contoso.com", "100%@contoso.com"])
def test_exchange_alias_characters_are_accepted(mailbox):
    assert parse_onboarding_request(_body(serviceMailbox=mailbox)).service_mailbox == mailbox


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
    (_body(serviceMailbox='"quoted"@contoso.com'), "serviceMailbox"),
    (_body(serviceMailbox="a..b@contoso.com"), "serviceMailbox"),
    (_body(serviceMailbox="sync@contoso"), "serviceMailbox"),
    (_body(serviceMailbox="sync@-contoso.com"), "serviceMailbox"),
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


# -- certificate validity against the tenant's cap on certificate lifetimes (app management policy) ------------

def test_validity_months_is_optional_and_null_means_not_given():
    assert parse_onboarding_request(_body(certificate={"validityMonths": None})).certificate.validity_months is None
    assert parse_onboarding_request(_body(certificate={"validityMonths": 6})).certificate.validity_months == 6


@pytest.mark.parametrize(("cap_days", "months"), [
    (30, 0), (31, 1), (61, 1), (62, 2), (90, 2), (92, 2), (93, 3), (364, 11), (365, 11), (372, 12), (10_000, 24)])
def test_the_months_that_fit_a_cap_count_every_month_as_31_days(cap_days, months):
    assert months_within(timedelta(days=cap_days)) == months
    if months:  # the rule is safe: N calendar months from any start day last at most N x 31 days
        assert months * 31 <= cap_days


@pytest.mark.parametrize(("requested", "cap", "chosen"), [
    (None, None, 12), (24, None, 24), (3, None, 3),      # no cap known: as asked, 12 by default
    (None, timedelta(days=90), 2), (1, timedelta(days=90), 1), (2, timedelta(days=90), 2),
    (None, timedelta(days=730), 12), (18, timedelta(days=730), 18),  # the default stays 12 under a loose cap
])
def test_validity_months_for_fits_the_request_to_the_cap(requested, cap, chosen):
    assert validity_months_for(requested, cap) == chosen


def test_an_explicit_validity_over_the_cap_names_the_field_and_the_cap():
    with pytest.raises(RequestError) as refused:
        validity_months_for(12, timedelta(days=90))
    [problem] = refused.value.problems
    assert problem["field"] == "certificate.validityMonths"
    assert "at most 2" in problem["rule"]
    assert "P90D" in problem["rule"]


def test_a_cap_shorter_than_a_month_refuses_even_the_default():
    with pytest.raises(RequestError) as refused:
        validity_months_for(None, timedelta(days=20))
    assert refused.value.problems[0]["field"] == "certificate.validityMonths"
    assert "P20D" in refused.value.problems[0]["rule"]


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(days=90), "P90D"), (timedelta(days=4, hours=12, minutes=30, seconds=5), "P4DT12H30M5S"),
    (timedelta(hours=36), "P1DT12H"), (timedelta(minutes=90), "PT1H30M")])
def test_a_cap_is_shown_as_graph_writes_it(value, text):
    assert iso_duration(value) == text
