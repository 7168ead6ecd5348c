"""The sandbox clock reaches every process: libfaketime follows the simulator's clock file at once, the
monotonic clock stays real, and the clock's owner reads real time."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from sandbox import faketime

# A child that answers each line on stdin with its wall and monotonic clocks.
ECHO_CLOCKS = ("import json, sys, time\n"
               "for _ in sys.stdin:\n"
               "    print(json.dumps([time.time(), time.monotonic()]), flush=True)\n")


def _child(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ECHO_CLOCKS], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)


def _ask(child: subprocess.Popen) -> list[float]:
    child.stdin.write("\n")
    child.stdin.flush()
    return json.loads(child.stdout.readline())


def test_a_child_under_libfaketime_follows_the_clock_file_at_once(tmp_path):
    clock = tmp_path / faketime.CLOCK_FILE
    faketime.write_offset(clock, 0)
    child = _child(faketime.environment(clock, faketime.without()))
    try:
        wall, monotonic = _ask(child)
        faketime.write_offset(clock, 40 * 86400)
        later_wall, later_monotonic = _ask(child)   # no restart, no cache: the next read sees the jump
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert later_wall - wall >= 40 * 86400
    assert 0 <= later_monotonic - monotonic < 60        # the monotonic clock did not jump


def test_the_clock_owner_reads_real_time_and_the_session_follows_the_simulator(simulator):
    offset = simulator.advance_clock(0)["offsetSeconds"]
    child = _child(faketime.without())
    try:
        real, _ = _ask(child)
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert faketime.active()
    assert abs(time.time() - offset - real) < 60
    simulator.advance_clock(7200)
    # The simulator wrote the file before it answered: this process already sees the new time.
    assert abs(time.time() - 7200 - offset - real) < 60
    assert float(faketime.clock_file().read_text().strip()) == offset + 7200


def test_without_removes_only_what_libfaketime_added(tmp_path):
    base = {"PATH": "/usr/bin", "LD_PRELOAD": "libother.so"}
    faked = faketime.environment(tmp_path / faketime.CLOCK_FILE, base)
    assert faked["LD_PRELOAD"].split(":")[1:] == ["libother.so"]
    assert faked[faketime.TIMESTAMP_FILE] == str((tmp_path / faketime.CLOCK_FILE).resolve())
    assert faketime.without(faked) == base
