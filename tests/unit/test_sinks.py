"""Every place a service mailbox goes is safe for every address Exchange's rule allows (issue 9, item 5).

The rule (shared/models.py) lets in ! # $ % & ' * + - / = ? ^ _ ` { | } ~ before the @. Narrowing the input is
no defence, so each sink is checked with hostile but valid addresses: OData filters, the app's display name, the
certificate subject, Table Storage keys and values, and logs. Values that break the rule are refused first.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import re
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from sandbox.azure.keyvault_crypto import MaterialError, parse_subject
from shared import catalog
from shared.graph import _guid
from shared.keyvault import NAME_RULE, certificate_name
from shared.models import MAILBOX_RULE, RequestError, exchange_address, parse_onboarding_request
from shared.onboarding import (
    DISPLAY_NAME_MAX_LENGTH,
    application_display_name,
    application_unique_name,
    certificate_subject,
)
from shared.settings import Settings
from shared.state import StateStore, onboarding_id, table_key
from tests.mailboxes import HOSTILE_VALID

REPO = Path(__file__).resolve().parents[2]
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

# Values the rule refuses, each for its own reason.
REFUSED = [
    '"quoted"@contoso.com',
    '"a b"@contoso.com',
    "a\\b@contoso.com",
    "a,b@contoso.com",
    "a;b@contoso.com",
    "a<b>@contoso.com",
    "a(b)@contoso.com",
    "a[b]@contoso.com",
    "a:b@contoso.com",
    "a b@contoso.com",
    "a@b@contoso.com",
    ".a@contoso.com",
    "a.@contoso.com",
    "a..b@contoso.com",
    "x" * 65 + "@contoso.com",
    "sync@contoso.com\r\nBcc: x@evil.example",
    "sync\x00@contoso.com",
    "sync\u2028@contoso.com",
    "syñc@contoso.com",
    "sync@contoso",
    "sync@-contoso.com",
    "sync@contoso-.com",
    "sync@contoso..com",
    "sync@contoso.com.",
    "sync@" + "a" * 64 + ".com",
    "sync@127.0.0.1",
    "sync@[127.0.0.1]",
    "sync@contoso.com' or 1 eq 1",
    "sync@contoso_com.com",
    "@contoso.com",
    "sync@",
    "sync",
]


def _settings(prefix: str | None = None) -> Settings:
    settings = Settings()
    return settings if prefix is None else dataclasses.replace(settings, app_display_name_prefix=prefix)


# -- the rule -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mailbox", HOSTILE_VALID)
def test_exchange_valid_addresses_are_accepted_and_kept_as_written(mailbox):
    request = parse_onboarding_request(json.dumps({"tenantId": TENANT, "serviceMailbox": mailbox}).encode())
    assert request.service_mailbox == mailbox.lower()


@pytest.mark.parametrize("mailbox", REFUSED)
def test_other_values_are_refused_naming_the_field_and_the_rule(mailbox):
    with pytest.raises(RequestError) as refused:
        parse_onboarding_request(json.dumps({"tenantId": TENANT, "serviceMailbox": mailbox}).encode())
    [problem] = refused.value.problems
    assert problem["field"] == "serviceMailbox"
    assert problem["rule"].startswith(MAILBOX_RULE), problem
    assert "this one " in problem["rule"]  # and says what is wrong with this value


def test_the_rule_names_every_character_it_allows():
    for char in "!#$%&'*+-/=?^_`{|}~":
        assert f" {char} " in MAILBOX_RULE or f" {char}," in MAILBOX_RULE
        assert exchange_address(f"a{char}b@contoso.com") == f"a{char}b@contoso.com"


def test_a_refusal_says_which_characters_are_wrong():
    with pytest.raises(ValueError, match=r"""has '"', '<' before the @"""):
        exchange_address('"<x@contoso.com')


def test_the_address_is_at_most_254_characters():
    domain = ".".join(["d" * 63] * 3) + "." + "e" * 57   # 249 characters: a valid DNS name
    assert len(domain) == 249
    assert exchange_address(f"abcd@{domain}")                       # 254
    with pytest.raises(ValueError, match="255 characters"):
        exchange_address(f"abcde@{domain}")


# -- OData filters: only GUIDs and catalog constants ------------------------------------------------------------

def _filter_interpolations(path: Path) -> list[str]:
    """The source of every value formatted into a `filter=` f-string in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "filter" and isinstance(node.value, ast.JoinedStr):
            found += [ast.unparse(part.value) for part in node.value.values if isinstance(part, ast.FormattedValue)]
    return found


def test_graph_filters_interpolate_only_guids_and_catalog_resource_ids():
    sources = {path.name: _filter_interpolations(path) for path in (REPO / "shared").glob("*.py")}
    interpolated = [value for values in sources.values() for value in values]
    assert interpolated, "no filter found: the check would be vacuous"
    for value in interpolated:
        assert re.fullmatch(r"_guid\(\w+\)|resource_app_id|odata_string\(\w+\)", value), (value, sources)
    # resource_app_id comes from the catalog (PermissionProfile.by_resource): every one is a GUID.
    resources = {p.resource_app_id for profile in catalog.PROFILES.values() for p in profile.permissions}
    assert resources
    assert all(_guid(r) == r for r in resources)


@pytest.mark.parametrize("mailbox", [*HOSTILE_VALID, "00000000-0000-0000-0000-000000000000' or 1 eq 1"])
def test_a_mailbox_cannot_pass_for_a_guid(mailbox):
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        _guid(mailbox)


def _constant_filters(function: ast.AST, name: str) -> list:
    """The values a local `name` is bound to in `function` (`name = "…"` or `name, parameters = "…", {…}`)."""
    values = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                values += [value for element, value in zip(target.elts, node.value.elts, strict=False)
                           if isinstance(element, ast.Name) and element.id == name]
    return values


def test_table_queries_bind_their_values_as_parameters():
    calls = []
    for path in [*(REPO / "shared").glob("*.py"), *(REPO / "functions").glob("*.py")]:
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "query_entities":
                    calls.append((path.name, function, node))
    assert calls
    for name, function, call in calls:
        query = call.args[0] if call.args else next(k.value for k in call.keywords if k.arg == "query_filter")
        # A filter is a constant, or a local bound only to constants (one of a few fixed filters).
        filters = [query] if isinstance(query, ast.Constant) else \
            _constant_filters(function, query.id) if isinstance(query, ast.Name) else [query]
        assert filters, f"{name}: {ast.unparse(query)} is never bound"
        for bound in filters:
            assert isinstance(bound, ast.Constant), f"{name}: a Table filter built from values"
            assert any(k.arg == "parameters" for k in call.keywords) or "@" not in bound.value


# -- display names ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mailbox", HOSTILE_VALID)
def test_the_display_name_is_the_prefix_and_the_mailbox_as_written(mailbox):
    settings = _settings()
    name = application_display_name(settings, mailbox)
    assert name == f"{settings.app_display_name_prefix} ({mailbox})"
    assert len(name) <= DISPLAY_NAME_MAX_LENGTH


def test_a_long_prefix_is_shortened_never_the_mailbox():
    mailbox = "x" * 64 + "@" + ".".join(["d" * 63, "d" * 63, "d" * 61])    # 254 characters
    assert len(mailbox) == 254
    for prefix in ("P" * 300, "Itrezzo \u2013 certificate-based authorization \u2013"):
        name = application_display_name(_settings(prefix), mailbox)
        assert name.endswith(f"({mailbox})")
        assert len(name) <= DISPLAY_NAME_MAX_LENGTH
    short = "sync@contoso.com"
    assert application_display_name(_settings("P" * 300), short) == "P" * (256 - len(short) - 3) + f" ({short})"


# -- the certificate subject ------------------------------------------------------------------------------------

QUOTED_CN = re.compile(r'^CN="(?:[^"]|"")*"$')


@pytest.mark.parametrize("mailbox", HOSTILE_VALID)
def test_the_certificate_subject_is_one_quoted_cn_that_key_vault_reads_back(mailbox):
    subject = certificate_subject(_settings(), mailbox)
    assert QUOTED_CN.match(subject), subject
    # The simulator's Key Vault parser (KEYVAULT_SUBJECT_FACTS) gives one attribute: the CN as meant.
    [attribute] = parse_subject(subject)
    assert attribute.oid == NameOID.COMMON_NAME
    expected = f"certauth ({mailbox})"[:64]
    assert attribute.value == expected
    # X.520 caps a CN at 64 characters; cryptography refuses longer ones.
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, attribute.value)])


def test_a_short_prefix_keeps_the_display_name_as_cn_and_quotes_are_doubled():
    subject = certificate_subject(_settings('My "App", Inc.;'), "a+b=c@contoso.com")
    assert subject == 'CN="My ""App"", Inc.; (a+b=c@contoso.com)"'
    [attribute] = parse_subject(subject)
    assert attribute.value == 'My "App", Inc.; (a+b=c@contoso.com)'


def test_the_simulator_refuses_what_key_vault_refuses_in_a_subject():
    # An unquoted comma inside a value (MicrosoftDocs/azure-docs#62463), an unterminated quote.
    for subject in ("CN=a, Inc.", 'CN="open', 'CN="a" b'):
        with pytest.raises(MaterialError):
            parse_subject(subject)


# -- Table Storage keys --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mailbox", HOSTILE_VALID)
def test_every_key_and_name_built_for_a_mailbox_is_a_hash(mailbox):
    oid = onboarding_id(TENANT, mailbox)
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.[0-9a-f]{20}", oid)
    assert table_key(oid) == oid
    assert NAME_RULE.match(certificate_name(oid))
    assert re.fullmatch(r"certauth-[0-9a-f]{32}", application_unique_name(oid))


@pytest.mark.parametrize("value", ["a/b", "a\\b", "a#b", "a?b", "a\tb", "a\nb", "a\x7fb", "a\x85b", "", "k" * 1025])
def test_table_key_refuses_what_table_storage_refuses(value):
    with pytest.raises(ValueError, match="not a Table Storage key"):
        table_key(value)


def test_the_store_refuses_a_raw_mailbox_as_a_key():
    store = StateStore("UseDevelopmentStorage=true")   # no request is made: the key is refused first
    with pytest.raises(ValueError, match="not a Table Storage key"):
        store.audit("a/b#c?d@contoso.com", "x", None, key="k")
    with pytest.raises(ValueError, match="not a Table Storage key"):
        store.upsert_certificate(f"{TENANT}.a/b#c?d@contoso.com", {})


def test_hostile_mailboxes_round_trip_through_table_storage(azurite):
    from datetime import UTC, datetime

    store = StateStore(azurite.connection_string)
    try:
        for mailbox in HOSTILE_VALID:
            tenant = str(uuid.uuid4())
            oid = onboarding_id(tenant, mailbox)
            assert store.create_onboarding(oid, {"TenantId": tenant, "ServiceMailbox": mailbox})
            store.upsert_certificate(oid, {"ServiceMailbox": mailbox})
            store.audit(oid, "onboarding.accepted", datetime.now(UTC), {"ServiceMailbox": mailbox})
            assert store.get_onboarding(oid).entity["ServiceMailbox"] == mailbox
            [entry] = store.audit_trail(oid)
            assert entry["ServiceMailbox"] == mailbox
            assert (entry["PartitionKey"], entry["Event"]) == (oid, "onboarding.accepted")
    finally:
        store.close()


# -- logs -------------------------------------------------------------------------------------------------------

def test_log_calls_pass_values_as_arguments():
    """A message built with an f-string or % would let a mailbox's % and braces reach the formatter."""
    offenders = []
    for path in [*(REPO / "shared").glob("*.py"), *(REPO / "functions").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("debug", "info", "warning", "error", "exception", "critical")
                    and getattr(node.func.value, "id", None) in ("log", "logger", "logging") and node.args
                    and isinstance(node.args[0], (ast.JoinedStr, ast.BinOp))):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders


@pytest.mark.parametrize("mailbox", HOSTILE_VALID)
def test_a_logged_mailbox_is_one_line_and_formats_as_written(mailbox, caplog):
    log = logging.getLogger("certauth.test_sinks")
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("onboarding %s for %s started", onboarding_id(TENANT, mailbox), mailbox)
    [record] = caplog.records
    message = record.getMessage()
    assert "\n" not in message
    assert "\r" not in message
    assert message.endswith(f"for {mailbox} started")



@pytest.mark.parametrize("value", [*HOSTILE_VALID, "it's", "''", "x' or 1 eq 1 or 'y"])
def test_an_odata_string_literal_holds_any_value(value):
    from shared.graph import odata_string

    literal = odata_string(value)
    assert literal.startswith("'")
    assert literal.endswith("'")
    inside = literal[1:-1]
    # No single quote stands alone inside: each is doubled, so the literal cannot end early.
    assert "'" not in inside.replace("''", "")
    assert inside.replace("''", "'") == value
