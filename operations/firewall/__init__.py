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

from ..platform import Platform
from ..site import Site
from . import firewalld, iptables, nftables, ufw
from .facts import SshConnection
from .rules import RulesError, RuleSet, build, check_ssh

BACKENDS = {"nftables": nftables, "ufw": ufw, "firewalld": firewalld, "iptables": iptables}


def backend_for(spec: SiteSpec, platform: Platform) -> str:
    backend = spec.firewall.backend
    return platform.firewall_backend if backend == "auto" else backend


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


def run(site: Site, changed: dict[str, bool]) -> None:
    spec, platform = site.spec, site.platform
    backend = backend_for(spec, platform)
    if backend == "none":
        logger.warning(f"{host.print_prefix}firewall.backend = none: the host firewall is not "
                       "managed; keep 49152-65535 closed to the outside (see the site notes)")
        return
    # Without sudo: sudo may reset the environment, and SSH_CONNECTION with it.
    rules = plan(spec, host.get_fact(SshConnection, _sudo=False))
    BACKENDS[backend].apply(rules, platform, spec.firewall, site.over_ssh)


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
    rules = plan(spec, host.get_fact(SshConnection, _sudo=False))
    ssh_only = RuleSet(allow=tuple(a for a in rules.allow if a.comment == "SSH"), closed=())
    BACKENDS[backend].apply(ssh_only, platform, spec.firewall, site.over_ssh)
