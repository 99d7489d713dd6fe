"""firewalld backend (CentOS/RHEL default): the default zone, changed as a diff.

Changes go to the permanent configuration only, then one `firewall-cmd --reload` makes
them live together (firewalld rebuilds its whole ruleset in one go); a stopped firewalld
gets its zone written offline before it is started. firewalld accepts
loopback and established traffic itself; the kernel range and the API ports get rich
`drop` rules, which firewalld evaluates before any port it allows.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import systemd

from pyinfra_jupyter.spec.firewall import FirewallSpec

from ..ops.facts import fact_probe, probed_fact
from ..platform import Platform
from . import guard
from .common import guarded, install, plan_name
from .rules import RuleSet

# The service every firewalld default zone has that we keep: DHCPv6 replies (fe80::/10).
SERVICES = ["dhcpv6-client"]


def desired_zone(rules: RuleSet) -> dict:
    """The zone's services, ports and rich rules, as `firewall-cmd --list-all` prints them."""
    ports, rich = [], []
    for c in rules.closed:
        rich.append(f'rule port port="{c.ports}" protocol="{c.proto}" drop')
    for port_range, proto, fams in rules.world_pairs():
        if fams == (4, 6):
            ports.append(f"{port_range}/{proto}")
        else:
            family = "ipv4" if fams == (4,) else "ipv6"
            rich.append(f'rule family="{family}" port port="{port_range}" protocol="{proto}" accept')
    for a in rules.sourced():
        family = "ipv4" if a.family == 4 else "ipv6"
        rich.append(f'rule family="{family}" source address="{a.source}" '
                    f'port port="{a.ports}" protocol="{a.proto}" accept')
    return {"services": list(SERVICES), "ports": ports, "rich_rules": rich}


def _list_all(lines: list[str]) -> dict:
    zone = {"services": [], "ports": [], "rich_rules": []}
    in_rich = False
    for raw in lines:
        line = raw.strip()
        if in_rich and line.startswith("rule"):
            zone["rich_rules"].append(line)
            continue
        in_rich = False
        key, _, value = line.partition(":")
        if key == "services":
            zone["services"] = value.split()
        elif key == "ports":
            zone["ports"] = value.split()
        elif key == "rich rules":
            in_rich = True
    return zone


class FirewalldZone(FactBase):
    """The default zone's name, and its permanent and runtime services/ports/rich rules.

    `zone` is None when firewalld is not running (its CLI cannot answer then).
    """

    requires_command = "firewall-cmd"

    @staticmethod
    def default() -> dict:
        return {"zone": None}

    def command(self) -> str:
        return ("firewall-cmd --state >/dev/null 2>&1 || exit 0; "
                "Z=$(firewall-cmd --get-default-zone); echo \"zone: $Z\"; "
                "echo '-- permanent'; firewall-cmd --permanent --zone=\"$Z\" --list-all; "
                "echo '-- runtime'; firewall-cmd --zone=\"$Z\" --list-all")

    def process(self, output: list[str]) -> dict:
        if not output or not output[0].startswith("zone:"):
            return self.default()
        text = list(output)
        perm = text.index("-- permanent")
        run = text.index("-- runtime")
        return {"zone": text[0].split(":", 1)[1].strip(),
                "permanent": _list_all(text[perm + 1:run]),
                "runtime": _list_all(text[run + 1:])}


def _norm(zone: dict) -> dict:
    return {k: sorted(zone.get(k, [])) for k in ("services", "ports", "rich_rules")}


def running(state: dict | None) -> bool:
    return bool(state and state.get("zone"))


def diff(state: dict | None, wanted: dict) -> tuple[list[str], list[str]]:
    """(added, removed), in firewall-cmd's words ("port 22/tcp", "service ssh", "rule …")."""
    live = (running(state) and state.get("permanent")) or {"services": [], "ports": [], "rich_rules": []}
    added, removed = [], []
    for key, label in (("services", "service "), ("ports", "port "), ("rich_rules", "")):
        added += [label + v for v in wanted[key] if v not in live[key]]
        removed += [label + v for v in live[key] if v not in wanted[key]]
    return added, removed


@operation()
def zone(services: list[str], ports: list[str], rich_rules: list[str]):
    """Make the default zone allow exactly these services, ports and rich rules.

    + services: firewalld service names to keep (e.g. ``dhcpv6-client``)
    + ports: ``22/tcp``, ``8000-8010/tcp``
    + rich_rules: as ``firewall-cmd --list-rich-rules`` prints them

    With firewalld running, the permanent configuration changes and one reload makes it
    live. With firewalld stopped, `firewall-offline-cmd` writes the zone first and only then
    is firewalld started: it never runs, even for a moment, with a zone that lacks SSH.
    """
    state = probed_fact(host, "firewalld_zone", FirewalldZone)
    wanted = {"services": services, "ports": ports, "rich_rules": rich_rules}

    def opts(flag: str, values: list[str]) -> str:
        return " ".join(f"--{flag}={shlex.quote(v)}" for v in values)

    commands = []
    if not running(state):
        base = "firewall-offline-cmd"  # acts on the default zone
        name = "(default)"
        commands.append(
            f"for s in $({base} --list-services); do {base} --remove-service=$s; done; "
            f"for p in $({base} --list-ports); do {base} --remove-port=$p; done; "
            f"{base} --list-rich-rules | while read -r r; do {base} --remove-rich-rule=\"$r\"; "
            "done")
        live = {"services": [], "ports": [], "rich_rules": []}
    else:
        name = state["zone"]
        base = f"firewall-cmd --permanent --zone={name}"
        live = state["permanent"]
    # Add before removing; all of it is permanent-only until the reload (or the start).
    for key, flag in (("services", "service"), ("ports", "port"), ("rich_rules", "rich-rule")):
        new = [v for v in wanted[key] if v not in live[key]]
        if new:
            commands.append(f"{base} {opts('add-' + flag, new)}")
    for key, flag in (("services", "service"), ("ports", "port"), ("rich_rules", "rich-rule")):
        old = [v for v in live[key] if v not in wanted[key]]
        if old:
            commands.append(f"{base} {opts('remove-' + flag, old)}")
    if not running(state):
        commands.append("systemctl start firewalld.service")
    else:
        runtime_drift = _norm(state["runtime"]) != _norm(wanted)
        if commands or runtime_drift:
            commands.append("firewall-cmd --reload")
    if not commands:
        host.noop(f"firewalld zone {name} already matches the spec")
    yield from commands


D = guard.STATE_DIR
SAVE = [f"cp -a /etc/firewalld {D}/firewalld",
        f"if systemctl is-active --quiet firewalld.service; then touch {D}/active; fi"]
# Put the configuration back, and firewalld in the state it was in: a firewalld that was
# stopped (with sshd perhaps on a port its default zone does not open) is stopped again.
RESTORE = ["rm -rf /etc/firewalld",
           f"cp -a {D}/firewalld /etc/firewalld",
           f"if [ -e {D}/active ]; then firewall-cmd --reload; "
           "else systemctl stop firewalld.service; fi"]
RESTORE_AT_BOOT = [f"rm -rf /etc/firewalld && cp -a {D}/firewalld /etc/firewalld"]


def apply(rules: RuleSet, platform: Platform, fw: FirewallSpec,
          over_ssh: bool) -> None:
    install(platform, "firewalld", "firewalld", probe="firewalld_zone")
    wanted = desired_zone(rules)
    state = probed_fact(host, "firewalld_zone", FirewalldZone)
    added, removed = diff(state, wanted)
    if running(state) and not (added or removed) and _norm(state["runtime"]) != _norm(wanted):
        added = ["(runtime differs from the permanent configuration: reload)"]
    if not running(state):
        added = ["(firewalld not running: write the whole zone, then start it)"] + added
    guarded(changes=bool(added or removed), save=SAVE, restore=RESTORE,
            restore_at_boot=RESTORE_AT_BOOT,
            seconds=fw.rollback_seconds, over_ssh=over_ssh,
            apply=lambda: zone(name=plan_name("firewalld", added, removed), **wanted))
    # Enabled (loads /etc/firewalld at boot) only once the rules are confirmed.
    systemd.service(name="Start and enable firewalld (loads the zone at boot)",
                    service="firewalld.service", running=True, enabled=True)


def snapshot_reads(rules: RuleSet, platform: Platform) -> dict:
    """What apply() reads, for the run's snapshot: the rule state."""
    return {"probes": [fact_probe("firewalld_zone", FirewalldZone)]}
