"""checkov on infra/: no failed check, except those skipped in the file with a reason.

checkov lives in its own virtual environment (.venv-checkov, `make checkov-deps`, part of `make test`), because it
pins its own versions of common packages. It runs with --skip-download (otherwise it fetches policies from its
vendor) and without its update check. Its Bicep rules cover little here and nothing inside registry modules:
test_bicep.py asserts the rest on the parsed templates.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep import INFRA, ROOT

CHECKOV = Path(os.environ.get("CERTAUTH_CHECKOV") or ROOT / ".venv-checkov" / "bin" / "checkov")


@pytest.fixture(scope="module")
def reports() -> list[dict]:
    """checkov's JSON reports for infra/, one per framework that found files."""
    if not CHECKOV.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHECKOV} is missing: `make test` installs it (make checkov-deps)")
        pytest.skip(f"{CHECKOV} is missing: run `make checkov-deps` (make test does)")
    # A clean environment: not the session's libfaketime, no proxy settings, no vendor API key.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    result = subprocess.run([str(CHECKOV), "--directory", str(INFRA), "--skip-download", "--output", "json",
                             "--compact"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    loaded = json.loads(result.stdout)
    return loaded if isinstance(loaded, list) else [loaded]


def test_no_failed_check_and_no_parsing_error(reports):
    failed = [f"{r['check_type']}: {c['check_id']} {c['check_name']} ({c['file_path']} {c['resource']})"
              for r in reports for c in r["results"].get("failed_checks", [])]
    assert failed == []
    assert [(r["check_type"], r["summary"]["parsing_errors"]) for r in reports if r["summary"]["parsing_errors"]] == []


def test_checkov_read_the_bicep_and_every_skip_is_in_the_file_with_a_reason(reports):
    by_type = {r["check_type"]: r for r in reports}
    assert "bicep" in by_type
    assert by_type["bicep"]["summary"]["resource_count"] > 0
    for report in reports:
        for check in report["results"].get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment") or ""
            assert len(reason.strip()) > 10, f"{check['check_id']} in {check['file_path']} is skipped without a reason"
            source = (INFRA / check["file_path"].lstrip("/")).read_text()
            assert f"checkov:skip={check['check_id']}:" in source, check
