"""pytest plugin (``-p tests.sandbox_clock`` in pyproject.toml): the test session follows the sandbox clock.

Product code that integration tests call in this process reads the wall clock, as it does on Azure. For it
to see the sandbox clock, the session re-executes itself once under libfaketime, following the clock file
of the session's simulator (sandbox/faketime.py). It runs when pytest imports its ``-p`` plugins, before
output capture starts, so the new process keeps the terminal. The clock file lives in the session's
sandbox state directory (the simulator's CA, bundle and clock): tests/conftest.py finds it from there.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from sandbox import faketime


def _reexec_under_libfaketime() -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="certauth-sandbox-"))
    clock_file = state_dir / faketime.CLOCK_FILE
    faketime.write_offset(clock_file, 0)
    env = faketime.environment(clock_file)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *sys.argv[1:]], env)


if not faketime.active():
    _reexec_under_libfaketime()
