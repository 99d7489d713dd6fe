"""Figures for the lab: base build, host creation, boot, and the cache payoff.

    sudo python3 bench/bench_lab.py [--fresh-base] [--skip-pip]

Prints: the base rootfs build time (only with --fresh-base, which builds into
a temporary cache dir, so pip/npm caches start cold too), the time to prepare a
host (overlay, namespace, relays) and to boot it to `running`, then for a first
and a second host the time to `apt-get install python3-venv` and to
`pip install jupyterhub jupyterlab` into a venv, and the first/second ratio.
The second host gains from the shared pip cache (bind mount) and from
apt-cacher-ng. Uses its own lab, torn down at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

APT = "apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv"
PIP = "rm -rf /opt/bench && python3 -m venv /opt/bench && /opt/bench/bin/pip install -q " \
      "jupyterhub jupyterlab"


def timed(fn):
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-base", action="store_true",
                        help="build the base rootfs from scratch in a temporary cache dir")
    parser.add_argument("--skip-pip", action="store_true", help="only base/create/boot figures")
    args = parser.parse_args()

    tmp_cache = None
    if args.fresh_base:
        tmp_cache = tempfile.mkdtemp(prefix="pj-bench-cache-", dir="/var/tmp")
        os.environ["PJ_LAB_CACHE"] = tmp_cache

    from pyinfra_jupyter.lab import Lab, base, preflight

    preflight.check()
    lab = Lab("bn" + secrets.token_hex(3))
    rows: list[tuple[str, str]] = []
    try:
        seconds, _ = timed(lambda: base.ensure_base(log=lambda m: None))
        rows.append(("base rootfs build" if args.fresh_base else "base rootfs (cached)",
                     f"{seconds:.1f} s"))
        seconds, status = timed(lambda: lab.up(1))
        h1 = status["hosts"][0]
        rows.append(("first `lab up` (lab + 1 host)", f"{seconds:.2f} s"))
        rows.append(("host creation (overlay, netns, relays)", f"{h1['create_seconds']:.2f} s"))
        rows.append(("boot to running", f"{h1['boot_seconds']:.2f} s"))
        seconds, h2 = timed(lab.new_host)
        rows.append(("`new_host()` on a running lab", f"{seconds:.2f} s"))
        if not args.skip_pip:
            times = {}
            for label, host in (("first", h1), ("second", h2)):
                apt_s, _ = timed(lambda host=host: lab.host_exec(host["name"], APT, timeout=1800))
                pip_s, _ = timed(lambda host=host: lab.host_exec(host["name"], PIP, timeout=1800))
                times[label] = pip_s
                rows.append((f"{label} host: apt-get install python3-venv", f"{apt_s:.1f} s"))
                rows.append((f"{label} host: pip install jupyterhub jupyterlab", f"{pip_s:.1f} s"))
            rows.append(("pip install ratio first/second", f"{times['first'] / times['second']:.1f}x"))
    finally:
        lab.down()
        if tmp_cache:
            shutil.rmtree(tmp_cache, ignore_errors=True)

    width = max(len(k) for k, _ in rows)
    print(f"lab figures ({os.cpu_count()} cores)")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
