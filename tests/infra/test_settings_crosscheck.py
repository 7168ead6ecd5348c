"""The app settings the Bicep sets against the settings the code reads, both ways.

- Every setting shared/settings.py reads (ENV_NAMES, and its fallbacks), and every %SETTING% in a binding or in
  host.json, is set by the Bicep app settings or has a default in the code (a binding expression has none).
- Every setting the Bicep sets is read by the code, or is on HOST_SETTINGS: settings the Functions host reads.
- Nothing in shared/ or functions/ reads the environment except shared/settings.py, so ENV_NAMES is the whole list.

Each rule is shown to fail by mutation: a setting added to a copy of the code only, a binding expression in a
throw-away app, an extra setting in a copy of a template, an environment read in a copy of a module.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

from tests.infra import bicep
from tests.infra.bicep import ROOT

SETTINGS_PY = ROOT / "shared" / "settings.py"
BINDING = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")

# Read by the Functions host (or the platform), not by certauth's code; each with why the Bicep sets it.
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential": "identity-based host storage: the managed identity, no connection string",
    "AzureWebJobsStorage__clientId": "which identity: the user-assigned one",
    "AzureWebJobsStorage__blobServiceUri": "host blobs, the Durable provider's leases and large messages",
    "AzureWebJobsStorage__queueServiceUri": "the Durable Azure Storage provider's queues",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host and the worker send telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra authentication for telemetry (local auth is off)",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type":
        "host.json override: the Durable Task Scheduler backend (azureManaged)",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName":
        "host.json override: the setting that holds the scheduler's connection",
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING": "the scheduler's endpoint and identity (no secret)",
}
# Read by the code, deliberately not set on Azure; each with why.
UNSET_ON_AZURE = {
    "TABLES_CONNECTION_STRING": "a connection string would carry an account key: TABLES_ENDPOINT and the "
                                "identity serve the product's tables instead",
}


def load_settings_module(path: Path):
    """shared/settings.py (or an edited copy of it) as a fresh module object (it imports only the stdlib)."""
    spec = importlib.util.spec_from_file_location(f"settings_under_check_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def code_settings(module) -> dict[str, bool]:
    """Each application setting the settings module reads → whether the code has a default for it."""
    defaults = {f.name: f.default for f in dataclasses.fields(module.Settings)}
    read = {env: defaults.get(field) not in (None, dataclasses.MISSING) for field, env in module.ENV_NAMES.items()}
    fallback = module.TABLES_CONNECTION_FALLBACK  # AzureWebJobsStorage and its identity-based forms, all optional
    for name in (fallback, f"{fallback}__tableServiceUri", f"{fallback}__accountName"):
        read.setdefault(name, True)
    return read


def binding_settings(module: str, cwd: Path) -> set[str]:
    """The %SETTING% names in the bindings of `module`'s app, read in a fresh interpreter (get_functions() works
    once per app object)."""
    code = ("import importlib, json, re, sys; app = importlib.import_module(sys.argv[1]).app; "
            "print(json.dumps(sorted({n for f in app.get_functions() "
            f"for n in re.findall({BINDING.pattern!r}, f.get_function_json())}})))")
    result = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, cwd=cwd,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def host_json_settings(path: Path) -> set[str]:
    """The %SETTING% names in host.json's values."""
    return set(BINDING.findall(path.read_text()))


def crosscheck(code: dict[str, bool], expressions: set[str], deployed: set[str]) -> tuple[list[str], list[str]]:
    """(settings the code needs that the Bicep leaves unset, settings the Bicep sets that nothing reads)."""
    unset = sorted({name for name, has_default in code.items()
                    if not has_default and name not in deployed and name not in UNSET_ON_AZURE}
                   | {name for name in expressions if name not in deployed})
    unread = sorted(name for name in deployed if name not in code and name not in expressions
                    and name not in HOST_SETTINGS)
    return unset, unread


def environment_reads(paths: list[Path]) -> list[str]:
    """`file:line` of each os.environ / os.getenv / getenv use in the given modules."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = (node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None)
            if name in ("environ", "getenv", "putenv"):
                found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{node.lineno}")
    return found


def deployed_settings(paths: list[Path] | None = None) -> set[str]:
    return bicep.app_settings([bicep.parse(p) for p in (paths or bicep.app_templates())])


def the_product_now() -> tuple[dict[str, bool], set[str], set[str]]:
    code = code_settings(load_settings_module(SETTINGS_PY))
    expressions = binding_settings("function_app", ROOT) | host_json_settings(ROOT / "host.json")
    return code, expressions, deployed_settings()


# -- the checks ------------------------------------------------------------------------------------------

def test_the_bicep_sets_what_the_code_needs_and_nothing_it_does_not_read():
    code, expressions, deployed = the_product_now()
    assert {"CERTAUTH_EXPIRY_SCHEDULE", "TASKHUB_NAME"} <= expressions
    unset, unread = crosscheck(code, expressions, deployed)
    assert unset == [], f"read by the code without a default, not set by infra/ app settings: {unset}"
    assert unread == [], f"set by infra/ app settings, read by nobody (or add to HOST_SETTINGS with why): {unread}"


def test_only_shared_settings_reads_the_environment():
    modules = [p for p in sorted((ROOT / "shared").glob("*.py")) + sorted((ROOT / "functions").glob("*.py"))
               + [ROOT / "function_app.py"] if p != SETTINGS_PY]
    assert environment_reads(modules) == []
    assert environment_reads([SETTINGS_PY]) != []  # the scan does find a read where there is one


# -- the same checks, failing on purpose -------------------------------------------------------------------

def test_a_setting_added_to_the_code_only_is_reported(tmp_path):
    source = SETTINGS_PY.read_text()
    anchor = '    "audit_retention_days": "CERTAUTH_AUDIT_RETENTION_DAYS",\n'
    assert anchor in source
    mutated = source.replace(anchor, anchor + '    "fake_setting": "CERTAUTH_FAKE_SETTING",\n')
    field_anchor = "    alert_mail_to: str | None = None"
    assert field_anchor in mutated
    mutated = mutated.replace(field_anchor, "    fake_setting: str | None = None\n" + field_anchor)
    copy = tmp_path / "settings.py"
    copy.write_text(mutated)
    code = code_settings(load_settings_module(copy))
    _, expressions, deployed = the_product_now()
    unset, unread = crosscheck(code, expressions, deployed)
    assert unset == ["CERTAUTH_FAKE_SETTING"]
    assert unread == []
    # With a default in the code, the same setting needs no app setting.
    code["CERTAUTH_FAKE_SETTING"] = True
    assert crosscheck(code, expressions, deployed) == ([], [])


def test_a_binding_expression_added_to_the_app_only_is_reported(tmp_path):
    (tmp_path / "mutated_app.py").write_text(
        "import azure.functions as func\n\napp = func.FunctionApp()\n\n\n"
        "@app.timer_trigger(arg_name='timer', schedule='%CERTAUTH_FAKE_SCHEDULE%')\n"
        "def fake(timer) -> None:\n    pass\n")
    expressions = binding_settings("mutated_app", tmp_path)
    assert expressions == {"CERTAUTH_FAKE_SCHEDULE"}
    code, current, deployed = the_product_now()
    unset, _ = crosscheck(code, current | expressions, deployed)
    assert unset == ["CERTAUTH_FAKE_SCHEDULE"]


def test_a_setting_added_to_the_bicep_only_is_reported(tmp_path):
    main = (bicep.INFRA / "main.bicep").read_text()
    anchor = "  TASKHUB_NAME: taskHubName\n"
    assert anchor in main
    copy = tmp_path / "main.bicep"
    copy.write_text(main.replace(anchor, anchor + "  CERTAUTH_NOBODY_READS_THIS: 'x'\n"))
    deployed = deployed_settings([copy, *bicep.app_templates()[1:]])
    code, expressions, _ = the_product_now()
    assert crosscheck(code, expressions, deployed) == ([], ["CERTAUTH_NOBODY_READS_THIS"])


def test_an_environment_read_outside_settings_is_reported(tmp_path):
    copy = tmp_path / "alerts.py"
    copy.write_text((ROOT / "shared" / "alerts.py").read_text() + "\n\nimport os\nWEBHOOK = os.environ.get('X')\n")
    assert environment_reads([copy]) == [f"alerts.py:{len(copy.read_text().splitlines())}"]
