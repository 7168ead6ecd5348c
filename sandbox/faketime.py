"""One clock for every process: the product's processes read the sandbox clock as their wall clock.

The simulator owns the sandbox clock (real time plus a forward-only offset). It writes the offset to a
*clock file* whenever the clock moves, before it answers. Processes started with :func:`environment`
(the sandbox host and its activities, the test session, Azurite) run under libfaketime (LD_PRELOAD),
which re-reads that file on every wall-clock read (``FAKETIME_NO_CACHE=1``), so ``time.time()`` and
``datetime.now()`` jump with the sandbox clock in every process at once. The monotonic clock stays real
(``DONT_FAKE_MONOTONIC=1``): timeouts, asyncio and thread waits are unaffected.

The product reads the wall clock as it would on Azure and never knows it is faked. The clock's owner
(the simulator) must read real time, so it is started with :func:`without`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

CLOCK_FILE = "clock.faketime"
TIMESTAMP_FILE = "FAKETIME_TIMESTAMP_FILE"
# Our own variables besides what libfaketime's helper sets; stripped by `without`.
_OWN = (TIMESTAMP_FILE, "FAKETIME_DID_REEXEC")


def write_offset(path: Path | str, offset_seconds: float) -> None:
    """Write libfaketime's relative offset ("+N" seconds) atomically: readers see the old or the new file."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".clock-")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"+{float(offset_seconds):.6f}\n")
    os.replace(temporary, path)


def _libfaketime_additions(preloaded: str) -> dict[str, str]:
    import libfaketime  # the PyPI package ships the built library (requirements-dev.txt)

    _, additions = libfaketime.get_reload_information()
    additions = dict(additions)
    # The library by absolute path, ahead of whatever is already preloaded (never twice).
    library = os.path.join(libfaketime._get_lib_path(), "libfaketime.so.1")
    others = [item for item in preloaded.split(":") if item and "libfaketime" not in item]
    additions["LD_PRELOAD"] = ":".join([library, *others])
    additions.pop("LD_LIBRARY_PATH", None)
    return additions


def environment(clock_file: Path | str, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the wall clock following `clock_file`."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError("the sandbox clock needs libfaketime's LD_PRELOAD (Linux)")
    env = dict(os.environ if base is None else base)
    env.update(_libfaketime_additions(env.get("LD_PRELOAD", "")))
    env[TIMESTAMP_FILE] = str(Path(clock_file).resolve())
    env["FAKETIME_DID_REEXEC"] = "true"
    return env


def without(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with real time: for the clock's owner."""
    env = dict(os.environ if base is None else base)
    preload = [item for item in env.get("LD_PRELOAD", "").split(":") if item and "libfaketime" not in item]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    for name in (*_OWN, "DONT_FAKE_MONOTONIC", "FAKETIME_NO_CACHE", "FAKETIME_FORCE_MONOTONIC_FIX"):
        env.pop(name, None)
    return env


def active() -> bool:
    """Whether this process's wall clock already follows a clock file (so no offset is to be added)."""
    return bool(os.environ.get(TIMESTAMP_FILE)) and "libfaketime" in os.environ.get("LD_PRELOAD", "")


def clock_file() -> Path | None:
    """The clock file this process follows, if any."""
    return Path(os.environ[TIMESTAMP_FILE]) if active() else None
