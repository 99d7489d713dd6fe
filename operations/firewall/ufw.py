"""ufw backend (Ubuntu's default): rules changed through the ufw CLI, as a diff.

ufw itself accepts loopback, established/related, ICMP(v6) and the DHCPv6 client in its
before*.rules; we manage only the user rules, which `ufw show added` lists in the same
syntax the CLI takes, so the diff is a plain comparison of rule strings.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation

from pyinfra_jupyter.spec.firewall import FirewallSpec

from ..ops.facts import fact_probe, probed_fact
from ..platform import Platform
from . import guard
from .common import enabled_at_boot, guarded, install, plan_name
from .rules import PortRange, RuleSet

COMMENT = "pyinfra-jupyter"


def _ports(ports: PortRange) -> str:
    return ports.text(":")


def desired_rules(rules: RuleSet) -> list[str]:
    """ufw rules (as `ufw show added` prints them, without `ufw ` and comments)."""
    out = [f"deny {_ports(c.ports)}/{c.proto}" for c in rules.closed]
    for ports, proto, fams in rules.world_pairs():
        if fams == (4, 6):
            out.append(f"allow {_ports(ports)}/{proto}")
        else:
            source = "0.0.0.0/0" if fams == (4,) else "::/0"
            out.append(f"allow from {source} to any port {_ports(ports)} proto {proto}")
    for a in rules.sourced():
        out.append(f"allow from {a.source} to any port {_ports(a.ports)} proto {a.proto}")
    return out


class UfwState(FactBase):
    """ufw's status, IPv6 switch, default input policy and user rules (comments stripped)."""

    requires_command = "ufw"

    def command(self) -> str:
        return ("ufw status | head -n 1; "
                "grep -E '^(IPV6|DEFAULT_INPUT_POLICY)=' /etc/default/ufw; ufw show added")

    def process(self, output: list[str]) -> dict:
        state = {"active": False, "ipv6": False, "input_policy": "", "rules": []}
        for line in output:
            line = line.strip()
            if line.startswith("Status:"):
                state["active"] = line.split(":", 1)[1].strip() == "active"
            elif line.startswith("IPV6="):
                state["ipv6"] = line.split("=", 1)[1].strip('"').lower() == "yes"
            elif line.startswith("DEFAULT_INPUT_POLICY="):
                state["input_policy"] = line.split("=", 1)[1].strip('"')
            elif line.startswith("ufw "):
                rule = line[4:].split(" comment ", 1)[0].strip()
                state["rules"].append(rule)
        return state


def diff(state: dict | None, wanted: list[str]) -> tuple[list[str], list[str]]:
    live = (state or {}).get("rules", [])
    return [r for r in wanted if r not in live], [r for r in live if r not in wanted]


@operation()
def rules(rules: list[str]):
    """Make ufw's user rules exactly `rules`, deny incoming by default, IPv6 on, enabled.

    + rules: ufw rule strings, e.g. ``allow 22/tcp``, ``deny 49152:65535/tcp``,
      ``allow from 10.0.0.0/8 to any port 8000 proto tcp``
    """
    state = probed_fact(host, "ufw_state", UfwState) or {}
    added, removed = diff(state, rules)
    changed = False
    if not state.get("ipv6"):
        yield "sed -i 's/^IPV6=.*/IPV6=yes/' /etc/default/ufw"
        changed = True
    if state.get("input_policy") != "DROP":
        yield "ufw default deny incoming"
        changed = True
    # Add before removing, so a port that changes rule (say SSH) is never without one.
    for rule in added:
        yield f"ufw {rule} comment {shlex.quote(COMMENT)}"
    # ufw treats a rule with the same match but another action as the same rule: adding ours
    # already replaced it in place ("Rule updated"), so there is nothing left to delete.
    replaced = {r.split(" ", 1)[1] for r in added}
    for rule in removed:
        if rule.split(" ", 1)[1] not in replaced:
            yield f"ufw delete {rule}"
    if not state.get("active"):
        yield "ufw --force enable"
        changed = True
    if not (changed or added or removed):
        host.noop("ufw rules already match the spec")


D = guard.STATE_DIR
SAVE = [f"cp -a /etc/ufw/user.rules /etc/ufw/user6.rules /etc/ufw/ufw.conf /etc/default/ufw {D}/",
        f"if ufw status | grep -q 'Status: active'; then touch {D}/active; fi"]
RESTORE = [f"cp -a {D}/user.rules {D}/user6.rules {D}/ufw.conf /etc/ufw/",
           f"cp -a {D}/ufw /etc/default/ufw",
           f"if [ -e {D}/active ]; then ufw reload; else ufw --force disable; fi"]
# At boot, before ufw.service reads them: the saved files only (ENABLED= included).
RESTORE_AT_BOOT = [RESTORE[0], RESTORE[1]]


def apply(rule_set: RuleSet, platform: Platform, fw: FirewallSpec,
          over_ssh: bool) -> None:
    install(platform, "ufw", "ufw", probe="ufw_state")
    wanted = desired_rules(rule_set)
    state = probed_fact(host, "ufw_state", UfwState)
    added, removed = diff(state, wanted)
    settings = (not state or not state.get("active") or not state.get("ipv6")
                or state.get("input_policy") != "DROP")
    if settings:
        added = ["deny incoming by default, IPv6 on, enabled"] + added
    guarded(changes=bool(added or removed), save=SAVE, restore=RESTORE,
            restore_at_boot=RESTORE_AT_BOOT, seconds=fw.rollback_seconds, over_ssh=over_ssh,
            apply=lambda: rules(name=plan_name("ufw", added, removed), rules=wanted))
    # ufw keeps its rules in /etc/ufw and ufw.service loads them at boot.
    enabled_at_boot(name="Enable ufw.service (loads the rules at boot)", unit="ufw.service")


def snapshot_reads(rules: RuleSet, platform: Platform) -> dict:
    """What apply() reads, for the run's snapshot: the rule state, the boot unit."""
    return {"units": ["ufw.service"], "probes": [fact_probe("ufw_state", UfwState)]}
