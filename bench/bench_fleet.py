"""Fleet figures: first converge and no-op re-run at N = 1, 5, 10 hosts, each also as a ratio.

    python bench/bench_fleet.py [--sizes 1,5,10] [--mode hub|notebook] [--wheels auto|index]
                                [--by-hand] [--json FILE]

For each size, a lab of its own (bare hosts from the lab's base), then:
- the first converge of all N hosts in one `pyinfra -y INVENTORY deploy.py` run;
- a no-op re-run, with the remote commands per host counted from pyinfra's --debug log;
- the floor: one `true` per host over pyinfra's own connector, in the same run shape;
- each host's memory once converged: the PSS of all its processes (`lab status`).
Ratios: no-op / floor, and N hosts / 1 host for both runs. With --by-hand, the first size's
lab also gets a host on which bench/byhand_hub.sh does the same unavoidable installs in one
shell script (packages, the hub's venv with the same pins, npm and the proxy), for
converge / by-hand. Prints a table, writes JSON (default bench/results/fleet-MODE.json).
Reports; asserts nothing. Needs root (the lab).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_noop import floor  # noqa: E402  one `true` per host: what any run costs at least

PYINFRA = [sys.executable, "-m", "pyinfra", "-y"]
PASSWORD = "bench-Pw-1"
NOTEBOOK = {
    "mode": "notebook",
    "tls": {"type": "self-signed"},
    "notebook": {"instances": [{"name": "lab", "user": "scientist", "port": 8888, "ip": "*",
                                "password": PASSWORD}]},
}


def inventory(lab, path: Path, mode: str, wheels: str, hosts=None) -> Path:
    from pyinfra_jupyter.lab import network_spec

    status = lab.status()
    data = {"network": network_spec(status), "python": {"wheels": wheels}}
    if mode == "notebook":
        data.update(NOTEBOOK)
    rows = []
    for h in status["hosts"]:
        if hosts is not None and h["name"] not in hosts:
            continue
        rows.append((h["name"], {"ssh_hostname": "127.0.0.1", "ssh_port": h["ssh_port"],
                                 "ssh_user": status["ssh_user"], "ssh_key": status["ssh_key"],
                                 "ssh_strict_host_key_checking": "no",
                                 "ssh_known_hosts_file": "/dev/null", **data}))
    path.write_text(f"bench_hosts = {rows!r}\n")
    return path


def run(inv: Path, *args: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run([*PYINFRA, *args, str(inv), *(["deploy.py"] if not args or
                                                         args[0] != "exec" else [])],
                          cwd=REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"pyinfra failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout + proc.stderr


def memory_mb(lab, name: str) -> int:
    """The host's processes' memory (PSS), as `lab status` reports it."""
    return lab.memory_mb(name)


def by_hand(lab, name: str) -> float:
    """bench/byhand_hub.sh on a bare host; the controller's CA certificates (the machine's
    egress may inspect TLS) are trusted first, untimed, as the deploy's network step does."""
    import shlex

    from pyinfra_jupyter.lab import network_spec

    script = (REPO / "bench" / "byhand_hub.sh").read_text()
    net = network_spec(lab.status())
    proxy = net["http_proxy"]
    for i, pem in enumerate(net["ca_certificates"]):
        lab.host_exec(name, "mkdir -p /usr/local/share/ca-certificates && "
                            f"printf %s {shlex.quote(pem)} > "
                            f"/usr/local/share/ca-certificates/bench-{i}.crt", check=True)
    lab.host_exec(name, "update-ca-certificates >/dev/null 2>&1 || true", check=True)
    start = time.monotonic()
    lab.host_exec(name, f"export PROXY={proxy!r}; " + script, check=True, timeout=3600)
    return time.monotonic() - start


def measure(size: int, mode: str, wheels: str, want_by_hand: bool, workdir: Path) -> dict:
    from pyinfra_jupyter.lab import Lab

    lab = Lab("bf" + secrets.token_hex(3))
    row: dict = {"hosts": size, "mode": mode, "wheels": wheels}
    try:
        status = lab.up(size + (1 if want_by_hand else 0))
        names = [h["name"] for h in status["hosts"]]
        fleet = names[:size]
        inv = inventory(lab, workdir / f"{lab.name}.py", mode, wheels, fleet)
        row["first_converge_s"], _ = run(inv)
        row["floor_s"] = floor(str(inv))
        noops, commands = [], []
        for _ in range(3):
            elapsed, output = run(inv, "--debug")
            noops.append(elapsed)
            commands.append(output.count("Running command on") / size)
            total = re.search(r"Grand total\s+\d+\s+(\S+)\s+(\S+)", output)
            if not total or total.groups() != ("-", "-"):
                print("  (a no-op run reported changes)", file=sys.stderr)
        row["noop_s"] = sorted(noops)[1]
        row["noop_commands_per_host"] = sorted(commands)[1]
        row["memory_mb"] = [memory_mb(lab, n) for n in fleet]
        if want_by_hand:
            row["by_hand_s"] = by_hand(lab, names[-1])
        return row
    finally:
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10")
    parser.add_argument("--mode", choices=("hub", "notebook"), default="hub")
    parser.add_argument("--wheels", choices=("auto", "index", "controller"), default="auto")
    parser.add_argument("--by-hand", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = Path("/var/tmp") / f"pj-bench-fleet-{secrets.token_hex(3)}"
    workdir.mkdir(mode=0o700)
    rows = []
    for i, size in enumerate(int(s) for s in args.sizes.split(",")):
        print(f"-- {size} host(s), {args.mode}, wheels {args.wheels} ...", flush=True)
        rows.append(measure(size, args.mode, args.wheels, args.by_hand and i == 0, workdir))
        print(json.dumps(rows[-1]), flush=True)
    one = rows[0]
    print(f"\n{'hosts':>5} {'converge':>9} {'x1':>5} {'no-op':>7} {'x1':>5} {'floor':>6} "
          f"{'/floor':>6} {'cmds/host':>9} {'mem MB':>8}")
    for row in rows:
        print(f"{row['hosts']:>5} {row['first_converge_s']:>8.1f}s "
              f"{row['first_converge_s'] / one['first_converge_s']:>5.2f} "
              f"{row['noop_s']:>6.1f}s {row['noop_s'] / one['noop_s']:>5.2f} "
              f"{row['floor_s']:>5.1f}s {row['noop_s'] / row['floor_s']:>6.1f} "
              f"{row['noop_commands_per_host']:>9.1f} "
              f"{max(row['memory_mb']):>8}")
    if "by_hand_s" in one:
        print(f"\nby hand (bench/byhand_hub.sh): {one['by_hand_s']:.1f} s; "
              f"converge / by hand = {one['first_converge_s'] / one['by_hand_s']:.2f}")
    out = args.json or REPO / "bench" / "results" / f"fleet-{args.mode}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
    print(f"written: {out}")
    return 0


def machine() -> dict:
    import os
    import platform

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


if __name__ == "__main__":
    sys.exit(main())
