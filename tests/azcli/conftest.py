"""Fixtures that run Microsoft's Azure CLI against the simulator (``make test-azcli``).

The CLI keeps its real cloud (AzureCloud) and resource names: it reaches ``login.microsoftonline.com``,
``graph.microsoft.com`` and ``<vault>.vault.azure.net`` through the loopback intercepting proxy
(sandbox/intercept.py), which answers them from the simulator's origins and refuses every other host.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.intercept import InterceptProxy

# The Azure CLI's executable; the tests are skipped without it (`make test-azcli` sets it).
AZ_CLI = os.environ.get("CERTAUTH_AZ_CLI", "")
# The simulator serves one vault: the name is the CLI's choice; the proxy maps <name>.vault.azure.net to it.
VAULT_NAME = "certauth-sandbox"
COMMAND_TIMEOUT = 180
# Variables of this process the CLI must not see: a proxy bypass would send it around the proxy, and the
# session's PYTHONPATH (the project) has no business in the CLI's interpreter.
_HIDDEN = {"no_proxy", "NO_PROXY", "PYTHONPATH", "AZURE_CONFIG_DIR", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
           "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"}


@dataclass
class AzResult:
    """One `az` run: the command line, exit code and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        """The command's JSON output."""
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"AzResult({self.command()!r}, exit {self.returncode})"

    def command(self) -> str:
        """The command line, with a password or client secret masked."""
        shown = ["***" if i and self.args[i - 1] in ("-p", "--password") else a for i, a in enumerate(self.args)]
        return "az " + " ".join(shown)

    def error(self) -> str:
        """The last line of stderr that says something (the CLI's ERROR line or the exception)."""
        lines = [line for line in self.stderr.splitlines() if line.strip() and "check existing issues" not in line]
        return lines[-1] if lines else ""

    def describe(self) -> str:
        """The run as it would read in a terminal, for assertion messages."""
        return (f"$ {self.command()}\nexit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}")


class AzCli:
    """Runs the Azure CLI with the proxy, the sandbox CA and its own configuration directory."""

    def __init__(self, executable: str, proxy: InterceptProxy, ca_bundle: str, config_dir: Path) -> None:
        self.executable = executable
        self.proxy = proxy
        self.ca_bundle = ca_bundle
        self.config_dir = config_dir

    def environment(self, config_dir: Path | None = None) -> dict[str, str]:
        """The CLI's environment: this process's (so the sandbox clock through libfaketime), the proxy, the CA."""
        env = {k: v for k, v in os.environ.items() if k not in _HIDDEN}
        env.update({
            "HTTPS_PROXY": self.proxy.url, "HTTP_PROXY": self.proxy.url,
            # requests (MSAL, azure-core) trusts this bundle: system roots + the sandbox CA.
            "REQUESTS_CA_BUNDLE": self.ca_bundle, "SSL_CERT_FILE": self.ca_bundle,
            "AZURE_CONFIG_DIR": str(config_dir or self.config_dir),
            # Telemetry and survey prompts would only be refused by the proxy.
            "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_NO_COLOR": "true", "AZURE_CORE_OUTPUT": "json",
        })
        return env

    def run(self, *args: str, config_dir: Path | None = None) -> AzResult:
        """Run `az ARGS` and return what it did (it does not raise on a non-zero exit)."""
        completed = subprocess.run([self.executable, *args], env=self.environment(config_dir), capture_output=True,
                                   text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
        return AzResult(list(args), completed.returncode, completed.stdout, completed.stderr)

    def ok(self, *args: str, config_dir: Path | None = None) -> AzResult:
        """Run `az ARGS` and assert that it succeeded."""
        result = self.run(*args, config_dir=config_dir)
        assert result.returncode == 0, result.describe()
        return result

    def new_profile(self) -> Path:
        """A fresh configuration directory (another signed-in identity beside the main one)."""
        return Path(tempfile.mkdtemp(prefix="azcli-profile-", dir=self.config_dir.parent))


def graph_origin(simulator) -> str:
    """The simulator's Graph origin (its graphUrl without the /v1.0 base path)."""
    return simulator.info["graphUrl"].rsplit("/v1.0", 1)[0]


@pytest.fixture(scope="module")
def intercept_proxy(simulator):
    """The proxy: Azure's host names → the simulator's loopback origins."""
    info = simulator.info
    mapping = {"login.microsoftonline.com": info["loginUrl"], "graph.microsoft.com": graph_origin(simulator),
               f"{VAULT_NAME}.vault.azure.net": info["vaultUrl"].rstrip("/")}
    with InterceptProxy(mapping, Path(info["caBundle"]).parent) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def az(simulator, intercept_proxy, tmp_path_factory) -> AzCli:
    """The CLI, with the home provisioner's Graph roles widened for the commands under test (restored after)."""
    home = simulator.home["tenantId"]
    # az ad app/sp create and credential reset write applications and service principals;
    # az ad sp show and app list read them; az rest reads the organization.
    simulator.grant(home, [*simulator.info["defaultProvisionerRoles"], "Application.ReadWrite.All"])
    cli = AzCli(AZ_CLI, intercept_proxy, simulator.info["caBundle"], tmp_path_factory.mktemp("azure-config"))
    yield cli
    simulator.grant(home, simulator.info["defaultProvisionerRoles"])
