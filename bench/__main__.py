"""Run every benchmark module in bench/ (``python -m bench.<name>``), one after another.

``python -m bench`` runs them all; ``python -m bench NAME...`` runs the named ones. Exits non-zero if any
benchmark fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or discover()
    if not names:
        print("bench: no benchmarks yet (add bench/<name>.py)")
        return 0
    failed: list[str] = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=BENCH_DIR.parent)
        print(f"== bench.{name}: exit {code} in {time.perf_counter() - started:.1f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
