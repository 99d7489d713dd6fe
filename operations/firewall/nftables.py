"""nftables backend: one table of ours, `inet pyinfra_jupyter`, replaced atomically by `nft -f`.

Drift is found by comparing `nft list table` with nft's own rendering of the desired file,
made in a throwaway network namespace (`unshare --net`): both sides are printed by the same
nft, so formatting differences between nft versions never look like drift.
"""

from __future__ import annotations

import base64

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import files

from pyinfra_jupyter.spec.firewall import FirewallSpec

from ..ops.converge import upload_source
from ..platform import Platform
from . import guard
from .common import enabled_at_boot, guarded, install, load_from_file, plan_name, render
from .rules import RuleSet

TABLE = "inet pyinfra_jupyter"
CONF = "/etc/pyinfra-jupyter/firewall/pyinfra-jupyter.nft"
BOOT_CONF = "/etc/nftables.conf"
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
    added, removed = diff(host.get_fact(NftTable, desired=desired))
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
    install(platform, "nftables", "nftables")
    desired = render_table(rules)
    added, removed = diff(host.get_fact(NftTable, desired=desired))
    guarded(changes=bool(added or removed), save=SAVE, restore=RESTORE,
            seconds=fw.rollback_seconds, over_ssh=over_ssh,
            apply=lambda: table(name=plan_name("nftables", added, removed), desired=desired))
    # Persist only after the confirm step: a rolled-back rule set never reaches the boot config.
    files.put(name=f"Keep the rules for boot in {CONF}", src=upload_source(desired), dest=CONF,
              mode="644", create_remote_dir=True)
    files.line(name=f"Load {CONF} at boot from {BOOT_CONF}", path=BOOT_CONF,
               line=f'^include "{CONF}"$')
    # Enabled, not (re)started: starting nftables.service runs `flush ruleset`, which would
    # wipe other tables (docker, libvirt); our table is already live.
    enabled_at_boot(name="Enable nftables.service (loads the rules at boot)",
                    unit="nftables.service")


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

