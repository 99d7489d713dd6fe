"""Memory of converged hosts: a hub host with an idle user server, and a notebook host.

    python bench/bench_memory.py [--json FILE]

Two bare lab hosts: one gets the default hub site (group_data/all.py), the other the
notebook site of bench_fleet.py. Once converged, the hub's admin gets a server through the
hub's REST API (a token made on the host with `jupyterhub token`, never printed), and after
it settles each host's memory is read: the PSS of all its processes (`lab status`). Prints a table, writes JSON (default bench/results/memory.json). Needs root.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_fleet import inventory, machine, run  # noqa: E402

SETTLE_S = 20
START_SERVER = (
    "cd /var/lib/jupyterhub && t=$(/opt/jupyterhub/bin/jupyterhub token admin "
    "-f /etc/jupyterhub/jupyterhub_config.py 2>/dev/null | tail -n 1) && "
    "curl -sk -o /dev/null -w '%{http_code}' -X POST -H \"Authorization: token $t\" "
    "https://127.0.0.1/hub/api/users/admin/server"
)



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from pyinfra_jupyter.lab import Lab

    lab = Lab("bm" + secrets.token_hex(3))
    workdir = Path("/var/tmp") / f"pj-bench-memory-{secrets.token_hex(3)}"
    workdir.mkdir(mode=0o700)
    rows = {}
    try:
        hub_host, nb_host = (h["name"] for h in lab.up(2)["hosts"])
        run(inventory(lab, workdir / "hub.py", "hub", "auto", [hub_host]))
        run(inventory(lab, workdir / "nb.py", "notebook", "auto", [nb_host]))
        code = lab.host_exec(hub_host, START_SERVER, check=False).stdout.strip()
        print(f"admin's server: HTTP {code} (201 started, 202 starting)")
        time.sleep(SETTLE_S)
        for label, name in (("hub host (hub, proxy, admin's idle server)", hub_host),
                            ("notebook host (one server)", nb_host)):
            rows[label] = {"total_mb": lab.memory_mb(name)}
    finally:
        lab.down()
    for label, row in rows.items():
        print(f"{label}: {row['total_mb']} MB (PSS of all its processes, systemd included)")
    out = args.json or REPO / "bench" / "results" / "memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "hosts": rows}, indent=1) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
