"""Network namespaces of a lab: a bridge namespace, a probe, one per host.

Layout of lab LAB with index K (allocated per lab, see allocate_index):

* ``pjl-LAB``      the lab namespace: bridge ``br0`` with 10.231.K.1/24; lab
                   services (Pebble, fake DDNS endpoints, ...) run here.
* ``pjl-LAB-p``    the probe: 10.231.K.2, a vantage point that is not a host.
* ``pjl-LAB-N``    host N: ``eth0`` with 10.231.K.(10+N), default route via .1.

veth pairs are created *inside* the lab namespace with the peer moved straight
into the other namespace, so no interface ever appears in the machine's own
namespace and interface names cannot collide between labs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from .util import STATE_ROOT, LabError, file_lock, run

SUBNET_PREFIX = "10.231"
PORT_BASE = 20000  # lab K uses loopback ports PORT_BASE + 100*K .. +99
MAX_INDEX = 250
PROBE_OCTET = 2
HOST_OCTET_BASE = 10


def lab_ns(lab: str) -> str:
    return f"pjl-{lab}"


def probe_ns(lab: str) -> str:
    return f"pjl-{lab}-p"


def host_ns(lab: str, i: int) -> str:
    return f"pjl-{lab}-{i}"


def subnet(k: int) -> str:
    return f"{SUBNET_PREFIX}.{k}.0/24"


def lab_address(k: int) -> str:
    return f"{SUBNET_PREFIX}.{k}.1"


def probe_address(k: int) -> str:
    return f"{SUBNET_PREFIX}.{k}.{PROBE_OCTET}"


def host_address(k: int, i: int) -> str:
    return f"{SUBNET_PREFIX}.{k}.{HOST_OCTET_BASE + i}"


def ssh_port(k: int, i: int) -> int:
    return PORT_BASE + 100 * k + i


def proxy_port(k: int) -> int:
    return PORT_BASE + 100 * k + 99


def allocate_index(lab: str) -> int:
    """Pick the lowest subnet/port index no other lab's state records. Caller holds the lock."""
    used = set()
    for state in STATE_ROOT.glob("*/state.json"):
        if state.parent.name == lab:
            continue
        try:
            used.add(json.loads(state.read_text())["index"])
        except (OSError, ValueError, KeyError):
            continue
    for k in range(1, MAX_INDEX + 1):
        if k not in used and port_free(proxy_port(k)):
            return k
    raise LabError("no free lab index left (too many labs on this machine)")


def alloc_lock():
    return file_lock(STATE_ROOT / ".alloc.lock")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def ns_path(name: str) -> str:
    return f"/run/netns/{name}"


def ip(*args: str) -> None:
    run(["ip", *args])


def create_lab_ns(lab: str, k: int) -> None:
    ns = lab_ns(lab)
    if not ns_exists(ns):
        ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    if run(["ip", "-n", ns, "link", "show", "br0"], check=False).returncode != 0:
        ip("-n", ns, "link", "add", "br0", "type", "bridge")
        ip("-n", ns, "addr", "add", f"{lab_address(k)}/24", "dev", "br0")
    ip("-n", ns, "link", "set", "br0", "up")


def attach(lab: str, k: int, ns: str, port_name: str, address: str) -> None:
    """Create namespace *ns* (if needed) and plug it into the lab bridge as eth0."""
    if not ns_exists(ns):
        ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    if run(["ip", "-n", ns, "link", "show", "eth0"], check=False).returncode == 0:
        return
    lns = lab_ns(lab)
    run(["ip", "-n", lns, "link", "del", port_name], check=False)  # left over from a dead host
    ip("-n", lns, "link", "add", port_name, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("-n", lns, "link", "set", port_name, "master", "br0", "up")
    ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "route", "add", "default", "via", lab_address(k))


def flush_firewall(ns: str) -> None:
    """Drop every firewall rule held in namespace *ns* (what a host's reboot loses: its
    network namespace outlives the container). iptables-nft's rules are nftables tables."""
    run(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"])


def delete_ns(name: str) -> None:
    if ns_exists(name):
        run(["ip", "netns", "del", name], check=False)
    # `ip netns del` leaves the mount point behind if something still pins it.
    path = Path(ns_path(name))
    if path.exists():
        run(["umount", "-l", str(path)], check=False)
        with contextlib.suppress(OSError):
            path.unlink()


def lab_namespaces(lab: str) -> list[str]:
    """All namespaces belonging to *lab* (by name), hosts first, lab namespace last."""
    if not os.path.isdir("/run/netns"):
        return []
    mine = [n for n in os.listdir("/run/netns") if n.startswith(f"pjl-{lab}-")]
    if ns_exists(lab_ns(lab)):
        mine.append(lab_ns(lab))
    return mine
