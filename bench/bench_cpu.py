"""CPU seconds of a first converge: what N hosts at once cost a machine with C cores at least.

    python bench/bench_cpu.py [--mode hub|notebook] [--json FILE]

One bare lab host, one `pyinfra -y INVENTORY deploy.py`, and the CPU time it took
everywhere: the host (its cgroup: apt, pip, npm, the services starting), the lab's proxy
and relays (their cgroups), the shared package cache (apt-cacher-ng and its front) and the
controller (pyinfra's own rusage). N hosts need N times the hosts' and the proxies' share
and (at most) N times the controller's: on C cores that is a floor for the wall time of
N hosts converging at once, whatever the deploy does, so `floor(N) / wall(1)` is the best
ratio this machine allows. Prints a table, writes JSON (default bench/results/cpu-MODE.json).
Reports; asserts nothing. Needs root (the lab).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_fleet import PYINFRA, inventory  # noqa: E402


def cgroup_cpu_s(lab: str, unit: str | None = None) -> float:
    """CPU seconds used so far by the lab's cgroup (or one unit of it), from cpu.stat."""
    from pyinfra_jupyter.lab import proc

    for path in proc.cgroup_paths(lab, unit):
        stat = path / "cpu.stat"
        if stat.exists():
            for line in stat.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    return 0.0


def measure(mode: str) -> dict:
    from pyinfra_jupyter.lab import Lab
    from pyinfra_jupyter.lab.proxy import SHARED_LAB

    lab = Lab("pc" + secrets.token_hex(3))
    try:
        host = lab.up(1)["hosts"][0]["name"]
        inv = inventory(lab, Path(f"/tmp/{lab.name}-inventory.py"), mode, "auto")
        before = {"host": cgroup_cpu_s(lab.name, host), "lab": cgroup_cpu_s(lab.name),
                  "shared": cgroup_cpu_s(SHARED_LAB)}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        run = subprocess.run([*PYINFRA, str(inv), "deploy.py"], cwd=REPO,
                             capture_output=True, text=True)
        wall = time.monotonic() - start
        if run.returncode != 0:
            raise SystemExit(f"the converge failed:\n{run.stdout[-3000:]}")
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        host_s = cgroup_cpu_s(lab.name, host) - before["host"]
        lab_s = cgroup_cpu_s(lab.name) - before["lab"]
        shared_s = cgroup_cpu_s(SHARED_LAB) - before["shared"]
        controller_s = ((after_children.ru_utime - children.ru_utime)
                        + (after_children.ru_stime - children.ru_stime))
        return {"mode": mode, "wall_s": round(wall, 1), "host_cpu_s": round(host_s, 1),
                "lab_other_cpu_s": round(lab_s - host_s, 1), "shared_cache_cpu_s":
                round(shared_s, 1), "controller_cpu_s": round(controller_s, 1)}
    finally:
        lab.down()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["hub", "notebook"], default="hub")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--wall1", type=float, default=None,
                    help="the 1-host wall time to compare with (e.g. bench_fleet's, taken on "
                    "an idle machine); default: this run's, which a busy machine inflates")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    row = measure(args.mode)
    per_host = row["host_cpu_s"] + row["lab_other_cpu_s"] + row["controller_cpu_s"]
    row["cpu_per_host_s"] = round(per_host, 1)
    row["cores"] = cores
    print(f"first converge of one bare {args.mode} host: {row['wall_s']} s wall")
    print(f"  CPU: host {row['host_cpu_s']} s, lab proxy/relays {row['lab_other_cpu_s']} s, "
          f"shared cache {row['shared_cache_cpu_s']} s, controller {row['controller_cpu_s']} s")
    wall1 = args.wall1 or row["wall_s"]
    row["wall1_s"] = wall1
    print(f"{'hosts':>5} {'CPU floor on ' + str(cores) + ' cores':>22} {'floor / wall(1)':>16} "
          f"{'cores for 1.5x':>15}")
    row["floors"] = {}
    for n in (1, 5, 10):
        floor = n * per_host / cores
        need = n * per_host / (1.5 * wall1)
        row["floors"][n] = {"floor_s": round(floor, 1), "ratio": round(floor / wall1, 2),
                            "cores_for_1_5x": round(need, 1)}
        print(f"{n:>5} {floor:>20.0f} s {floor / wall1:>15.2f}x {need:>15.1f}")
    out = args.json or REPO / "bench" / "results" / f"cpu-{args.mode}.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               **row}, indent=1) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
