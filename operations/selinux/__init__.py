"""SELinux on CentOS 7 (and any host where it is on): labels and ports for what we install.

Our services run from files under /opt and /etc that the deploy writes; with SELinux
enforcing, a file keeps the label of where it was made, so everything we install is
relabelled to the policy's defaults (`restorecon`), and a public port that the policy does
not already give web servers (http_port_t: 80, 443, 8008, 8443, ...) is added to it with
`semanage port`, so a confined web service may bind it too. Both are decided from the host
facts (`getenforce`, what `restorecon -n` would relabel, the http_port_t ports), so a
converged host runs nothing. On hosts without SELinux (Debian, Ubuntu) this does nothing.
"""

from __future__ import annotations

from ..items import Item, Packages, Step
from ..ops.converge import command
from ..site import Site

NAME = "selinux"
TITLE = "Keep SELinux labels and ports"
# What restorecon keeps labelled (HostFacts asks `restorecon -n` about the same paths).
RELABEL = ("/opt", "/etc/pyinfra-jupyter", "/etc/jupyterhub", "/etc/jupyter",
           "/etc/systemd/system")
# semanage on CentOS 7 (RHEL 8+: policycoreutils-python-utils).
TOOLS = {7: ("policycoreutils-python",)}
DEFAULT_TOOLS = ("policycoreutils-python-utils",)


def wanted(spec) -> bool:
    return True


def enabled(site: Site) -> bool:
    return site.facts.get("selinux") in ("Enforcing", "Permissive")


def http_ports(text: str) -> set[int]:
    """The ports of `semanage port -l`'s http_port_t line ("80,81,443,8000-8010")."""
    ports: set[int] = set()
    for part in filter(None, (text or "").replace(" ", "").split(",")):
        low, _, high = part.partition("-")
        if low.isdigit() and (high.isdigit() or not high):
            ports.update(range(int(low), int(high or low) + 1))
    return ports


def items(site: Site) -> list[Item]:
    if not enabled(site):
        return []
    timeout = site.spec.network.timeout
    tools = TOOLS.get(site.platform.version[0], DEFAULT_TOOLS)
    out: list[Item] = [Packages(tools, "semanage (SELinux port labels)", timeout=timeout)]
    allowed = http_ports(site.facts.get("selinux_http_ports", ""))
    for port in sorted(set(site.spec.public_ports())):
        if port in allowed:
            continue
        out.append(Step(command, f"Label TCP port {port} http_port_t (SELinux), for our "
                        "public services",
                        {"command": f"semanage port -a -t http_port_t -p tcp {port} 2>/dev/null "
                         f"|| semanage port -m -t http_port_t -p tcp {port}", "force": True},
                        key_name=f"selinux-port-{port}"))
    # Decided from the facts of the start of the run; the files this run writes are
    # relabelled by the next run's check, or now when anything was mislabelled.
    relabel = int(site.facts.get("selinux_relabel") or 0)
    out.append(Step(command, "Restore SELinux labels of what we install ("
                    + ", ".join(RELABEL) + ")",
                    {"command": "restorecon -R " + " ".join(RELABEL), "force": relabel > 0},
                    key_name="selinux-relabel"))
    return out
