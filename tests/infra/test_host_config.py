"""host.json, local.settings.sample.json and .funcignore agree with the code and with infra/: the task hub's
setting, the worker runtime, the settings the sample lists, and no tests or sandbox in the package."""

from __future__ import annotations

import json

from shared.settings import ENV_NAMES, Settings
from tests.infra import bicep
from tests.infra.bicep import INFRA, ROOT
from tests.infra.test_package import patterns
from tests.infra.test_settings_crosscheck import HOST_SETTINGS, binding_settings

HOST = json.loads((ROOT / "host.json").read_text())
SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())
# The sample's settings for `func start` that only the local host reads (on Azure they are the platform's).
LOCAL_HOST_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "the local worker (Flex takes the runtime from functionAppConfig instead)",
    "AzureWebJobsStorage": "Azurite locally (UseDevelopmentStorage=true); identity-based on Azure",
    "AzureWebJobsFeatureFlags": "the Python v2 programming model's worker indexing",
}


def test_the_task_hub_is_one_setting_everywhere():
    durable = HOST["extensions"]["durableTask"]
    assert durable["hubName"] == f"%{ENV_NAMES['taskhub']}%"
    # The backend is not pinned in host.json: Azure Storage by default, the scheduler through app settings.
    assert "storageProvider" not in durable
    main = bicep.parse(INFRA / "main.bicep")
    default_hub = main.value(main.declarations("parameter")["taskHubName"].named_children[-1])
    assert default_hub == SAMPLE["Values"][ENV_NAMES["taskhub"]] == Settings().taskhub
    assert HOST["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}


def test_the_worker_runtime_is_python_locally_and_on_azure():
    assert SAMPLE["Values"]["FUNCTIONS_WORKER_RUNTIME"] == "python"
    api = bicep.parse(INFRA / "app" / "api.bicep")
    site = api.get(api.body(api.declarations("module")["site"]), "params")
    assert api.value(api.get(site, "functionAppConfig.runtime.name")) == "python"
    # Flex Consumption refuses FUNCTIONS_WORKER_RUNTIME as an app setting: it is not among the deployed ones.
    assert "FUNCTIONS_WORKER_RUNTIME" not in bicep.app_settings([bicep.parse(p) for p in bicep.app_templates()])
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert "language: python" in azure_yaml
    assert "host: function" in azure_yaml
    assert "project: ." in azure_yaml


def test_the_sample_lists_every_setting_the_code_reads_and_loads():
    values = SAMPLE["Values"]
    assert SAMPLE["IsEncrypted"] is False
    expressions = binding_settings("function_app", ROOT)
    missing = sorted((set(ENV_NAMES.values()) | expressions) - set(values))
    assert missing == [], f"add to local.settings.sample.json: {missing}"
    unknown = sorted(set(values) - set(ENV_NAMES.values()) - expressions - set(LOCAL_HOST_SETTINGS)
                     - set(HOST_SETTINGS))
    assert unknown == [], f"in local.settings.sample.json, read by nobody: {unknown}"
    Settings.from_env(values)  # the placeholders are valid values: func start gets past the settings


def test_funcignore_keeps_tests_sandbox_and_local_settings_out():
    rules = set(patterns((ROOT / ".funcignore").read_text()))
    assert {"tests", "sandbox", "bench", "infra", "local.settings*.json", ".venv", ".azure"} <= rules
    assert not rules & {"functions", "shared", "function_app.py", "host.json", "requirements.txt"}
