"""`pyinfra-jupyter lab up [N] | down | status [--json] | reboot HOST` with `--lab NAME`.

Errors the lab can explain (LabError) print as one sentence and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from .base import SUITE, SUITES
from .lab import Lab
from .util import LabError


def _parser() -> argparse.ArgumentParser:
    # `--lab NAME` before or after the subcommand (`lab --lab x down`, `lab down --lab x`):
    # SUPPRESS keeps a subcommand's absent option from overwriting the top-level one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lab", metavar="NAME", default=argparse.SUPPRESS,
                        help="lab name (default: $PJ_LAB or 'pj')")
    p = argparse.ArgumentParser(
        prog="pyinfra-jupyter lab", parents=[common],
        description="Disposable Debian hosts (systemd-nspawn) for tests and demos.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common],
                        help="make sure N hosts are running (keeps existing ones)")
    up.add_argument("count", nargs="?", type=int, default=1, metavar="N")
    up.add_argument("--distro", choices=sorted(SUITES), default=None,
                    help="Debian release of the hosts: N hosts of it are made sure of "
                    f"(default: {SUITE}, and N counts every host)")
    up.add_argument("--arch", choices=["amd64", "arm64"], default=None,
                    help="architecture of the hosts: arm64 runs emulated (qemu-user-static, "
                    "binfmt_misc); slow")
    sub.add_parser("down", parents=[common],
                   help="remove the lab: hosts, namespaces, processes, state")
    rb = sub.add_parser("reboot", parents=[common],
                        help="reboot a host as a machine reboots (what runs, and the firewall "
                        "rules, start again from its boot config)")
    rb.add_argument("host", metavar="HOST", help="the host's name (as `status` lists it)")
    st = sub.add_parser("status", parents=[common], help="show the lab's hosts")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _table(status: dict) -> str:
    if not status.get("up"):
        return f"lab {status['lab']}: not up (run `pyinfra-jupyter lab up`)"
    lines = [
        f"lab {status['lab']}: bridge {status['lab_address']} ({status['subnet']}) "
        f"in netns {status['lab_netns']}, probe netns {status['probe_netns']}",
        f"ssh: user {status['ssh_user']}, key {status['ssh_key']}",
        f"proxy inside hosts: {status['proxy_url']}",
        "",
        f"{'NAME':<12} {'ADDRESS':<15} {'SSH':<17} {'NETNS':<14} {'PID':>8}  {'DISTRO':<9} "
        f"{'MEMORY':>7}  STATE",
    ]
    for h in status["hosts"]:
        lines.append(
            f"{h['name']:<12} {h['address']:<15} 127.0.0.1:{h['ssh_port']:<7} "
            f"{h['netns']:<14} {h['pid']:>8}  {h.get('distro', SUITE):<9} "
            f"{_mb(h.get('memory_mb')):>7}  {'running' if h['running'] else 'DEAD'}"
        )
    if status.get("services"):
        lines += ["", "services: " + ", ".join(status["services"])]
    return "\n".join(lines)


def _mb(value) -> str:
    return "-" if value is None else f"{value} MB"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        lab = Lab(getattr(args, "lab", None), log=lambda msg: print(msg, file=sys.stderr, flush=True))
        if args.command == "up":
            status = lab.up(args.count, distro=args.distro, arch=args.arch)
            print(_table(status))
        elif args.command == "down":
            lab.down()
            print(f"lab {lab.name} is down")
        elif args.command == "reboot":
            host = lab.reboot(args.host)
            print(f"host {host['name']} rebooted in {host['boot_seconds']} s")
        else:
            status = lab.status()
            print(json.dumps(status, indent=2) if args.json else _table(status))
    except LabError as exc:
        print(f"pyinfra-jupyter lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyinfra-jupyter lab: interrupted (run `lab down` to clean up)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
