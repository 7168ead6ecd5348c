"""Offboarding's pure parts: the manual method's removal script (shared/powershell.py removal_script), parsed with
tree-sitter-powershell and run by the test evaluator against an in-memory directory; the offboarding's lifecycle
word; the expiry monitor's view of an offboarding under way."""

from __future__ import annotations

import json

import pytest

from functions.offboarding import _lifecycle
from shared import powershell
from shared.expiry import offboarding_active
from shared.models import exchange_address
from shared.offboarding import offboarding_instance_id, offboarding_of
from shared.onboarding import application_display_name
from shared.settings import Settings
from tests.powershell_admin import (
    Hashtable,
    Interpreter,
    command_names,
    parse,
    syntax_errors,
    text,
    walk,
)
from tests.unit.test_powershell import (
    HOSTILE_MAILBOXES,
    HOSTILE_TEXT,
    assert_value_stays_literal,
    leaf_tokens_outside_literals,
    outside_literals,
    utf16,
)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP_ID = "11111111-2222-3333-4444-555555555555"
FIELDS = {"display_name": "displayname", "unique_name": "uniquename", "onboarding_id": "onboardingid"}


def arguments(**values) -> dict:
    base = {"tenant_id": TENANT, "unique_name": "certauth-0123456789abcdef0123456789abcdef",
            "display_name": "Itrezzo \u2013 certificate-based authorization \u2013 (svc@contoso.com)",
            "app_id": APP_ID, "onboarding_id": f"{TENANT}.0123456789abcdef0123"}
    return {**base, **values}


@pytest.fixture(scope="module", params=[False, True], ids=["soft", "permanent"])
def baseline(request):
    permanent = request.param
    tree, source = parse(powershell.removal_script(**arguments(permanent=permanent)))
    assert syntax_errors(tree, source) == []
    return {"permanent": permanent, "commands": command_names(tree, source),
            "tokens": leaf_tokens_outside_literals(tree, source), "outside": outside_literals(tree, source),
            "comments": [text(source, n) for n in walk(tree.root_node) if n.type == "comment"]}


def hostile_cases():
    for value in HOSTILE_TEXT:
        for field in FIELDS:
            yield pytest.param(field, value, id=f"{field}:{value[:24]!r}")
    for mailbox in HOSTILE_MAILBOXES:
        yield pytest.param("display_name", application_display_name(Settings(), exchange_address(mailbox)),
                           id=f"mailbox:{mailbox[:24]!r}")


@pytest.mark.parametrize(("field", "value"), list(hostile_cases()))
def test_hostile_values_stay_inside_string_literals_of_the_removal_script(baseline, field, value):
    served = powershell.removal_script_bytes(**arguments(permanent=baseline["permanent"], **{field: value}))
    values = assert_value_stays_literal(served, baseline, value)
    assert utf16(values[FIELDS[field]]) == value


def test_the_removal_script_removes_in_the_automatic_order_and_only_then_from_deleted_items(baseline):
    commands = baseline["commands"]
    removals = [c for c in commands if c.startswith("Remove-")]
    if baseline["permanent"]:
        assert removals == ["Remove-MgRoleManagementDirectoryRoleAssignment",
                            "Remove-MgServicePrincipalAppRoleAssignment", "Remove-MgServicePrincipal",
                            "Remove-MgDirectoryDeletedItem", "Remove-MgApplication",
                            "Remove-MgDirectoryDeletedItem", "Remove-MgDirectoryDeletedItem",
                            "Remove-MgDirectoryDeletedItem"]
        assert "Get-MgDirectoryDeletedItemAsApplication" in commands
    else:
        assert removals == ["Remove-MgRoleManagementDirectoryRoleAssignment",
                            "Remove-MgServicePrincipalAppRoleAssignment", "Remove-MgServicePrincipal",
                            "Remove-MgApplication"]
        assert not any("DeletedItem" in c for c in commands)
    # Modules are checked before Connect-MgGraph, which asks only the removal's scopes.
    assert commands.index("Get-Module") < commands.index("Connect-MgGraph") < commands.index("Get-MgApplication")
    script = powershell.removal_script(**arguments(permanent=baseline["permanent"]))
    assert ("Connect-MgGraph -TenantId $tenantId -Scopes 'Application.ReadWrite.All', "
            "'AppRoleAssignment.ReadWrite.All', 'RoleManagement.ReadWrite.Directory' -NoWelcome") in script
    assert ("'Microsoft.Graph.Identity.DirectoryManagement'" in script) is baseline["permanent"]


class Directory:
    """An in-memory tenant for the evaluator: the cmdlets the removal script calls, and what they did."""

    def __init__(self, app: bool = True, sp: bool = True) -> None:
        self.apps = {"app-1": Hashtable(Id="app-1", AppId=APP_ID)} if app else {}
        self.sps = {"sp-1": Hashtable(Id="sp-1", AppId=APP_ID)} if sp else {}
        self.roles = {"ra-1": Hashtable(Id="ra-1", RoleDefinitionId="r", PrincipalId="sp-1")} if sp else {}
        self.grants = {f"g-{i}": Hashtable(Id=f"g-{i}", AppRoleId=f"role-{i}") for i in range(2)} if sp else {}
        self.deleted: dict[str, Hashtable] = {}
        self.calls: list[tuple[str, dict]] = []

    def commands(self) -> dict:
        def record(name, handler):
            def run(params, positional):
                assert positional == [] or name == "write-host", (name, positional)
                self.calls.append((name, params))
                return handler(params)
            return run

        def app_filter(params):
            wanted = params["filter"]
            return [a for a in self.apps.values() if wanted.startswith("uniqueName") or f"'{a['AppId']}'" in wanted]

        def delete(store_name):
            def run(params):
                store = getattr(self, store_name)
                key = next(v for k, v in params.items() if k.endswith("id"))
                self.deleted[key] = store.pop(key)
                return []
            return run

        def forget(store_name, parameter):
            def run(params):
                del getattr(self, store_name)[params[parameter]]
                return []
            return run

        def purge(params):
            self.deleted.pop(params["directoryobjectid"], None)
            return []

        handlers = {
            "write-host": lambda params: [], "get-module": lambda params: [Hashtable(Name=params["name"])],
            "connect-mggraph": lambda params: [],
            "get-mgapplication": app_filter,
            "get-mgserviceprincipal": lambda params: [s for s in self.sps.values() if s["AppId"] in params["filter"]],
            "get-mgrolemanagementdirectoryroleassignment": lambda params: list(self.roles.values()),
            "remove-mgrolemanagementdirectoryroleassignment": forget("roles", "unifiedroleassignmentid"),
            "get-mgserviceprincipalapproleassignment": lambda params: list(self.grants.values()),
            "remove-mgserviceprincipalapproleassignment": forget("grants", "approleassignmentid"),
            "remove-mgserviceprincipal": delete("sps"), "remove-mgapplication": delete("apps"),
            "get-mgdirectorydeleteditemasapplication": lambda params: [v for k, v in self.deleted.items()
                                                                       if k.startswith("app")],
            "get-mgdirectorydeleteditemasserviceprincipal": lambda params: [v for k, v in self.deleted.items()
                                                                            if k.startswith("sp")],
            "remove-mgdirectorydeleteditem": purge,
        }
        return {name: record(name, handler) for name, handler in handlers.items()}

    def writes(self) -> list[str]:
        return [name for name, _ in self.calls if name.startswith("remove-")]


@pytest.mark.parametrize("permanent", [False, True])
def test_the_removal_script_removes_everything_once_and_a_second_run_removes_nothing(permanent):
    script = powershell.removal_script(**arguments(permanent=permanent))
    directory = Directory()
    assert Interpreter(script, directory.commands()).run() == 0
    assert (directory.apps, directory.sps, directory.roles, directory.grants) == ({}, {}, {}, {})
    assert set(directory.deleted) == (set() if permanent else {"app-1", "sp-1"})
    first = directory.writes()
    assert first[:2] == ["remove-mgrolemanagementdirectoryroleassignment", "remove-mgserviceprincipalapproleassignment"]
    assert first.index("remove-mgserviceprincipal") < first.index("remove-mgapplication")
    directory.calls.clear()
    assert Interpreter(script, directory.commands()).run() == 0
    assert directory.writes() == []


def test_an_app_gone_already_still_loses_its_service_principal_by_the_recorded_app_id():
    directory = Directory(app=False, sp=True)
    assert Interpreter(powershell.removal_script(**arguments()), directory.commands()).run() == 0
    assert directory.sps == {}
    assert directory.grants == {}
    assert directory.roles == {}
    assert "remove-mgapplication" not in directory.writes()
    # Without a recorded appId nothing identifies the service principal: the script only reads.
    directory = Directory(app=False, sp=True)
    assert Interpreter(powershell.removal_script(**arguments(app_id=None)), directory.commands()).run() == 0
    assert directory.writes() == []


def test_a_permanent_rerun_empties_what_an_earlier_run_left_in_deleted_items():
    directory = Directory(app=False, sp=False)
    directory.deleted = {"app-1": Hashtable(Id="app-1", AppId=APP_ID), "sp-1": Hashtable(Id="sp-1", AppId=APP_ID)}
    assert Interpreter(powershell.removal_script(**arguments(app_id=None, permanent=True)),
                       directory.commands()).run() == 0
    assert directory.deleted == {}
    assert directory.writes() == ["remove-mgdirectorydeleteditem", "remove-mgdirectorydeleteditem"]


@pytest.mark.parametrize("field", ["tenant_id", "app_id"])
def test_guids_of_the_removal_script_are_validated(field):
    with pytest.raises(ValueError, match=field):
        powershell.removal_script(**arguments(**{field: "not-a-guid"}))


def test_the_removal_script_file_name_carries_the_tenant():
    assert powershell.removal_script_filename(TENANT.upper()) == f"certauth-remove-{TENANT}.ps1"


@pytest.mark.parametrize(("recorded", "runtime", "active", "expected"), [
    ("running", "Running", True, "running"),
    ("waitingForAdmin", "ContinuedAsNew", True, "waitingForAdmin"),
    ("retired", "Running", True, "running"),       # a new run of a retired onboarding (permanent after soft)
    ("retired", "Completed", False, "retired"),
    ("failed", "Failed", False, "failed"),
    ("expired", "Completed", False, "expired"),
    ("running", "Terminated", False, "failed"),    # ended without recording its end
    ("waitingForAdmin", None, False, "failed"),
])
def test_the_offboarding_status_follows_the_record_and_the_runtime(recorded, runtime, active, expected):
    assert _lifecycle({"state": recorded}, runtime, active) == expected


def test_the_expiry_monitor_leaves_an_offboarding_under_way_alone():
    assert offboarding_active({"Offboarding": json.dumps({"state": "running"})})
    assert offboarding_active({"Offboarding": json.dumps({"state": "waitingForAdmin"})})
    assert not offboarding_active({"Offboarding": json.dumps({"state": "failed"})})
    assert not offboarding_active({"Offboarding": "not json"})
    assert not offboarding_active({})
    assert offboarding_of({"Offboarding": "[1]"}) == {}
    assert offboarding_instance_id("t.x") == "offboarding-t.x"
