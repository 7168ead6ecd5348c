"""Azurite (the Azure Storage emulator, pinned in package.json) as a managed child process: Table service.

    with Azurite() as azurite:
        TableServiceClient.from_connection_string(azurite.connection_string)

or ``azurite = Azurite().start()`` … ``azurite.stop()``. ``python -m sandbox.azurite`` runs one in the
foreground, prints ``{"connectionString", "tableEndpoint", "pid"}`` as one JSON line, and stops it cleanly
on SIGTERM / SIGINT.

Azurite runs in its own process group (``start_new_session``), so stopping it signals the whole group.
It is ready when it prints its "successfully started" line on stdout; stdout is drained by a thread for
the life of the process (a full pipe would block Azurite), and the last lines are kept for error messages.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import ctypes
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "REPO_ROOT", "Azurite", "AzuriteError"]

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_TABLE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-table"

# The emulator's documented well-known development account
# (learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# Azurite 3.x prints "Azurite Table service successfully started on 127.0.0.1:<port>" when it listens.
_READY = re.compile(r"Azurite Table service successfully (?:started|listening)")
_ADDR_IN_USE = "EADDRINUSE"

_live: weakref.WeakSet[Azurite] = weakref.WeakSet()


class AzuriteError(RuntimeError):
    """Azurite could not be started (the message includes what it printed)."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: SIGKILL the child if the thread that started it dies without calling stop() (a crashed or
    # SIGKILLed test run must not leave Azurite listening).
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class Azurite:
    """One Azurite Table service on loopback.

    :param port: TCP port; default a free one chosen at start.
    :param location: a workspace folder for on-disk persistence (survives restarts). Default: in-memory
        persistence, run from a private temporary folder. (Azurite refuses ``--inMemoryPersistence``
        together with ``--location``.)
    :param access_log: keep Azurite's per-request access log (default off: ``--silent``).
    :param die_with_parent: on Linux, the kernel kills Azurite when the *thread* that started it ends,
        so start it from a thread that outlives it (the main thread, normally).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        location: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        access_log: bool = False,
        skip_api_version_check: bool = False,
        die_with_parent: bool = True,
        executable: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.location = Path(location) if location is not None else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.access_log = access_log
        self.skip_api_version_check = skip_api_version_check
        self.die_with_parent = die_with_parent
        self.executable = Path(executable) if executable is not None else AZURITE_TABLE_BIN
        self._proc: subprocess.Popen[str] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._startup_lines: queue.Queue[str | None] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- public surface -------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise AzuriteError("Azurite is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def table_endpoint(self) -> str:
        if self.port is None:
            raise AzuriteError("Azurite is not running")
        return f"http://{self.host}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint={self.table_endpoint};"
        )

    @property
    def output(self) -> str:
        """The last lines Azurite printed (stdout and stderr), for diagnostics."""
        return "".join(self._output)

    def start(self) -> Azurite:
        with self._lock:
            if self._proc is not None:
                raise AzuriteError("Azurite is already started")
            self._check_prerequisites()
            attempts = 1 if self._requested_port is not None else 5
            for attempt in range(1, attempts + 1):
                port = self._requested_port if self._requested_port is not None else _free_port(self.host)
                try:
                    self._launch(port)
                    break
                except AzuriteError:
                    if attempt < attempts and _ADDR_IN_USE in self.output:
                        continue  # lost a race for the free port; pick another
                    raise
            _live.add(self)
            return self

    def stop(self) -> None:
        """Stop Azurite's whole process group: SIGTERM (SIGINT first when persisting to disk, so it
        saves), then SIGKILL after ``stop_timeout``. Idempotent."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            try:
                self._terminate_group(proc)
            finally:
                self._proc = None
                self.port = None
                if proc.stdout is not None:
                    if self._reader is not None:
                        self._reader.join(timeout=self.stop_timeout)
                    proc.stdout.close()
                self._reader = None
                if self._tmpdir is not None:
                    self._tmpdir.cleanup()
                    self._tmpdir = None
                _live.discard(self)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid} endpoint={self.table_endpoint}" if self._proc else "stopped"
        return f"<Azurite {state}>"

    # ---- internals ------------------------------------------------------------------------------------

    def _check_prerequisites(self) -> None:
        if not self.executable.exists():
            raise AzuriteError(
                f"{self.executable} not found: install the pinned Azurite with `npm ci` in {REPO_ROOT} "
                "(`make test` does it)"
            )
        if shutil.which("node") is None:
            raise AzuriteError("`node` is not on PATH: Azurite needs Node.js (20 or newer)")

    def _command(self, port: int, workdir: Path) -> list[str]:
        cmd = [
            str(self.executable),
            "--disableTelemetry",
            "--tableHost",
            self.host,
            "--tablePort",
            str(port),
        ]
        if self.location is None:
            cmd.append("--inMemoryPersistence")
        else:
            cmd += ["--location", str(workdir)]
        if not self.access_log:
            cmd.append("--silent")
        if self.skip_api_version_check:
            cmd.append("--skipApiVersionCheck")
        return cmd

    def _launch(self, port: int) -> None:
        self._output.clear()
        if self.location is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="azurite-")
            workdir = Path(self._tmpdir.name)
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            workdir = self.location
        cmd = self._command(port, workdir)
        try:
            proc = self._popen(cmd, workdir)
        except OSError as exc:
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None
            raise AzuriteError(f"could not run {cmd[0]}: {exc}") from exc
        self._proc = proc
        self._startup_lines = queue.Queue()
        self._reader = threading.Thread(
            target=self._drain,
            args=(proc, self._startup_lines),
            name=f"azurite-{proc.pid}-stdout",
            daemon=True,
        )
        self._reader.start()

        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort(proc)
                raise AzuriteError(
                    f"Azurite did not report ready within {self.startup_timeout:.0f} s "
                    f"(command: {' '.join(cmd)}). Its output:\n{self.output or '(nothing)'}"
                )
            try:
                line = self._startup_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:  # EOF: Azurite exited
                code = proc.wait()
                self._abort(proc)
                raise AzuriteError(
                    f"Azurite exited with code {code} before it was ready (command: {' '.join(cmd)}). "
                    f"Its output:\n{self.output or '(nothing)'}"
                )
            if _READY.search(line):
                self._startup_lines = None
                self.port = port
                return

    def _popen(self, cmd: list[str], workdir: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
            preexec_fn=_die_with_parent if (self.die_with_parent and sys.platform == "linux") else None,
        )

    def _drain(self, proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        startup = True
        try:
            for line in proc.stdout:
                self._output.append(line)
                if self.access_log:
                    sys.stderr.write(line)
                if startup:
                    lines.put(line)
                    if _READY.search(line):
                        startup = False
        except (OSError, ValueError):  # pipe closed under us by stop()
            pass
        finally:
            if startup:
                lines.put(None)

    def _abort(self, proc: subprocess.Popen[str]) -> None:
        """Clean up after a failed start (keeps the collected output)."""
        try:
            self._terminate_group(proc)
        finally:
            if self._reader is not None:
                self._reader.join(timeout=self.stop_timeout)
                self._reader = None
            if proc.stdout is not None:
                proc.stdout.close()
            self._proc = None
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None

    def _terminate_group(self, proc: subprocess.Popen[str]) -> None:
        pgid = proc.pid  # start_new_session: the child leads its own process group
        signals = [signal.SIGTERM]
        if self.location is not None:
            signals.insert(0, signal.SIGINT)  # Azurite saves its database on SIGINT only
        per_signal = self.stop_timeout / len(signals)
        for sig in signals:
            if not _signal_group(pgid, sig):
                break
            try:
                proc.wait(timeout=per_signal)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(pgid):
                break
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.stop_timeout)
        # Reap-free wait for any other member of the group (there is normally none: the launcher is
        # node itself) so that nothing is left listening when stop() returns.
        deadline = time.monotonic() + self.stop_timeout
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _stop_all() -> None:
    for azurite in list(_live):
        with contextlib.suppress(Exception):
            azurite.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.azurite",
        description="Run Azurite's Table service until SIGTERM/SIGINT; print its endpoints as one JSON line.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--location", default=None, help="persist to this folder (default: in memory)")
    parser.add_argument("--access-log", action="store_true", help="print Azurite's request log to stderr")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    azurite = Azurite(host=args.host, port=args.port, location=args.location, access_log=args.access_log)
    try:
        azurite.start()
    except AzuriteError as exc:
        print(f"sandbox.azurite: {exc}", file=sys.stderr)
        return 1
    try:
        line = {
            "connectionString": azurite.connection_string,
            "tableEndpoint": azurite.table_endpoint,
            "pid": azurite.pid,
        }
        print(json.dumps(line), flush=True)
        while not stop.wait(timeout=1.0):
            if not azurite.running:
                print(f"sandbox.azurite: Azurite exited unexpectedly:\n{azurite.output}", file=sys.stderr)
                return 1
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
