"""The sandbox clock reaches every process: libfaketime follows the simulator's clock file at once, the
monotonic clock stays real, and the clock's owner reads real time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

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
    assert abs(float(faketime.clock_file().read_text().strip()) - (offset + 7200)) < 1e-3   # microseconds written


def test_without_removes_only_what_libfaketime_added(tmp_path):
    base = {"PATH": "/usr/bin", "LD_PRELOAD": "libother.so"}
    faked = faketime.environment(tmp_path / faketime.CLOCK_FILE, base)
    assert faked["LD_PRELOAD"].split(":")[1:] == ["libother.so"]
    assert faked[faketime.TIMESTAMP_FILE] == str((tmp_path / faketime.CLOCK_FILE).resolve())
    assert faketime.without(faked) == base


# Threads reading the wall clock while another thread sleeps and the clock file changes: the race that makes
# the PyPI package's prebuilt (non-MT) library return real time now and then.
RACE = ("import os, threading, time, sys\n"
        "from sandbox import faketime\n"
        "floor, clock = float(sys.argv[1]), sys.argv[2]\n"
        "low, done = [], threading.Event()\n"
        "def read():\n"
        "    while not done.is_set():\n"
        "        if time.time() < floor:\n"
        "            low.append(1)\n"
        "threads = [threading.Thread(target=read) for _ in range(2)]\n"
        "[t.start() for t in threads]\n"
        "for i in range(60):\n"
        "    time.sleep(0.001)\n"
        "    faketime.write_offset(clock, 40 * 86400 + i)\n"
        "done.set()\n"
        "[t.join() for t in threads]\n"
        "print(len(low))\n")


def test_threads_reading_the_clock_never_see_real_time(tmp_path):
    clock = tmp_path / faketime.CLOCK_FILE
    faketime.write_offset(clock, 40 * 86400)
    real = json.loads(subprocess.run([sys.executable, "-c", "import time; print(time.time())"],
                                     env=faketime.without(), capture_output=True, text=True, check=True).stdout)
    env = dict(faketime.environment(clock, faketime.without()), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    answer = subprocess.run([sys.executable, "-c", RACE, str(real + 39 * 86400), str(clock)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "0", "a thread read real time instead of the sandbox clock"
