"""Importing the Function App stays light: the heavy SDKs load inside activities, not at import.

The Functions host imports function_app to index the app, on every new instance (Flex Consumption scales out
from zero), so what it imports is cold start. Each check runs in a fresh interpreter: this test process has
imported everything already. Times are measured by bench/onboarding.py (part 3), not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE_DFAPP = "import azure.durable_functions as df\nimport azure.functions\ndf.DFApp()"
OURS = ("function_app", "functions", "shared")
# Loaded by the first request or activity that needs them: the SDKs, request validation and the API descriptions
# (pydantic), Graph's answers.
DEFERRED = ("msgraph", "kiota_abstractions", "kiota_http", "kiota_serialization_json", "kiota_authentication_azure",
            "httpx", "azure.identity", "azure.keyvault", "azure.data.tables", "azure.core", "pydantic",
            "pydantic_core", "cryptography", "msal", "requests", "shared.models", "shared.contracts",
            "shared.openapi", "shared.graph_answers")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` in the repository."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_function_app_import_loads_no_heavy_sdk_and_no_pydantic_model():
    loaded = modules_after("import function_app")
    assert sorted(m for m in loaded if under(m, DEFERRED)) == []


def test_function_app_loads_no_library_a_bare_dfapp_does_not():
    # Beyond azure-functions and azure-functions-durable, only the app's own modules and the standard library.
    bare = modules_after(BARE_DFAPP)
    loaded = modules_after("import function_app")
    extra = sorted(m for m in loaded - bare
                   if m.split(".")[0] not in OURS and m.split(".")[0] not in sys.stdlib_module_names)
    assert extra == []
    assert {"function_app", "functions.onboarding", "shared.state", "shared.rules"} <= loaded


def test_the_routes_still_load_what_they_defer():
    # The deferred modules import cleanly on their own (a lazy import that broke would only fail at a request).
    loaded = modules_after("import function_app\nimport shared.models, shared.contracts, shared.openapi, "
                           "shared.graph_answers, shared.links\nshared.openapi.openapi_document('https://x')")
    assert {"pydantic", "shared.openapi", "msgraph", "kiota_abstractions.serialization"} <= loaded


def test_function_app_registers_the_onboarding_workflow():
    import function_app

    names = {f.get_function_name() for f in function_app.app.get_functions()}
    assert {"start_onboarding", "get_onboarding", "onboarding_orchestrator", "ensure_certificate",
            "ensure_application", "ensure_service_principal", "grant_permissions", "ensure_directory_role",
            "prove_onboarding"} <= names
