"""nftables backend: one table of ours, `inet pyinfra_jupyter`, replaced atomically by `nft -f`.

Drift is found by comparing `nft list table` with nft's own rendering of the desired file,
made in a throwaway network namespace (`unshare --net`): both sides are printed by the same
nft, so formatting differences between nft versions never look like drift.
"""

from __future__ import annotations

import base64
import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import files

from pyinfra_jupyter.spec.firewall import FirewallSpec

from ..items import Directory, File
from ..ops import converge
from ..ops.facts import fact_probe, line_of, probed_fact
from ..platform import Platform
from . import guard
from .common import enabled_at_boot, guarded, install, load_from_file, plan_name, render
from .rules import RuleSet

TABLE = "inet pyinfra_jupyter"
CONF_DIR = "/etc/pyinfra-jupyter/firewall"
CONF = f"{CONF_DIR}/pyinfra-jupyter.nft"
BOOT_CONF = "/etc/nftables.conf"
BOOT_LINE = f'include "{CONF}"'
BOOT_UNIT = "nftables.service"
_MARK = "--- pyinfra-jupyter desired ---"


def render_table(rules: RuleSet) -> str:
    return render("pyinfra-jupyter.nft", rules=rules)


class NftTable(FactBase):
    """Our table as nft lists it, and the desired file as the same nft would list it."""

    requires_command = "nft"

    def command(self, desired: str) -> str:
        # base64, not a here-document: pyinfra wraps fact commands in `( … )` on one line.
        encoded = base64.b64encode(desired.encode()).decode()
        return (f"nft list table {TABLE} 2>/dev/null; echo '{_MARK}'; echo {encoded} | "
                f"base64 -d | unshare --net sh -c 'nft -f - && nft list table {TABLE}'")

    def process(self, output: list[str]) -> dict:
        lines = [line.strip() for line in output if line.strip()]
        cut = lines.index(_MARK) if _MARK in lines else len(lines)
        return {"live": lines[:cut], "desired": lines[cut + 1:]}


def table_state(desired: str) -> dict | None:
    """NftTable for `desired`: from the run's snapshot (snapshot_reads put it there), else
    its own fact."""
    return probed_fact(host, "nft_table", NftTable, desired=desired)


def snapshot_reads(rules: RuleSet, platform: Platform) -> dict:
    """What apply() reads, for the run's snapshot: both tables, the rules file, the unit."""
    return {"paths": [CONF_DIR, CONF], "units": [BOOT_UNIT],
            "probes": [fact_probe("nft_table", NftTable, desired=render_table(rules))]}


def diff(state: dict | None) -> tuple[list[str], list[str]]:
    """(added, removed) rule lines; the whole desired table when nothing is live."""
    if not state:
        return ["table inet pyinfra_jupyter (new)"], []
    live, desired = state["live"], state["desired"]
    if not desired:
        return ["table inet pyinfra_jupyter (cannot render it: is nft installed?)"], []
    added = [line for line in desired if line not in live]
    removed = [line for line in live if line not in desired]
    if not added and not removed and live != desired:
        added = ["(rule order)"]
    return added, removed


@operation()
def table(desired: str):
    """Load our table from `desired` (an nft file) unless the live table already matches.

    + desired: the full nft file, which deletes and rebuilds `inet pyinfra_jupyter`
    """
    added, removed = diff(table_state(desired))
    if not added and not removed:
        host.noop(f"nftables table {TABLE} already matches the spec")
        return
    # Checked (`nft -c`) before it is loaded; one `nft -f` swaps the table atomically.
    yield from load_from_file(desired, "pending.nft", "nft -c -f {path} && nft -f {path}")


SAVE = [f"nft list table {TABLE} > {guard.STATE_DIR}/table.nft 2>/dev/null || true"]
RESTORE = [f"nft delete table {TABLE} 2>/dev/null; "
           f"if [ -s {guard.STATE_DIR}/table.nft ]; then nft -f {guard.STATE_DIR}/table.nft; fi"]


def apply(rules: RuleSet, platform: Platform, fw: FirewallSpec,
          over_ssh: bool) -> None:
    install(platform, "nftables", "nftables", probe="nft_table")
    desired = render_table(rules)
    added, removed = diff(table_state(desired))
    guarded(changes=bool(added or removed), save=SAVE, restore=RESTORE,
            seconds=fw.rollback_seconds, over_ssh=over_ssh,
            apply=lambda: table(name=plan_name("nftables", added, removed), desired=desired))
    # Persist only after the confirm step: a rolled-back rule set never reaches the boot config.
    converge.directory(name=f"Create {CONF_DIR}", item=Directory(CONF_DIR, mode="755"))
    converge.file(name=f"Keep the rules for boot in {CONF}",
                  item=File(CONF, desired, mode="644"))
    boot_include(name=f"Load {CONF} at boot from {BOOT_CONF}",
                 found=line_of(host, BOOT_CONF, BOOT_LINE))
    # Enabled, not (re)started: starting nftables.service runs `flush ruleset`, which would
    # wipe other tables (docker, libvirt); our table is already live.
    enabled_at_boot(name=f"Enable {BOOT_UNIT} (loads the rules at boot)", unit=BOOT_UNIT)


@operation()
def boot_include(found: str | None):
    """Add `include "CONF"` to the boot config (made if missing) unless a line already
    starts with it.

    + found: the first line of BOOT_CONF starting with BOOT_LINE (ops.facts.line_of), or None
    """
    if found is not None:
        host.noop(f"{BOOT_CONF} includes {CONF}")
        return
    conf = shlex.quote(BOOT_CONF)
    # A last line without its newline gets one first: the include must be a line of its own.
    yield (f"if [ -s {conf} ] && [ -n \"$(tail -c 1 {conf})\" ]; then echo >> {conf}; fi; "
           f"printf '%s\\n' {shlex.quote(BOOT_LINE)} >> {conf}")


class NftTableExists(FactBase):
    """Is our table loaded?"""

    requires_command = "nft"

    def command(self) -> str:
        return f"if nft list table {TABLE} >/dev/null 2>&1; then echo yes; else echo no; fi"

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[0].strip() == "yes"


@operation()
def drop_table():
    """Delete our table (uninstall): the host's other tables stay as they were.

    + (none)
    """
    if not host.get_fact(NftTableExists):
        host.noop(f"no nftables table {TABLE}")
        return
    yield f"nft delete table {TABLE}"


def remove() -> None:
    """Uninstall: our table is all the deploy added to the ruleset, so deleting it (and its
    line in the boot config) puts the firewall back as it was before. It only opens, never
    closes, so it cannot cut SSH and needs no rollback guard."""
    drop_table(name=f"Delete the nftables table {TABLE} (the host's other rules stay)")
    files.line(name=f"Stop loading {CONF} at boot ({BOOT_CONF})", path=BOOT_CONF,
               line=f'^include "{CONF}"$', present=False)

