"""iptables backend (legacy hosts): the whole filter table, loaded with iptables-restore.

The desired tables are written in iptables-save's own format, so the live tables
(`iptables-save -t filter`, counters and comments dropped) compare line by line. This backend
owns the filter table: anything else in it (e.g. Docker's chains) is replaced.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import files, systemd

from pyinfra_jupyter.spec.firewall import FirewallSpec

from ..ops.converge import upload_source
from ..ops.facts import fact_probe, forget_probe, probed_fact, snapshot_of
from ..platform import Platform
from . import guard
from .common import enabled_at_boot, guarded, install, load_from_file, plan_name, render
from .rules import RuleSet

_MARK = "--- ip6tables ---"


def _tag(comment: str) -> str:
    # iptables-save prints a comment bare when it has no space or quote; keep ours that way.
    return "pj:" + re.sub(r"[^A-Za-z0-9_.-]+", "-", comment).strip("-")[:60]


def render_tables(rules: RuleSet) -> tuple[str, str]:
    return tuple(render("iptables.rules", rules=rules, family=f, tag=_tag) for f in (4, 6))


def normalize(text: str | list[str]) -> list[str]:
    lines = text.splitlines() if isinstance(text, str) else text
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"\s*\[\d+:\d+\]$", "", line)
        # iptables 1.4 (CentOS 7) prints a simple comment bare, 1.8 (Debian 12, nft) quotes it.
        out.append(re.sub(r'--comment "([^"\s]*)"', r"--comment \1", line))
    return out


class IptablesFilter(FactBase):
    """The live filter tables, IPv4 and IPv6, as iptables-save prints them (normalized)."""

    requires_command = "iptables-save"

    def command(self) -> str:
        return f"iptables-save -t filter; echo '{_MARK}'; ip6tables-save -t filter"

    def process(self, output: list[str]) -> dict:
        lines = list(output)
        cut = lines.index(_MARK) if _MARK in lines else len(lines)
        return {"v4": normalize(lines[:cut]), "v6": normalize(lines[cut + 1:])}


def diff(state: dict | None, v4: str, v6: str) -> tuple[list[str], list[str]]:
    added, removed = [], []
    for key, text in (("v4", v4), ("v6", v6)):
        live, want = (state or {}).get(key, []), normalize(text)
        tag = "IPv4" if key == "v4" else "IPv6"
        added += [f"{tag} {r}" for r in want if r not in live]
        removed += [f"{tag} {r}" for r in live if r not in want]
        if not added and not removed and live != want:
            added.append(f"{tag} (rule order)")
    return added, removed


@operation()
def filter_tables(v4: str, v6: str):
    """Load the IPv4 and IPv6 filter tables (iptables-save format) unless they already match.

    + v4, v6: whole ``*filter`` tables, each applied in one iptables-restore transaction
    """
    state = probed_fact(host, "iptables_filter", IptablesFilter)
    done = True
    for key, text, restore in (("v4", v4, "iptables-restore"), ("v6", v6, "ip6tables-restore")):
        if (state or {}).get(key) != normalize(text):
            done = False
            yield from load_from_file(text, f"pending.{key}",
                                      f"{restore} --test < {{path}} && {restore} < {{path}}")
    if done:
        host.noop("iptables filter tables already match the spec")


SAVE = [f"iptables-save -t filter > {guard.STATE_DIR}/v4",
        f"ip6tables-save -t filter > {guard.STATE_DIR}/v6"]
RESTORE = [f"iptables-restore < {guard.STATE_DIR}/v4",
           f"ip6tables-restore < {guard.STATE_DIR}/v6"]


def apply(rules: RuleSet, platform: Platform, fw: FirewallSpec,
          over_ssh: bool) -> None:
    install(platform, "iptables", "iptables and its boot-time loader",
            probe="iptables_filter")
    for unit in platform.family.iptables_conflicts:
        if (snapshot_of(host, "units", unit) or {}).get("ActiveState") == "active":
            # Stopping it (below) changes the tables before the rules are read again.
            forget_probe(host, "iptables_filter")
        # e.g. iptables-services and firewalld both own the tables: only one may run.
        systemd.service(name=f"Stop and disable {unit} (the iptables backend replaces it)",
                        service=unit, running=False, enabled=False)
    v4, v6 = render_tables(rules)
    added, removed = diff(probed_fact(host, "iptables_filter", IptablesFilter), v4, v6)
    guarded(changes=bool(added or removed), save=SAVE, restore=RESTORE,
            seconds=fw.rollback_seconds, over_ssh=over_ssh,
            apply=lambda: filter_tables(name=plan_name("iptables", added, removed), v4=v4, v6=v6))
    path4, path6, services = platform.family.iptables_persist
    for path, text in ((path4, v4), (path6, v6)):
        files.put(name=f"Keep the rules for boot in {path}", src=upload_source(text), dest=path,
                  mode="600", create_remote_dir=True)
    for service in services:
        enabled_at_boot(name=f"Enable {service} (loads the rules at boot)", unit=service)


def snapshot_reads(rules: RuleSet, platform: Platform) -> dict:
    """What apply() reads, for the run's snapshot: the rule state, the boot unit."""
    return {"units": [*platform.family.iptables_persist[2], *platform.family.iptables_conflicts],
            "probes": [fact_probe("iptables_filter", IptablesFilter)]}
