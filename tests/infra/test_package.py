"""The deployment package: a zip of what .funcignore lets through (as azd deploy and Core Tools build it),
checked to hold the app and nothing of the sandbox, the tests, the benchmarks, the infrastructure or local
settings."""

from __future__ import annotations

import os
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from tests.infra.bicep import ROOT

FUNCIGNORE = ROOT / ".funcignore"
REQUIRED = ("function_app.py", "host.json", "requirements.txt", "functions/__init__.py", "shared/__init__.py")
# What the package may hold at its top level: the app, and nothing a new file elsewhere could slip in.
TOP_LEVEL = {"function_app.py", "host.json", "requirements.txt", "functions", "shared"}
FORBIDDEN_DIRS = ("tests", "sandbox", "bench", "infra", ".venv", ".venv-checkov", ".venv-azcli", "node_modules",
                  ".git", ".azure", ".sandbox", "__pycache__")


def patterns(text: str) -> list[str]:
    """.funcignore's patterns. Only the subset of .gitignore's syntax the file uses is understood (names and
    globs, a trailing / for directories, a leading / to anchor); anything else fails here rather than be misread."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not any(mark in line for mark in ("!", "**", "\\")), f"unsupported pattern {line!r}"
        found.append(line)
    return found


def ignored(path: PurePosixPath, is_dir: bool, rules: list[str]) -> bool:
    """Whether .gitignore's rules exclude `path` (relative to the root), its parents being kept."""
    for rule in rules:
        if rule.endswith("/") and not is_dir:
            continue
        rule = rule.rstrip("/")
        if "/" in rule:  # anchored at the root
            if fnmatchcase(path.as_posix(), rule.lstrip("/")):
                return True
        elif fnmatchcase(path.name, rule):
            return True
    return False


def package(root: Path, rules: list[str], target: Path) -> list[str]:
    """Zip what the rules let through into `target`; the archive's names."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, dirs, files in os.walk(root):
            here = PurePosixPath(Path(directory).relative_to(root).as_posix())
            dirs[:] = sorted(d for d in dirs if not ignored(here / d if str(here) != "." else PurePosixPath(d),
                                                            True, rules))
            for name in sorted(files):
                relative = here / name if str(here) != "." else PurePosixPath(name)
                if not ignored(relative, False, rules):
                    archive.write(Path(directory) / name, relative.as_posix())
    with zipfile.ZipFile(target) as archive:
        return archive.namelist()


def problems(names: list[str]) -> list[str]:
    """What is wrong with a package's list of names (empty: nothing)."""
    found = [f"missing {n}" for n in REQUIRED if n not in names]
    for name in names:
        parts = PurePosixPath(name).parts
        if parts[0] not in TOP_LEVEL:
            found.append(f"unexpected {name}")
        if any(p in FORBIDDEN_DIRS for p in parts) or PurePosixPath(name).match("local.settings*.json"):
            found.append(f"forbidden {name}")
    return found


def test_the_package_is_the_app_and_nothing_else(tmp_path):
    rules = patterns(FUNCIGNORE.read_text())
    names = package(ROOT, rules, tmp_path / "package.zip")
    assert problems(names) == []
    # Every module of the app goes: function_app.py imports functions/*, which import shared/*.
    for folder in ("functions", "shared"):
        for module in (ROOT / folder).glob("*.py"):
            assert f"{folder}/{module.name}" in names, module
    assert not any(n.endswith(".pyc") for n in names)


def test_the_check_sees_a_package_that_lets_the_tests_or_local_settings_through(tmp_path):
    rules = [r for r in patterns(FUNCIGNORE.read_text()) if r not in ("tests", "local.settings*.json")]
    names = package(ROOT, rules, tmp_path / "leaky.zip")
    found = problems(names)
    assert any(p.startswith("forbidden tests/") for p in found)
    assert "forbidden local.settings.sample.json" in found
    assert problems([n for n in names if n != "host.json"]).count("missing host.json") == 1
