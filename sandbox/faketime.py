"""One clock for every process: the product's processes read the sandbox clock as their wall clock.

The simulator owns the sandbox clock (real time plus a forward-only offset). It writes the offset to a
*clock file* whenever the clock moves, before it answers. Processes started with :func:`environment`
(the sandbox host and its activities, the test session, Azurite) run under libfaketime (LD_PRELOAD),
which re-reads that file on every wall-clock read (``FAKETIME_NO_CACHE=1``), so ``time.time()`` and
``datetime.now()`` jump with the sandbox clock in every process at once. The monotonic clock stays real
(``DONT_FAKE_MONOTONIC=1``): timeouts, asyncio and thread waits are unaffected.

The product reads the wall clock as it would on Azure and never knows it is faked. The clock's owner
(the simulator) must read real time, so it is started with :func:`without`. The library is built from the
pinned PyPI package's sources, thread-safe (see BUILD_FLAGS), by :func:`library` (`make deps` runs it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
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


# How the library is built from the libfaketime package's own sources (requirements-dev.txt pins it). The
# package ships libfaketime.so.1, built without PTHREAD_SINGLETHREADED_TIME: with FAKETIME_NO_CACHE, two threads
# reading the clock at once race on its static buffers and one of them gets *real* time (seen here: about 1 read
# in 10,000 under four threads). So: the thread-safe variant (upstream's libfaketimeMT), faking only the clock
# reads (no FAKE_SLEEP / FAKE_TIMERS / FAKE_PTHREAD / FAKE_STAT: sleeps, timers and waits stay real, as the
# monotonic clock does, and the MT lock is never taken twice by one call).
BUILD_FLAGS = ("-std=gnu99", "-O2", "-fPIC", "-DFAKE_INTERNAL_CALLS", "-DPTHREAD_SINGLETHREADED_TIME",
               '-DPREFIX=""', '-DLIBDIRNAME="."')
LIBRARY_NAME = "libfaketimeMT.so.1"


def library() -> Path:
    """The thread-safe libfaketime, built once per source and flags into this Python environment."""
    import libfaketime  # the PyPI package: its vendored C sources

    source_dir = Path(libfaketime._get_lib_path())
    source = source_dir / "libfaketime.c"
    digest = hashlib.sha256(source.read_bytes() + "\0".join(BUILD_FLAGS).encode()).hexdigest()[:16]
    target = Path(sys.prefix) / "lib" / f"certauth-faketime-{digest}" / LIBRARY_NAME
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("building libfaketime needs a C compiler (cc or gcc)")
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        built = Path(work) / LIBRARY_NAME
        subprocess.run([compiler, *BUILD_FLAGS, "-shared", f"-Wl,-soname,{LIBRARY_NAME}",
                        f"-Wl,--version-script={source_dir / 'libfaketime.map'}", "-o", str(built), str(source),
                        "-lpthread", "-ldl", "-lm", "-lrt"], check=True, capture_output=True, text=True)
        os.replace(built, target)   # concurrent builds write the same bytes; the rename is atomic
    return target


def _libfaketime_additions(preloaded: str) -> dict[str, str]:
    import libfaketime  # the PyPI package's own settings for LD_PRELOAD use

    _, additions = libfaketime.get_reload_information()
    additions = dict(additions)
    # The library by absolute path, ahead of whatever is already preloaded (never twice).
    others = [item for item in preloaded.split(":") if item and "libfaketime" not in item]
    additions["LD_PRELOAD"] = ":".join([str(library()), *others])
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


if __name__ == "__main__":
    print(library())   # `python -m sandbox.faketime`: build (once) and show the library (make deps runs it)
