"""The repository skeleton: host.json, function_app, local settings sample, requirements, .funcignore."""

from __future__ import annotations

import json
import re
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

from shared.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_host_json() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    assert host["extensions"]["durableTask"]["hubName"] == "%TASKHUB_NAME%"
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert "Request" in sampling["excludedTypes"]


def test_function_app_composes_a_dfapp() -> None:
    import function_app

    assert isinstance(function_app.app, df.DFApp)
    assert function_app.app.auth_level == func.AuthLevel.FUNCTION


def test_local_settings_sample_covers_every_setting() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))
    assert sample["IsEncrypted"] is False
    values = sample["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["AzureWebJobsFeatureFlags"] == "EnableWorkerIndexing"
    assert set(ENV_NAMES.values()) <= set(values)


def test_requirements_are_pinned() -> None:
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-r "):
                continue
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[0-9][0-9A-Za-z.+\-]*", line), f"{name}: {line!r}"


def test_funcignore_keeps_the_sandbox_and_tests_out_of_the_package() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in ("tests", "sandbox", "bench", ".venv", "node_modules", "local.settings.json"):
        assert required in entries, required
