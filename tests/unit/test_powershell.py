"""shared/powershell.py: the manual method's script, parsed with tree-sitter-powershell against a hostile corpus.

GUIDs, the certificate and the dates are validated, so hostile text goes where strings go: the display name
(the mailbox, and the prefix, which is a setting), the uniqueName (also inside an OData literal), permission
values, the role's name, the onboarding id and the URLs. For every input the tests prove: no parse errors; the
same commands in the same order; the value only inside string literals; ASCII after the BOM; and the
literals and [char] pieces reassembling the original value."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from shared import catalog, powershell
from shared.models import exchange_address
from shared.onboarding import application_display_name
from shared.settings import Settings
from tests.powershell_admin import (
    PSChar,
    command_names,
    evaluate_assignments,
    parse,
    syntax_errors,
    text,
    unquote,
    walk,
)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(days=365)
ROLE = catalog.directory_role("exchange-administrator")

# Every kind of quote, backticks, subexpressions, variables, statement separators, pipes, call operators,
# comment delimiters, here-string openers, long and non-ASCII strings.
HOSTILE_TEXT = [
    "o'brien",
    "'; Remove-Item -Recurse C:\\ ; '",
    "\"; Remove-Item -Recurse C:\\ ; \"",
    "`$(Remove-Item C:\\)`",
    "$(Remove-Item C:\\)",
    "${env:USERPROFILE}",
    "$env:PATH $null $true",
    "a;b|c&d && e || f",
    "#> Write-Host pwned <#",
    "<# open comment",
    "@' here-string '@ @\" here \"@",
    "x' + (Get-Date) + 'y",
    "\u2018; Remove-Item C:\\; \u2019",
    "\u2019\u2019\u2019",
    "\u201a$(x)\u201b",
    "\u201c$(x)\u201d\u201e",
    "`n`r`0 `'",
    "[char]0x27 + 'x'",
    "Zo\u00eb \u00c5ngstr\u00f6m \u2013 \u65e5\u672c\u8a9e \U0001f600",
    "\u2013\u2013",
    "\u202e reversed",
    "x" * 3000 + "'$(y)",
]
# Service mailboxes Exchange accepts (shared/models.exchange_address), each as hostile as its rule allows.
HOSTILE_MAILBOXES = [
    "o'brien@contoso.com",
    "'$x`{y}|&#%*+/=?^_~!@contoso.com",
    "a'+'b@contoso.com",
    "`$env`@contoso.com",
    "{}|&&'#=?@contoso.com",
]
FIELDS = ("display_name", "unique_name", "permission_value", "role_name", "onboarding_id", "verify_url",
          "admin_consent_url")


@pytest.fixture(scope="module")
def certificate():
    """A self-signed certificate: (base64 DER, SHA-1 hex)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certauth unit")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(START).not_valid_after(END)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode(), hashlib.sha1(der).hexdigest()


def arguments(certificate, **values) -> dict:
    """Keyword arguments of onboarding_script: benign values, with `values` in place."""
    der, thumbprint = certificate
    permission = values.pop("permission_value", "Contacts.ReadWrite")
    role_name = values.pop("role_name", ROLE.display_name)
    base = {
        "tenant_id": TENANT, "unique_name": "certauth-0123456789abcdef0123456789abcdef",
        "display_name": "Itrezzo \u2013 certificate-based authorization \u2013 (svc@contoso.com)",
        "certificate_base64": der, "thumbprint": thumbprint, "not_before": START, "not_after": END,
        "required_resource_access": {
            catalog.MICROSOFT_GRAPH: [(permission, catalog.CONTACTS_READWRITE.app_role_id),
                                      ("User.Read.All", catalog.USER_READ_ALL.app_role_id)],
            catalog.EXCHANGE_ONLINE: [("Exchange.ManageAsApp", catalog.EXCHANGE_MANAGE_AS_APP.app_role_id)]},
        "directory_role": (ROLE.template_id, role_name),
        "onboarding_id": f"{TENANT}.0123456789abcdef0123", "verify_url": "https://certauth.example/verify",
        "admin_consent_url": "https://login.microsoftonline.com/x/adminconsent?client_id=y",
    }
    return {**base, **values}


def utf16(value: str) -> str:
    """A string assembled from UTF-16 code units (surrogate pairs joined), as PowerShell holds it."""
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def literal_ranges(tree) -> list[tuple[int, int]]:
    """Byte ranges of the string-literal nodes."""
    return [(n.start_byte, n.end_byte) for n in walk(tree.root_node) if n.type == "string_literal"]


def outside_literals(tree, source: bytes) -> str:
    """The source with every string literal blanked out."""
    out = bytearray(source)
    for start, end in literal_ranges(tree):
        out[start:end] = b" " * (end - start)
    return out.decode()


def leaf_tokens_outside_literals(tree, source: bytes) -> set[str]:
    """The leaf tokens that are not inside a string literal (hexadecimal [char] codes left out)."""
    ranges = literal_ranges(tree)
    return {text(source, n) for n in walk(tree.root_node)
            if n.child_count == 0 and n.type != "hexadecimal_integer_literal"
            and not any(s <= n.start_byte < e for s, e in ranges)}


def escaped_ascii_runs(value: str) -> list[str]:
    """The printable-ASCII runs of `value` as they appear in a single-quoted literal (quotes doubled)."""
    return [run.replace("'", "''") for run in re.findall(r"[ -~]+", value)]


@pytest.fixture(scope="module")
def baseline(certificate):
    """The benign script: its commands, the tokens and text outside its literals, its comments."""
    tree, source = parse(powershell.onboarding_script(**arguments(certificate)))
    assert syntax_errors(tree, source) == []
    return {"commands": command_names(tree, source), "tokens": leaf_tokens_outside_literals(tree, source),
            "outside": outside_literals(tree, source),
            "comments": [text(source, n) for n in walk(tree.root_node) if n.type == "comment"]}


def hostile_cases():
    for value in HOSTILE_TEXT:
        for field in FIELDS:
            yield pytest.param(field, value, id=f"{field}:{value[:24]!r}")
    for mailbox in HOSTILE_MAILBOXES:
        yield pytest.param("display_name", application_display_name(Settings(), exchange_address(mailbox)),
                           id=f"mailbox:{mailbox[:24]!r}")


def assigned_value(values: dict, field: str):
    """Where each input lands in the script, as evaluated from the parse tree."""
    if field == "permission_value":
        return values["grants"][0].get_member("Value")
    return values[{"display_name": "displayname", "unique_name": "uniquename", "role_name": "rolename",
                   "onboarding_id": "onboardingid", "verify_url": "verifyurl",
                   "admin_consent_url": "adminconsenturl"}[field]]


def assert_value_stays_literal(served: bytes, baseline: dict, value: str) -> dict:
    """The checks of a served script (the setup or the removal one) that carries a hostile `value`, against the
    benign script's `baseline`; its evaluated assignments, for the caller to find the value in."""
    assert served.startswith(b"\xef\xbb\xbf")
    assert served[3:].isascii()
    tree, source = parse(served)
    assert syntax_errors(tree, source) == []
    # The same commands in the same order, and no token outside a literal that the benign script lacks.
    assert command_names(tree, source) == baseline["commands"]
    # ([char] pieces come and go with the value's non-ASCII characters.)
    assert leaf_tokens_outside_literals(tree, source) ^ baseline["tokens"] <= {"[", "char", "]", "+"}
    assert [text(source, n) for n in walk(tree.root_node) if n.type == "comment"] == baseline["comments"]
    assert not {n.type for n in walk(tree.root_node)} & {"expandable_string_literal", "expandable_here_string_literal",
                                                          "verbatim_here_string_characters", "sub_expression"}
    # Every piece of the value sits inside a string literal.
    outside = outside_literals(tree, source)
    for run in escaped_ascii_runs(value):
        if len(run.strip()) >= 3 and run not in baseline["outside"]:
            assert run not in outside, f"{run!r} appears outside a string literal"
    return evaluate_assignments(served)


@pytest.mark.parametrize(("field", "value"), list(hostile_cases()))
def test_hostile_values_stay_inside_string_literals(certificate, baseline, field, value):
    served = powershell.onboarding_script_bytes(**arguments(certificate, **{field: value}))
    values = assert_value_stays_literal(served, baseline, value)
    # The literals and [char] pieces reassemble the value.
    assert utf16(assigned_value(values, field)) == value
    if field == "unique_name":  # the filter is an OData literal inside the PowerShell literal
        match = re.fullmatch(r"uniqueName eq '((?:[^']|'')*)'", utf16(values["applicationfilter"]))
        assert match is not None
        assert match.group(1).replace("''", "'") == value


def test_the_script_opens_with_requires_and_checks_the_modules_before_it_signs_in(certificate):
    script = powershell.onboarding_script(**arguments(certificate))
    tree, source = parse(script)
    assert script.splitlines()[0] == "#Requires -Version 5.1"
    assert "#Requires -Modules" not in script
    commands = command_names(tree, source)
    assert commands.index("Get-Module") < commands.index("Connect-MgGraph")
    assert "Install-Module Microsoft.Graph.Applications, Microsoft.Graph.Identity.Governance" in script
    warning = script.index('do NOT tick "Consent on behalf of your organization"')
    assert warning < script.index("Connect-MgGraph")
    assert [c for c in commands if c != "Write-Host"] == [
        "Get-Module", "Connect-MgGraph", "Get-MgApplication", "Get-MgApplication", "Update-MgApplication",
        "Update-MgApplication", "New-MgApplication",
        "Get-MgServicePrincipal", "New-MgServicePrincipal",
        "Get-MgServicePrincipalAppRoleAssignment", "Get-MgServicePrincipal", "New-MgServicePrincipalAppRoleAssignment",
        "Get-MgRoleManagementDirectoryRoleAssignment", "New-MgRoleManagementDirectoryRoleAssignment"]


def connect_scopes(script: str) -> list[str]:
    tree, source = parse(script)
    [connect] = [n for n in walk(tree.root_node) if n.type == "command" and text(source, n).startswith("Connect-")]
    return [unquote(text(source, n)) for n in walk(connect) if n.type == "verbatim_string_characters"]


def test_the_role_scope_is_asked_only_with_a_role(certificate):
    with_role = powershell.onboarding_script(**arguments(certificate))
    without = powershell.onboarding_script(**arguments(certificate, directory_role=None))
    assert connect_scopes(with_role) == ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
                                         "RoleManagement.ReadWrite.Directory"]
    assert connect_scopes(without) == ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]
    assert "RoleManagement" not in without
    assert "-TenantId $tenantId" in with_role
    assert f"$tenantId = '{TENANT}'" in with_role


def test_it_ends_with_the_app_id_and_the_verify_url_or_says_certauth_notices(certificate):
    with_url = powershell.onboarding_script(**arguments(certificate)).splitlines()
    without = powershell.onboarding_script(**arguments(certificate, verify_url=None)).splitlines()
    assert any("AppId: ' + $app.AppId" in line for line in with_url)
    assert with_url[-1] == "Write-Host ('    ' + $verifyUrl)"
    assert "notices the setup by itself" in without[-1]
    assert any("$adminConsentUrl" in line for line in with_url)


def test_the_certificate_enters_as_a_key_credential_from_base64(certificate):
    script = powershell.onboarding_script(**arguments(certificate))
    values = evaluate_assignments(script)
    assert base64.b64encode(values["certificate"]).decode() == certificate[0]
    assert (values["keystart"], values["keyend"]) == (START, END)
    assert values["thumbprint"] == certificate[1].upper()
    assert "$key = @{ Type = 'AsymmetricX509Cert'; Usage = 'Verify'; Key = $certificate;" in script
    access = values["requiredresourceaccess"]
    assert [(a["ResourceAppId"], [r["Id"] for r in a["ResourceAccess"]]) for a in access] == [
        (catalog.MICROSOFT_GRAPH, [catalog.CONTACTS_READWRITE.app_role_id, catalog.USER_READ_ALL.app_role_id]),
        (catalog.EXCHANGE_ONLINE, [catalog.EXCHANGE_MANAGE_AS_APP.app_role_id])]


def test_every_profile_of_the_catalog_makes_a_script_that_parses(certificate):
    for profile in catalog.PROFILES.values():
        script = powershell.onboarding_script(**arguments(
            certificate, required_resource_access=powershell.profile_access(profile)))
        tree, source = parse(script)
        assert syntax_errors(tree, source) == []
        grants = evaluate_assignments(script)["grants"]
        assert [(g["ResourceAppId"], g["AppRoleId"], g["Value"]) for g in grants] == \
            [(p.resource_app_id, p.app_role_id, p.value) for p in sorted(
                profile.permissions, key=lambda p: list(profile.by_resource()).index(p.resource_app_id))]


# -- quoting ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["'", "\u2018", "\u2019", "\u201a", "\u201b", "a'\u2019b", "''\u2018\u2018"])
def test_every_single_quote_is_doubled_in_a_literal(value):
    literal = powershell.quote_literal(value)
    assert literal[1:-1] == "".join(c * 2 if c in "'\u2018\u2019\u201a\u201b" else c for c in value)
    assert unquote(literal) == value


def test_an_expression_starts_with_a_string_so_chars_concatenate():
    expression = powershell.string_expression("\u2013\u2013")
    assert expression == "'' + [char]0x2013 + [char]0x2013"
    assert evaluate_assignments(f"$x = {expression}\n")["x"] == "\u2013\u2013"
    # Without the leading '' PowerShell would add the two chars as numbers; the evaluator does the same.
    assert evaluate_assignments("$x = [char]0x2013 + [char]0x2013\n")["x"] == 2 * 0x2013
    assert isinstance(evaluate_assignments("$x = [char]0x41\n")["x"], PSChar)


def test_characters_beyond_the_bmp_are_two_utf16_units():
    expression = powershell.string_expression("\U0001f600")
    assert expression == "'' + [char]0xD83D + [char]0xDE00"
    assert utf16(evaluate_assignments(f"$x = {expression}\n")["x"]) == "\U0001f600"


# -- validation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "nul\x00", "esc\x1b[2J", "del\x7f", "nel\x85",
                                   "line\u2028sep", "para\u2029sep", "lone\ud800surrogate", ""])
@pytest.mark.parametrize("field", FIELDS)
def test_control_characters_and_empty_text_are_refused(certificate, field, value):
    with pytest.raises(ValueError, match="must"):
        powershell.onboarding_script(**arguments(certificate, **{field: value}))


@pytest.mark.parametrize("guid", ["'; Remove-Item C:\\; '", "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
                                  "72f988bf-86f1-41af-91ab-2d7cd011db47\n", "72f988bf86f141af91ab2d7cd011db47",
                                  "72f988bf-86f1-41af-91ab-2d7cd011db4g", "$(x)", ""])
def test_guids_are_validated_everywhere(certificate, guid):
    def with_resource(resource: str, role_id: str) -> dict:
        return {resource: [("Contacts.ReadWrite", role_id)]}

    for override in ({"tenant_id": guid},
                     {"required_resource_access": with_resource(guid, catalog.CONTACTS_READWRITE.app_role_id)},
                     {"required_resource_access": with_resource(catalog.MICROSOFT_GRAPH, guid)},
                     {"directory_role": (guid, "Exchange Administrator")}):
        with pytest.raises(ValueError, match="GUID"):
            powershell.onboarding_script(**arguments(certificate, **override))


def test_guids_are_written_in_canonical_form(certificate):
    script = powershell.onboarding_script(**arguments(certificate, tenant_id=TENANT.upper()))
    assert evaluate_assignments(script)["tenantid"] == TENANT


@pytest.mark.parametrize("der", ["not base64!", "QUJD')+(Get-Date)+('", "QUJD", "QUJDRA=", "Zm9v\u2019"])
def test_the_certificate_must_be_base64_of_a_certificate(certificate, der):
    with pytest.raises(ValueError, match="certificate"):
        powershell.onboarding_script(**arguments(certificate, certificate_base64=der))


def test_the_certificate_may_carry_line_breaks_and_is_written_canonical(certificate):
    der = certificate[0]
    wrapped = "\n".join(der[i:i + 64] for i in range(0, len(der), 64))
    script = powershell.onboarding_script(**arguments(certificate, certificate_base64=wrapped))
    assert f"[Convert]::FromBase64String('{der}')" in script


@pytest.mark.parametrize("override", [
    {"thumbprint": "00" * 20}, {"thumbprint": "'; x"}, {"thumbprint": "ab" * 21},
    {"not_before": START - timedelta(seconds=1)}, {"not_after": END + timedelta(seconds=1)},
    {"not_before": END, "not_after": START}, {"not_before": START.replace(tzinfo=None)},
])
def test_thumbprint_and_dates_must_match_the_certificate(certificate, override):
    with pytest.raises(ValueError, match=r"thumbprint|dates|datetime"):
        powershell.onboarding_script(**arguments(certificate, **override))


def test_a_profile_without_permissions_is_refused(certificate):
    with pytest.raises(ValueError, match="at least one permission"):
        powershell.onboarding_script(**arguments(certificate, required_resource_access={}))


def test_the_file_name_carries_the_tenant():
    assert powershell.script_filename(TENANT.upper()) == f"certauth-{TENANT}.ps1"
    with pytest.raises(ValueError, match="GUID"):
        powershell.script_filename("../../etc/passwd")
