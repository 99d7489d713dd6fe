"""Run the real deploy against lab hosts and read pyinfra's results table.

pyinfra 3.10 ends a run with a table: `Operation | Hosts | Success | Error | No Change`, where
"Success" counts hosts on which the operation changed something, and a `Grand total` row.
A second, unchanged run must show "-" in the Success and Error columns of that row.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.executable).with_name("pyinfra")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# name, hosts, changed ("Success"), errors, unchanged
_ROW = re.compile(r"^\s*(\S.*?)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s*$")


def run_deploy(
    inventory_path, extra_args=(), *, check: bool = True, deploy_file: str = "deploy.py"
) -> subprocess.CompletedProcess:
    """`pyinfra -y INVENTORY deploy.py` from the repo root; stdout holds both streams.

    With check (the default) a failed run raises AssertionError showing the output's tail.
    """
    result = subprocess.run(
        # Not --no-wait: in pyinfra 3.10 that mode never marks a host failed, so a run with
        # errors exits 0 (pyinfra/api/operations.py: _run_no_wait_ops drops the exception).
        [str(PYINFRA), "-y", str(inventory_path), deploy_file, *extra_args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    result.stdout = _ANSI.sub("", result.stdout)
    if check and result.returncode != 0:
        raise AssertionError(f"pyinfra failed ({result.returncode}):\n{result.stdout[-6000:]}")
    return result


def results(output: str) -> dict[str, tuple[int, int, int]]:
    """Operation name -> (changed hosts, errored hosts, unchanged hosts), from the table."""
    table: dict[str, tuple[int, int, int]] = {}
    started = False
    for line in _ANSI.sub("", output).splitlines():
        if line.split()[:5] == ["Operation", "Hosts", "Success", "Error", "No"]:
            started, table = True, {}  # the last table wins
            continue
        row = _ROW.match(line) if started else None
        if row:
            name, _, *counts = row.groups()
            table[name] = tuple(0 if c == "-" else int(c) for c in counts)  # type: ignore[assignment]
    return table


def changed_operations(output: str) -> list[str]:
    """Names of the operations that changed something (Grand total excluded)."""
    return [
        name for name, (changed, _, _) in results(output).items()
        if changed and not name.startswith("Grand total")
    ]


def assert_no_changes(output: str) -> None:
    """The run changed nothing and nothing failed (pyinfra's Grand total row)."""
    table = results(output)
    total = next((v for k, v in table.items() if k.startswith("Grand total")), None)
    assert total is not None, f"no results table in pyinfra's output:\n{output[-3000:]}"
    changed, errors, _ = total
    assert errors == 0, f"{errors} operations failed:\n{failure_excerpt(output)}"
    assert changed == 0, "the second run changed: " + ", ".join(changed_operations(output))


def failure_excerpt(output: str, context: int = 12) -> str:
    """The lines around the first failed operation (pyinfra prints `Error:` under it)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "Error:" in line or "pyinfra error" in line:
            return "\n".join(lines[max(0, i - context): i + 40])
    return output[-3000:]


# "1 (host)" or "-" in each of the two count columns.
_DRY_ROW = re.compile(r"^\s*(\S.*?)\s+(\d+ \([^)]*\)|\d+|-)\s+(\d+ \([^)]*\)|\d+|-)\s*$")


def detected_changes(output: str) -> list[str]:
    """Operations a `pyinfra --dry` run says will change (its "Detected changes" table:
    `Operation | Change | Conditional Change`)."""
    names, started = [], False
    for line in _ANSI.sub("", output).splitlines():
        if line.split()[:2] == ["Operation", "Change"]:
            started, names = True, []
            continue
        if started and line.strip().startswith("Detected changes may not"):
            break
        row = _DRY_ROW.match(line) if started else None
        if row and (row.group(2) != "-" or row.group(3) != "-"):
            names.append(row.group(1))
    return names
