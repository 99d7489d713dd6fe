"""The drift check's cost: a no-op re-run of the deploy on converged hosts.

    python bench/bench_noop.py [INVENTORY] [--runs N]

Default inventory: inventory/lab.py (`pyinfra-jupyter lab up N` first, then one deploy to
converge). Prints, per run, the wall time of `pyinfra -y INVENTORY deploy.py`, the number
of operations and of remote commands (counted from pyinfra's --debug log), and the figures
that matter: median no-op time, commands per operation, and the ratio to the floor (one
`ssh host true` per host, through the same SSH settings). Reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYINFRA = Path(sys.executable).with_name("pyinfra")
ROW = re.compile(r"^\s+Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)")


def run(inventory: str, *extra: str) -> tuple[float, str]:
    start = time.monotonic()
    out = subprocess.run([str(PYINFRA), "-y", *extra, inventory, "deploy.py"], cwd=REPO,
                         capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if out.returncode != 0:
        sys.exit(f"the deploy failed:\n{out.stdout[-3000:]}{out.stderr[-2000:]}")
    return elapsed, out.stdout + out.stderr


def floor(inventory: str) -> float:
    """One `true` per host over pyinfra's own connector (what any run costs at least)."""
    start = time.monotonic()
    subprocess.run([str(PYINFRA), "-y", inventory, "exec", "--", "true"], cwd=REPO,
                   capture_output=True, check=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory", nargs="?", default="inventory/lab.py")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run(args.inventory)  # converge first; not measured
    times, commands, operations = [], [], 0
    for i in range(args.runs):
        elapsed, output = run(args.inventory, "--debug")
        total = next((ROW.match(line) for line in output.splitlines() if ROW.match(line)), None)
        operations = int(total.group(1)) if total else 0
        changed = total.group(2) if total else "?"
        count = output.count("Running command on")
        times.append(elapsed)
        commands.append(count)
        print(f"run {i + 1}: {elapsed:.2f} s, {operations} operations, {count} remote commands, "
              f"changed: {changed}")
    base = floor(args.inventory)
    median = statistics.median(times)
    print(f"no-op median {median:.2f} s over {args.runs} runs; floor (pyinfra exec true) "
          f"{base:.2f} s; ratio {median / base:.1f}x")
    print(f"remote commands per operation: {statistics.median(commands) / max(operations, 1):.2f} "
          f"({statistics.median(commands):.0f} for {operations} operations)")


if __name__ == "__main__":
    main()
