"""Manage the host firewall: default deny inbound; SSH, the public ports and `allow` extras
open; the kernel range 49152-65535 and the hub/proxy API ports reachable from loopback only.

The rule set comes from the spec alone (`rules.build`); each backend module renders it in
its own terms (nftables, ufw, firewalld, iptables), applies only the difference with the
live rules under a rollback timer, and makes it persist across reboots.
"""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError

from pyinfra_jupyter.spec import SiteSpec

from ..ops.facts import memo
from ..platform import Platform
from ..site import Site
from . import firewalld, iptables, nftables, ufw
from .facts import SshConnection
from .nftables import BOOT_CONF, BOOT_LINE
from .rules import RulesError, RuleSet, build, check_ssh

BACKENDS = {"nftables": nftables, "ufw": ufw, "firewalld": firewalld, "iptables": iptables}


def backend_for(spec: SiteSpec, platform: Platform) -> str:
    backend = spec.firewall.backend
    return platform.firewall_backend if backend == "auto" else backend


def planned(site: Site) -> RuleSet:
    """This host's rule set for this run (`plan`, worked out once: the snapshot's reads and
    the operations both need it)."""
    return memo(host, "firewall-rules", lambda: plan(site.spec, ssh_connection(site)))


def plan(spec: SiteSpec, connection: dict | None) -> RuleSet:
    """The rule set, refused (DeployError) if it contradicts itself or would cut SSH."""
    port = connection["port"] if connection else None
    try:
        rules = build(spec, port)
        check_ssh(rules, connection["client"] if connection else None, port)
    except RulesError as exc:
        raise DeployError(f"{host.name}: " + "\n".join(exc.problems)) from None
    return rules


NAME = "firewall"
TITLE = "Firewall"


def wanted(spec: SiteSpec) -> bool:
    return True


def reads(spec: SiteSpec) -> dict:
    # Whether the boot config already includes our rules file (nftables; `auto` is nftables
    # on most distros): read with the host's facts, at no extra command.
    if spec.firewall.backend in ("auto", "nftables"):
        return {"lines": [(BOOT_CONF, BOOT_LINE)]}
    return {}


def ssh_connection(site: Site) -> dict | None:
    """Where this run's SSH connection arrives: from the host's facts, or (under sudo, which
    may reset the environment and SSH_CONNECTION with it) its own fact, run without sudo."""
    if "ssh_connection" in site.facts:
        return site.facts["ssh_connection"]
    return host.get_fact(SshConnection, _sudo=False)


def snapshot_reads(site: Site) -> dict:
    """What the backend's operations read, for the run's one snapshot: its packages and
    boot unit, and (nftables) the live and desired tables and the rules file."""
    backend = backend_for(site.spec, site.platform)
    if backend == "none":
        return {}
    module = BACKENDS[backend]
    wanted = {"packages": list(site.platform.family.firewall_packages[backend])}
    if hasattr(module, "snapshot_reads"):
        rules = planned(site)
        for key, values in module.snapshot_reads(rules, site.platform).items():
            wanted.setdefault(key, []).extend(values)
    return wanted


def run(site: Site, changed: dict[str, bool]) -> None:
    spec, platform = site.spec, site.platform
    backend = backend_for(spec, platform)
    if backend == "none":
        logger.warning(f"{host.print_prefix}firewall.backend = none: the host firewall is not "
                       "managed; keep 49152-65535 closed to the outside (see the site notes)")
        return
    BACKENDS[backend].apply(planned(site), platform, spec.firewall, site.over_ssh)


def remove(site: Site) -> None:
    """Uninstall our rules. nftables: delete our table, which restores what was there before.
    ufw, firewalld and iptables own the whole rule set they manage, so there is no "before" to
    go back to: they keep a safe default instead — inbound denied except SSH (the connected
    port and `ssh_ports`), applied under the same rollback guard as a deploy."""
    spec, platform = site.spec, site.platform
    backend = backend_for(spec, platform)
    if backend == "none":
        return
    if backend == "nftables":
        nftables.remove()
        return
    rules = planned(site)
    ssh_only = RuleSet(allow=tuple(a for a in rules.allow if a.comment == "SSH"), closed=())
    BACKENDS[backend].apply(ssh_only, platform, spec.firewall, site.over_ssh)
