"""shared/verify.py's comparison: what the verifier read against what the script sets up, item by item."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.verify import ROLE_PROVEN, Expected, Observed, compare, with_exchange_proof

GRAPH = "00000003-0000-0000-c000-000000000000"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
CONTACTS = (GRAPH, "Contacts.ReadWrite", "6918B873-D17A-4DC1-B314-35F528134491")
MANAGE = (EXCHANGE, "Exchange.ManageAsApp", "dc50a0fb-09a3-484d-be87-e023b12c6440")
THUMBPRINT = "AB" * 20
START, END = datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)


def expected(**changes) -> Expected:
    values = {"unique_name": "certauth-x", "display_name": "Itrezzo (a@contoso.com)", "thumbprint": THUMBPRINT,
              "not_before": START, "not_after": END, "permissions": (CONTACTS, MANAGE),
              "directory_role": "Exchange Administrator"}
    return Expected(**{**values, **changes})


def app(**changes) -> dict:
    values = {"uniqueName": "certauth-x", "displayName": "Itrezzo (a@contoso.com)",
              "keyCredentials": [{"customKeyIdentifier": bytes.fromhex(THUMBPRINT), "key": None,
                                  "startDateTime": START, "endDateTime": END}],
              "requiredResourceAccess": {GRAPH: {CONTACTS[2].lower()}, EXCHANGE: {MANAGE[2]}}}
    return {**values, **changes}


def everything() -> Observed:
    return Observed(app(), "sp", {(GRAPH, CONTACTS[2].lower()), (EXCHANGE, MANAGE[2])})


def test_a_complete_setup_is_verified_and_the_role_is_never_claimed() -> None:
    result = compare(expected(), everything())
    assert result["missing"] == []
    assert "permission Contacts.ReadWrite granted" in result["verified"]
    assert "permission Exchange.ManageAsApp requested" in result["verified"]
    assert "service principal exists" in result["verified"]
    assert not any(item.startswith("directory role") for item in result["verified"])
    assert [i for i in result["notVerified"] if i.startswith("directory role Exchange Administrator: not readable")]


def test_each_missing_item_is_named() -> None:
    observed = everything()
    observed.granted = {(EXCHANGE, MANAGE[2])}
    observed.application = app(requiredResourceAccess={GRAPH: {CONTACTS[2].lower()}})
    result = compare(expected(), observed)
    assert result["missing"] == ["permission Exchange.ManageAsApp not requested by the application",
                                 "permission Contacts.ReadWrite not granted"]


def test_a_certificate_not_on_the_app_or_with_dates_outside_its_validity_is_missing() -> None:
    observed = everything()
    observed.application = app(keyCredentials=[])
    assert compare(expected(), observed)["missing"] == [f"certificate {THUMBPRINT} not among the application's "
                                                         "keyCredentials"]
    observed.application = app(keyCredentials=[{"customKeyIdentifier": bytes.fromhex(THUMBPRINT), "key": None,
                                                "startDateTime": START, "endDateTime": datetime(2032, 1, 1,
                                                                                                tzinfo=UTC)}])
    assert "outside the certificate's validity" in compare(expected(), observed)["missing"][0]


def test_no_application_or_service_principal_leaves_the_rest_not_verified() -> None:
    result = compare(expected(), Observed())
    assert result["missing"] == ["application certauth-x not found (nor one named 'Itrezzo (a@contoso.com)')"]
    assert "permission Contacts.ReadWrite granted" in result["notVerified"]
    result = compare(expected(), Observed(app(), None, None))
    assert "service principal not found" in result["missing"]
    assert "permission Contacts.ReadWrite granted" in result["notVerified"]


def test_a_profile_without_exchange_says_the_role_is_not_verifiable() -> None:
    result = compare(expected(exchange_in_profile=False, permissions=(CONTACTS,)), everything())
    assert [i for i in result["notVerified"] if i.startswith("directory role")] == [
        "directory role Exchange Administrator: not verifiable with this profile (it has no Exchange.ManageAsApp "
        "for Exchange's proof)"]


def test_only_exchange_proving_the_role_moves_it_to_verified() -> None:
    result = compare(expected(), everything())
    assert with_exchange_proof(result, None, "Exchange Administrator") == result
    assert with_exchange_proof(result, {"outcome": "notVerifiable"}, "Exchange Administrator") == result
    proven = with_exchange_proof(result, {"outcome": "proven", "detail": "200"}, "Exchange Administrator")
    assert f"directory role Exchange Administrator: {ROLE_PROVEN}" in proven["verified"]
    assert not any(i.startswith("directory role") for i in proven["notVerified"])
