"""Run every benchmark module in bench/ (``python -m bench.<name>``), one after another.

``python -m bench`` runs them all (``make bench``); ``python -m bench NAME...`` runs the named ones. Each one's output
streams as it runs; at the end the figures of the run are printed together (each benchmark's summary), ready for
the README's table. Exits non-zero if any benchmark fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TAIL = 12  # lines kept of a benchmark that prints no "summary" section


def discover() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def figures(lines: list[str]) -> list[str]:
    """A benchmark's summary section (from a line "summary" on), else its last lines."""
    marks = [i for i, line in enumerate(lines) if line.strip() == "summary"]
    return lines[marks[-1] + 1:] if marks else lines[-TAIL:]


def run(name: str) -> tuple[int, list[str]]:
    """Run one benchmark, its output streamed through; (exit code, its output lines)."""
    proc = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=BENCH_DIR.parent, stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    return proc.wait(), lines


def main(argv: list[str]) -> int:
    names = argv or discover()
    if not names:
        print("bench: no benchmarks yet (add bench/<name>.py)")
        return 0
    failed: list[str] = []
    collected: list[tuple[str, float, list[str]]] = []
    began = time.perf_counter()
    for name in names:
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        code, lines = run(name)
        seconds = time.perf_counter() - started
        print(f"== bench.{name}: exit {code} in {seconds:.1f} s", flush=True)
        collected.append((name, seconds, figures(lines)))
        if code != 0:
            failed.append(name)
    print(f"\n== figures of this run ({time.perf_counter() - began:.0f} s in all)")
    for name, seconds, lines in collected:
        print(f"-- bench.{name} ({seconds:.0f} s)")
        print("\n".join(lines))
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
