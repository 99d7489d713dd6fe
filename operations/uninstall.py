"""Take a site off a host: what the deploy installed goes; people's homes and the latest
backup stay (unless the spec's `uninstall` says otherwise).

    pyinfra inventory/<site>.py uninstall.py --dry    # lists every removal first
    pyinfra inventory/<site>.py uninstall.py

What goes is read from the same item lists the deploy applies (operations/items.py), so a
component that starts installing something new is uninstalled with no change here:

1. a last backup (`pyinfra-jupyter backup`'s script: the hub database through sqlite's
   backup API, secrets, configs, TLS), then only that one is kept;
2. every Service of the site is stopped and disabled, in reverse deploy order — before the
   firewall changes, so the kernel and API ports are never open while something listens;
3. our firewall rules (operations/firewall `remove`);
4. every File, Directory, Venv and npm prefix under a root of ours (`roots`), unit files and
   drop-ins, and our files elsewhere (their names say pyinfra-jupyter: the CA anchor, apt's
   proxy settings, the login message) — never a user's directory, never a shared one;
5. the service accounts we made (only while their comment still carries our marker); the
   accounts we made for people, with their homes, only when `uninstall.keep_homes` is false;
6. what a component must do around it: `before_removal(site)` runs first (the hub goes down
   with its users' servers), `after_removal(site)` once the files are gone (the system CA
   bundle is rebuilt); then one `daemon-reload`.

Kept, and why: OS packages (other software may use them; `Packages` are never removed), the
CentOS vault/EPEL repo files (the host's package manager needs them), SELinux port labels
(other services may rely on them), the controller's copy of the site notes.
"""

from __future__ import annotations

import posixpath
import shlex

from pyinfra import host
from pyinfra.api import deploy, operation

from pyinfra_jupyter.backup import ROOT as BACKUPS
from pyinfra_jupyter.backup import backup_command

from . import firewall, hub, notebook, paths
from .firewall import guard
from .items import (
    Absent,
    AbsentUser,
    Directory,
    File,
    Item,
    NpmPackage,
    Service,
    Step,
    User,
    Venv,
)
from .ops import callstack
from .ops.apply import apply, prefetch
from .ops.facts import snapshot_of
from .ops.shell import SWAP_FILE
from .site import Site, load_site, site_items

LOG_DIR = "/var/log/pyinfra-jupyter"
MARKER = "pyinfra-jupyter"


def roots(site: Site, items: list[Item]) -> list[str]:
    """Directories that are ours alone: everything under them goes."""
    spec = site.spec
    out = [paths.ETC, paths.OPT, paths.STATE, LOG_DIR, hub.CONFIG_DIR, notebook.CONFIG_ROOT]
    out += [i.path for i in items if isinstance(i, Venv)]
    out += [i.prefix for i in items if isinstance(i, NpmPackage)]
    if spec.mode == "hub":
        out.append(spec.hub.state_dir)
    return list(dict.fromkeys(out))


def _markers(site: Site, items: list[Item]) -> dict[str, str]:
    """What the directories the spec names (rather than we) must hold to be removed: what the
    deploy put there. A venv pointed at a directory that is something else is left alone."""
    out = {i.path: "pyvenv.cfg" for i in items if isinstance(i, Venv)}
    out.update({f"{i.path}.previous": "pyvenv.cfg" for i in items
                if isinstance(i, Venv) and i.keep_previous})
    out.update({i.prefix: f"lib/node_modules/{i.package}" for i in items
                if isinstance(i, NpmPackage)})
    if site.spec.mode == "hub":
        out[site.spec.hub.state_dir] = "jupyterhub_cookie_secret"
    return out


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def owned(path: str, site_roots: list[str]) -> bool:
    """A path the uninstall removes: under one of our roots, a unit file or drop-in of ours,
    or a file elsewhere whose name says it is ours."""
    return (any(_under(path, root) for root in site_roots)
            or _under(path, paths.UNIT_DIR) or MARKER in posixpath.basename(path))


def _is_service_account(item: User) -> bool:
    """An account for a service (no home of its own), not for a person."""
    return item.system and not item.create_home


def removal_plan(site: Site, components) -> list[Item]:
    """Every item of the uninstall, in order (pure: spec, platform and facts in)."""
    wanted = [c for c in components if c.wanted(site.spec)]
    items = site_items(site, components)
    site_roots = roots(site, items)
    out: list[Item] = []

    for component in wanted:
        if hasattr(component, "before_removal"):
            out += component.before_removal(site)
    for item in reversed(items):
        if isinstance(item, Service):
            out.append(Service(item.unit, enabled=False, running=False))
    out.append(Service(guard.BOOT_UNIT, enabled=False, running=False))

    gone: list[str] = []
    for item in items:
        path = item.prefix if isinstance(item, NpmPackage) else getattr(item, "path", None)
        if (isinstance(item, File | Directory | Venv | NpmPackage) and path
                and owned(path, site_roots)):
            gone.append(path)
    # A venv's copy kept for a rollback (operations/hub `upgrade`), if a run left one.
    gone += [f"{i.path}.previous" for i in items if isinstance(i, Venv) and i.keep_previous]
    gone += site_roots + [f"{paths.UNIT_DIR}/{guard.BOOT_UNIT}"]
    # Deepest first would only repeat work: drop what a removed tree already holds.
    tops = [p for p in dict.fromkeys(gone)
            if not any(_under(p, other) and p != other for other in gone)]
    # A swap file kept on a small host (python.keep_swap) is switched off before it goes.
    out.append(Step(_swap_off, f"Switch off the install swap file {SWAP_FILE}",
                    reads=(SWAP_FILE,)))
    markers = _markers(site, items)
    out += [Absent(p, label=f"Remove {p}", marker=markers.get(p, "")) for p in tops]

    keep_homes = site.spec.uninstall.keep_homes
    for item in items:
        if isinstance(item, User) and (_is_service_account(item) or not keep_homes):
            out.append(AbsentUser(item.name, remove_home=not _is_service_account(item)))

    for component in wanted:
        if hasattr(component, "after_removal"):
            out += component.after_removal(site)

    units = tuple(f"absent:{p}" for p in tops if _under(p, paths.UNIT_DIR))
    out.append(Step(_daemon_reload, "Reload systemd (our units are gone)", restart_on=units))
    return out


@operation()
def _swap_off():
    """`swapoff` the install swap file if it is there.

    + (none)
    """
    if not snapshot_of(host, "paths", SWAP_FILE):
        host.noop(f"no {SWAP_FILE}")
        return
    yield f"swapoff {SWAP_FILE} 2>/dev/null; true"


@operation()
def _daemon_reload(changed: bool = False):
    """`systemctl daemon-reload` when a unit file was removed.

    + changed: a unit file or drop-in was removed
    """
    if not changed:
        host.noop("no unit file was removed")
        return
    yield "systemctl daemon-reload && systemctl reset-failed"


@operation()
def final_backup(spec, keep_backup: bool):
    """The last backup before anything goes, then only it is kept; or, with
    `uninstall.keep_backup` false, every backup goes.

    + spec: the site spec
    + keep_backup: keep the backup this takes
    """
    if not keep_backup:
        if snapshot_of(host, "paths", BACKUPS):
            yield f"rm -rf -- {BACKUPS}"
        else:
            host.noop(f"no backups in {BACKUPS}")
        return
    if not snapshot_of(host, "paths", paths.ETC):
        host.noop("nothing of the site is left to back up")
        return
    # The backup keeps the last 1: the one taken now holds everything the older ones hold.
    yield f"sh -c {shlex.quote(backup_command(spec, keep=1))}"


def uninstall_site(host_, components) -> None:
    callstack.install()
    site = load_site(host_, components)
    plan = removal_plan(site, components)
    backup = Step(final_backup, f"Back up the site into {BACKUPS} (only this backup is kept)"
                  if site.spec.uninstall.keep_backup else f"Remove every backup in {BACKUPS}",
                  {"spec": site.spec, "keep_backup": site.spec.uninstall.keep_backup},
                  reads=(paths.ETC, BACKUPS))
    first = plan.index(next(i for i in plan if isinstance(i, Absent)))
    stops, rest = plan[:first], plan[first:]
    prefetch([backup, *plan], site.platform)
    changed: dict[str, bool] = {}
    deploy("Back up")(apply)([backup], site.platform, changed)
    deploy("Stop and disable the services")(apply)(stops, site.platform, changed)
    deploy("Remove the firewall rules")(firewall.remove)(site)
    deploy("Remove files, venvs and accounts")(apply)(rest, site.platform, changed)
