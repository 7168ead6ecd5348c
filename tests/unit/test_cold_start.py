"""Importing the Function App stays light: the heavy SDKs load inside activities, not at import."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("msgraph", "kiota", "azure.keyvault", "azure.identity")


def test_function_app_import_loads_no_heavy_sdk():
    # A fresh interpreter: this test process may have imported them already.
    code = ("import json, sys, function_app; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == []


def test_function_app_registers_the_onboarding_workflow():
    import function_app

    names = {f.get_function_name() for f in function_app.app.get_functions()}
    assert {"start_onboarding", "get_onboarding", "onboarding_orchestrator", "ensure_certificate",
            "ensure_application", "ensure_service_principal", "grant_permissions", "ensure_directory_role",
            "prove_onboarding"} <= names
