"""Stopping a child started in its own process group (``start_new_session=True``), by process id only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(process: subprocess.Popen | None, timeout: float = 10.0) -> int | None:
    """SIGTERM the child's process group, SIGKILL it if it outlives `timeout`; the child's exit code."""
    if process is None:
        return None
    if process.poll() is not None:
        return process.returncode
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process, timeout)
    except ProcessLookupError:
        process.wait(timeout=timeout)
    return process.returncode


def kill_group(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """kill -9 of the child's whole process group (the child and anything it started)."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)
