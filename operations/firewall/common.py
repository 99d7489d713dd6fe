"""What every backend shares: rendering templates, diff wording, the apply sequence."""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host, logger
from pyinfra.api import operation

from .. import paths
from ..items import Packages
from ..ops import converge
from ..ops.facts import forget_probe, packages_state, snapshot_of
from ..ops.render import render as _render
from ..platform import Platform
from . import guard

WORK_DIR = paths.FIREWALL_DIR


@operation()
def enabled_at_boot(unit: str):
    """Enable `unit` so it loads the rules at boot, without starting it (starting
    nftables.service flushes the whole ruleset); unmask it first if someone masked it.

    + unit: the firewall's boot-time loader
    """
    state = (snapshot_of(host, "units", unit) or {}).get("UnitFileState", "")
    if state == "enabled":
        host.noop(f"{unit} is enabled")
        return
    if state.startswith("masked"):
        yield f"systemctl unmask{' --runtime' if state == 'masked-runtime' else ''} {unit}"
    yield f"systemctl enable {unit}"


def load_from_file(text: str, name: str, load: str):
    """Commands that upload `text` to a root-only file and run `load` (with `{path}`) on it:
    rules reach their loader as a file, never through a shell line or a here-document."""
    path = f"{WORK_DIR}/{name}"
    yield (f"umask 077 && mkdir -p {WORK_DIR} && rm -f -- {path} && (set -C && : > {path})")
    yield from converge.upload(text, path)
    yield load.format(path=path)


def render(name: str, **values) -> str:
    """Render templates/firewall/<name>.j2."""
    return _render("firewall", name, **values)


def install(platform: Platform, backend: str, label: str, probe: str) -> None:
    """Install the backend's packages. When they were missing, its rule state (snapshot
    probe `probe`) is asked again as each operation runs: an install may start the
    firewall with the distro's own rules (Debian's firewalld does)."""
    # Distro packages, not pinned: the firewall must get the distro's security updates.
    names = platform.family.firewall_packages[backend]
    packages = Packages(names, label)
    installed = packages_state(host, platform.family.manager, list(names))["installed"]
    if not set(names) <= set(installed):
        forget_probe(host, probe)
    converge.packages(name=f"Install {label}", item=packages, family=platform.family)


def plan_name(backend: str, added: list[str], removed: list[str]) -> str:
    """The apply operation's name: what changes, in words a sysadmin reads in the output."""
    parts = [f"Remove rule not in the spec: {r}" for r in removed]
    parts += [f"Add rule: {r}" for r in added]
    for part in parts[: len(removed)]:
        logger.warning(f"{host.print_prefix}firewall ({backend}): {part}")
    if not parts:
        return f"Firewall rules ({backend}) match the spec"
    shown = "; ".join(parts[:6]) + (f"; … ({len(parts) - 6} more)" if len(parts) > 6 else "")
    return f"Apply firewall rules ({backend}): {shown}"


def guarded(*, changes: bool, save: list[str], restore: list[str], seconds: int,
            apply: Callable[[], object], over_ssh: bool,
            restore_at_boot: list[str] | None = None) -> None:
    """arm → apply → confirm (a separate operation, so a new round trip) when anything changes.

    `restore_at_boot`: for backends whose rules are permanent once applied, how the boot
    guard puts the saved configuration back if the host boots before the confirm."""
    if not changes:
        apply()
        return
    guard.arm(name=f"Arm the firewall rollback timer ({seconds}s, restores the current rules)",
              save=save, restore=restore, seconds=seconds, restore_at_boot=restore_at_boot)
    apply()
    guard.confirm(name="Check a new SSH connection gets in, then disarm the rollback timer",
                  over_ssh=over_ssh)
