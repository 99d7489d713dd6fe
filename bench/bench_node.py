"""Node for the proxy on Debian 12: the distro's nodejs (apt) against PyPI's nodejs-bin wheel.

    sudo python3 bench/bench_node.py

On two fresh lab hosts (own lab, torn down at the end), times what each proxy.node way
installs before configurable-http-proxy can be installed: `apt-get install nodejs` (with
its list refresh) and `pip install nodejs-bin==16.15.1a4` into a new venv; each twice, on a
first host (cold caches) and a second one (the lab's apt and pip caches warm). Prints the
figures and the wheel/apt ratios; the deploy's default (`auto`: the distro's Node when it
is new enough) is chosen from them (README, "Distros and versions").
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

APT = ("export DEBIAN_FRONTEND=noninteractive && apt-get update -q >/dev/null && "
       "apt-get install -y -q --no-install-recommends nodejs >/dev/null && node --version")
WHEEL = ("rm -rf /opt/bench-node && python3 -m venv /opt/bench-node && "
         "/opt/bench-node/bin/pip install -q nodejs-bin==16.15.1a4 && "
         "/opt/bench-node/lib/python3.*/site-packages/nodejs/bin/node --version")
# python3-venv first (not timed): the wheel way needs a venv, which the deploy has anyway.
PREPARE = ("export DEBIAN_FRONTEND=noninteractive && apt-get update -q >/dev/null && "
           "apt-get install -y -q --no-install-recommends python3-venv >/dev/null")


def timed(lab, host: str, command: str) -> tuple[float, str]:
    started = time.monotonic()
    result = lab.host_exec(host, command, check=True, timeout=1800)
    return time.monotonic() - started, result.stdout.strip().splitlines()[-1]


def main() -> int:
    from pyinfra_jupyter.lab import Lab

    lab = Lab("bn" + secrets.token_hex(2), log=lambda m: print(f"lab: {m}", file=sys.stderr))
    try:
        status = lab.up(2)
        rows = []
        for h in status["hosts"]:
            lab.host_exec(h["name"], PREPARE, timeout=1800)
            apt, apt_version = timed(lab, h["name"], APT)
            wheel, wheel_version = timed(lab, h["name"], WHEEL)
            rows.append((h["name"], apt, apt_version, wheel, wheel_version))
        print(f"{'host':<12} {'apt nodejs':>12} {'wheel':>12} {'wheel/apt':>10}")
        for name, apt, apt_version, wheel, wheel_version in rows:
            print(f"{name:<12} {apt:>8.1f} s {apt_version:>3} {wheel:>8.1f} s {wheel_version:>3}"
                  f" {wheel / apt:>9.2f}x")
        print("first host: cold caches; second: the lab's apt and pip caches warm")
    finally:
        lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
