"""What every backend shares: rendering templates, diff wording, the apply sequence."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host, logger
from pyinfra.operations import apt, yum

from ..common import TEMPLATES
from ..platforms import Platform
from . import guard

_env = Environment(loader=FileSystemLoader(str(TEMPLATES / "firewall")),
                   undefined=StrictUndefined, keep_trailing_newline=True,
                   trim_blocks=True, lstrip_blocks=True)


def render(name: str, **values) -> str:
    """Render templates/firewall/<name>.j2."""
    return _env.get_template(f"{name}.j2").render(**values)


def install(platform: Platform, debian: list[str], rhel: list[str], label: str) -> None:
    # Distro packages, not pinned: the firewall must get the distro's security updates.
    if platform.family == "rhel":
        yum.packages(name=f"Install {label}", packages=rhel)
    else:
        apt.packages(name=f"Install {label}", packages=debian)


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


def ssh_target() -> tuple[str | None, int]:
    """Where the controller reaches this host's sshd (None when not connected over SSH)."""
    if type(host.connector).__name__ != "SSHConnector":
        return None, 22
    return str(host.data.get("ssh_hostname") or host.name), int(host.data.get("ssh_port") or 22)


def guarded(*, changes: bool, save: list[str], restore: list[str], seconds: int,
            apply: Callable[[], object]) -> None:
    """arm → apply → confirm (a separate operation, so a new round trip) when anything changes."""
    if not changes:
        apply()
        return
    guard.arm(name=f"Arm the firewall rollback timer ({seconds}s, restores the current rules)",
              save=save, restore=restore, seconds=seconds)
    apply()
    address, port = ssh_target()
    guard.confirm(name="Check a new SSH connection gets in, then disarm the rollback timer",
                  address=address, port=port)
