"""The runner: a component's items in order, each as one operation, from one host snapshot.

`apply(items, platform)` asks the host once about every path, unit, account, package, venv
and npm package the items name, then runs one operation per item (operations/ops/converge.py)
and returns which items will change, by key — what `Service` items restart on.
"""

from __future__ import annotations

from pyinfra import host

from ..items import (
    Absent,
    AbsentUser,
    Directory,
    File,
    Group,
    Item,
    NpmPackage,
    Packages,
    Perms,
    Service,
    Step,
    User,
    Venv,
)
from ..platform import Platform
from . import converge
from .facts import take_snapshot
from .shell import Installs


def snapshot_request(items: list[Item], platform: Platform, extra: dict | None = None) -> dict:
    """The Snapshot fact's arguments for `items`, and the `extra` paths, units, packages and
    probes ((name, command) pairs) that components without items read."""
    request: dict[str, list] = {k: list((extra or {}).get(k, ())) for k in
                                ("paths", "units", "users", "groups", "packages", "venvs",
                                 "npm", "probes")}
    for item in items:
        if isinstance(item, File | Directory | Perms | Absent):
            request["paths"].append(item.path)
            if isinstance(item, Absent) and item.marker:
                request["paths"].append(f"{item.path}/{item.marker}")
        elif isinstance(item, Service):
            request["units"].append(item.unit)
        elif isinstance(item, User | AbsentUser):
            request["users"].append(item.name)
        elif isinstance(item, Group):
            request["groups"].append(item.name)
        elif isinstance(item, Packages):
            request["packages"].extend(item.names)
        elif isinstance(item, Venv):
            request["venvs"].append(item.path)
        elif isinstance(item, NpmPackage):
            request["npm"].append(item.prefix)
        elif isinstance(item, Step):
            request["paths"].extend(item.reads)
    return {**{key: sorted(set(values)) for key, values in request.items()},
            "manager": platform.family.manager}


def prefetch(items: list[Item], platform: Platform, extra: dict | None = None) -> None:
    """Take the host snapshot for all of a site's items (and `extra`, see
    snapshot_request), before any of them runs."""
    take_snapshot(host, snapshot_request(items, platform, extra))


def _network(timeout: int) -> dict:
    """pyinfra's own bound on an operation that waits for the network or a package manager
    (its commands have `timeout` each; this is the backstop), and one retry where repeating
    is safe: a stalled mirror fails its host, named, instead of holding the fleet."""
    return {"_timeout": 2 * timeout + 120, "_retries": 1, "_retry_delay": 10}


def apply(items: list[Item], platform: Platform,
          changed: dict[str, bool] | None = None,
          installs: Installs | None = None) -> dict[str, bool]:
    """Run `items` in order; returns {item key: will change} (also updating `changed`)."""
    changed = {} if changed is None else changed
    for item in items:
        changed[item.key] = _run(item, platform, changed, installs or Installs())
    return changed


def _any(changed: dict[str, bool], keys: tuple[str, ...]) -> bool:
    return any(changed.get(key, False) for key in keys)


def _run(item: Item, platform: Platform, changed: dict[str, bool], installs: Installs) -> bool:
    if isinstance(item, File):
        label = item.label or f"Upload {item.path}"
        if item.secret:
            label += " (secret: contents not shown)"
        return converge.file(name=label, item=item).will_change
    if isinstance(item, Directory):
        return converge.directory(name=item.label or f"Create {item.path}", item=item).will_change
    if isinstance(item, Perms):
        return converge.perms(name=item.label or f"Keep the owner and mode of {item.path}",
                              item=item).will_change
    if isinstance(item, Absent):
        return converge.absent(name=item.label or f"Remove {item.path}", path=item.path,
                               marker=item.marker).will_change
    if isinstance(item, AbsentUser):
        return converge.absent_user(name=f"Delete the account {item.name}"
                                    + (" and its home directory" if item.remove_home else ""),
                                    item=item).will_change
    if isinstance(item, Group):
        return converge.group(name=f"Create the group {item.name}", item=item).will_change
    if isinstance(item, User):
        return converge.user(name=f"Create the user {item.name}", item=item).will_change
    if isinstance(item, Packages):
        return converge.packages(name=f"Install {item.label}", item=item,
                                 family=platform.family, **_network(item.timeout)).will_change
    if isinstance(item, Venv):
        return converge.venv(name=f"Install {item.label} into {item.path}",
                             item=item, installs=installs, **_network(item.timeout)).will_change
    if isinstance(item, NpmPackage):
        return converge.npm_package(
            name=item.label or f"Install {item.package} {item.version} into {item.prefix}",
            item=item, installs=installs, **_network(item.timeout)).will_change
    if isinstance(item, Service):
        restart = _any(changed, item.restart_on)
        reload = _any(changed, item.reload_on)
        live = _unit_state(item.unit)
        verb = _verb(item, restart, live)
        return converge.service(name=f"{verb} {item.unit}", item=item, restart=restart,
                                reload=reload).will_change
    if isinstance(item, Step):
        kwargs = dict(item.kwargs)
        if item.restart_on:
            kwargs["changed"] = _any(changed, item.restart_on)
        if item.installs:
            kwargs["installs"] = installs
        bounds = {"_timeout": 2 * item.timeout + 120} if item.timeout else {}
        return item.op(name=item.label, **kwargs, **bounds).will_change
    raise TypeError(f"not an item: {item!r}")


def _unit_state(unit: str) -> dict:
    from .facts import snapshot_of

    return snapshot_of(host, "units", unit) or {}


def _verb(item: Service, restart: bool, live: dict) -> str:
    """Say what will happen: a first start is not a restart, a disabled unit is stopped."""
    running = live.get("ActiveState") in ("active", "activating", "reloading")
    if not item.running:
        return "Stop and disable" if not item.enabled else "Stop"
    if running and restart:
        return "Restart and enable" if item.enabled else "Restart"
    return "Start and enable" if item.enabled else "Start"
