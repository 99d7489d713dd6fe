"""`pyinfra-jupyter`: check a site offline, print the spec's schema, run the lab.

    pyinfra-jupyter check INVENTORY     validate every host's spec; no SSH, exit 0 / 1
    pyinfra-jupyter schema [--markdown] the site spec's JSON Schema (or its reference table)
    pyinfra-jupyter verify INVENTORY [--limit HOST] [--json] [--all] [--address ADDR]
    pyinfra-jupyter export z2jh INVENTORY -o DIR [--limit HOST] [--reuse-secrets]
    pyinfra-jupyter lab up [N] | down | status [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import SiteSpec


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `lab` owns its own options; hand over everything after it untouched.
    if argv and argv[0] == "lab":
        from .lab.cli import main as lab_main

        return lab_main(argv[1:])

    parser = argparse.ArgumentParser(prog="pyinfra-jupyter", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate the site spec of every host, offline")
    check.add_argument("inventory", help="a pyinfra inventory file, e.g. inventory/vps.py")
    schema = sub.add_parser("schema", help="print the site spec's JSON Schema")
    schema.add_argument("--markdown", action="store_true", help="the README's reference table")
    verify = sub.add_parser("verify", help="check each host works as its spec says (read-only)")
    verify.add_argument("inventory", help="a pyinfra inventory file")
    verify.add_argument("--limit", action="append", metavar="HOST", help="only this host")
    verify.add_argument("--json", action="store_true", help="machine-readable results")
    verify.add_argument("--all", action="store_true", help="print the passing checks too")
    verify.add_argument("--address", help="probe the public ports at this address "
                        "(default: the host's SSH address)")
    export = sub.add_parser("export", help="a hub site's values and migration guide for "
                            "Zero to JupyterHub (Kubernetes)")
    export.add_argument("target", choices=["z2jh"], help="z2jh: the Zero to JupyterHub chart")
    export.add_argument("inventory", help="a pyinfra inventory file")
    export.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="where to write <host>.values.yaml (0600) and <host>.guide.md")
    export.add_argument("--limit", action="append", metavar="HOST", help="only this host")
    export.add_argument("--reuse-secrets", action="store_true",
                        help="read the cookie secret and proxy token from the running host "
                        "(SSH) so logins survive the move")
    backup = sub.add_parser("backup", help="snapshot each host's state (hub database, secrets, "
                            "configs, TLS) into /var/backups/pyinfra-jupyter/STAMP on the host")
    backup.add_argument("inventory", help="a pyinfra inventory file")
    backup.add_argument("--limit", action="append", metavar="HOST", help="only this host")
    backup.add_argument("--keep", type=int, metavar="N",
                        help="keep the last N backups (default: the spec's backup.keep)")
    backup.add_argument("--pull", metavar="DIR",
                        help="also copy each backup to DIR/HOST/STAMP on this machine (0600)")
    restore = sub.add_parser("restore", help="put a backup's state back and restart what "
                             "reads it")
    restore.add_argument("inventory", help="a pyinfra inventory file")
    restore.add_argument("--from", dest="stamp", required=True, metavar="STAMP",
                         help="the backup, as `backup` printed it (e.g. 20261126T031500Z)")
    restore.add_argument("--limit", action="append", metavar="HOST", help="only this host")
    sub.add_parser("lab", help="disposable Debian hosts on this machine: up [N] | down | status")
    args = parser.parse_args(argv)

    if args.command in ("backup", "restore"):
        from .backup import backup_inventory, restore_inventory

        if args.command == "backup":
            return backup_inventory(args.inventory, args.limit, args.keep, args.pull)
        return restore_inventory(args.inventory, args.stamp, args.limit)

    if args.command == "export":
        from .export import export_inventory

        return export_inventory(args.inventory, args.output, args.limit, args.reuse_secrets)

    if args.command == "verify":
        from .verify import verify_inventory

        return verify_inventory(args.inventory, args.limit, args.json, args.all, args.address)

    if args.command == "schema":
        from .reference import markdown_reference, site_schema

        print(markdown_reference() if args.markdown else json.dumps(site_schema(), indent=2))
        return 0
    return check_inventory(args.inventory)


def check_inventory(inventory: str, out=sys.stdout) -> int:
    """Validate every host of an inventory like `pyinfra` would build it; print, return 0/1."""
    from . import controller

    hosts = inventory_specs(inventory)
    if isinstance(hosts, str):
        print(f"{inventory}: {hosts}", file=out)
        return 1
    if not hosts:
        print(f"{inventory}: no hosts", file=out)
        return 1
    failed = 0
    for name, spec in hosts:
        problems = spec if isinstance(spec, list) else controller.problems(spec)
        if problems:
            failed += 1
            for problem in problems:
                print(f"{name}: {problem}", file=out)
            continue
        print(f"{name}: ok ({_summary(spec)})", file=out)
    return 1 if failed else 0


def inventory_specs(inventory: str) -> list[tuple[str, SiteSpec | list[str]]] | str:
    """(host name, its validated spec or its `field: problem` lines) for each host, or one
    line why the inventory did not load. Offline: the data pyinfra would give a deploy."""
    from .spec import SpecError, build_spec

    hosts = load_inventory_data(inventory)
    if isinstance(hosts, str):
        return hosts
    specs: list[tuple[str, SiteSpec | list[str]]] = []
    for name, data in hosts:
        try:
            specs.append((name, build_spec(data)))
        except SpecError as exc:
            specs.append((name, exc.problems))
    return specs


def _summary(spec) -> str:
    ports = ", ".join(map(str, spec.public_ports()))
    return f"mode {spec.mode}, tls {spec.tls.type}, public ports {ports}"


def load_inventory_data(inventory: str) -> list[tuple[str, dict]] | str:
    """(host name, merged data) for each host, or a one-line reason it could not be loaded.

    Uses pyinfra's own inventory loader, so group data merges exactly as in a deploy:
    group_data/ of the current directory and of the inventory's directory. The inventory and
    group data are user code, run in a forked child: one that ends the process (`os._exit`)
    or dies cannot end or fake the check, it only fails it.
    """
    # Imported here, before the fork, so the child starts warm.
    from pyinfra.api import State  # noqa: F401
    from pyinfra_cli.inventory import make_inventory  # noqa: F401

    if not Path(inventory).is_file():
        return "no such inventory file"
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    # Closed through file objects: pyinfra_cli's gevent patches os.close to close lazily.
    if pid == 0:  # the child: load, send the result, never return into the caller's code
        os.fdopen(read_end, "rb").close()
        try:
            result = _load_here(inventory)
            try:
                payload = pickle.dumps(result)
            except BaseException as exc:
                payload = pickle.dumps("cannot load the inventory: its host data cannot be "
                                       f"passed on ({describe_load_error(exc)})")
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(0)
    os.fdopen(write_end, "wb").close()
    try:
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
    except KeyboardInterrupt:
        _reap(pid)
        return "interrupted while loading the inventory"
    if payload:
        try:
            return pickle.loads(payload)
        except Exception as exc:  # e.g. a class defined in the inventory itself
            return ("cannot load the inventory: its host data cannot be passed on "
                    f"({describe_load_error(exc)})")
    if os.WIFSIGNALED(status):
        return (f"cannot load the inventory: loading it was killed by signal "
                f"{os.WTERMSIG(status)}")
    return ("cannot load the inventory: it ended the process while loading "
            f"(exit status {os.waitstatus_to_exitcode(status)}, e.g. os._exit)")


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (OSError, KeyboardInterrupt):
        pass


def _load_here(inventory: str) -> list[tuple[str, dict]] | str:
    """load_inventory_data's work, in this process."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    # pyinfra executes inventory and group-data files with a State in context.
    state = State(check_for_changes=False)
    state.cwd = str(Path.cwd())
    try:
        with ctx_state.use(state), _offline_connectors():
            built = make_inventory(inventory, cwd=state.cwd)
            return [(host.name, host.data.dict()) for host in built]
    except SystemExit as exc:
        # An inventory or group-data file that exits, even with 0, did not load.
        return (f"cannot load the inventory: {_user_file(exc, inventory) or 'it'} called "
                f"sys.exit({exc.code!r})")
    except KeyboardInterrupt:
        return "interrupted while loading the inventory"
    except BaseException as exc:
        # Inventories and group data are user code: say what broke, no traceback.
        where = _user_file(exc, inventory)
        return f"cannot load the inventory: {where + ': ' if where else ''}" \
               f"{describe_load_error(exc)}"


def _user_file(exc: BaseException, inventory: str) -> str | None:
    """The inventory or group-data file (as a short path) whose code raised `exc`, if any."""
    found = None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            path = Path(name)
            if path.suffix == ".py" and (path.parent.name == "group_data"
                                         or path.resolve() == Path(inventory).resolve()):
                found = name
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    if found is None:
        return None
    try:
        return str(Path(found).resolve().relative_to(Path.cwd()))
    except ValueError:
        return found


# pyinfra's connector arguments a read-only command passes on from the inventory's host data.
SUDO_KEYS = ("_sudo", "_sudo_user", "_su_user", "_doas", "_use_sudo_password")


class InventoryError(Exception):
    """An inventory that could not be loaded, in one line."""


def connect_inventory(inventory: str, names=None):
    """Load a pyinfra inventory and connect to its hosts (only those in `names`, when given),
    for a read-only command: (state, hosts). Raises InventoryError with one line."""
    from pathlib import Path

    from pyinfra.api import Config, State
    from pyinfra.api.connect import connect_all
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    if not Path(inventory).is_file():
        raise InventoryError(f"{inventory}: no such inventory file")
    state = State(check_for_changes=False)
    state.cwd = str(Path.cwd())
    try:
        with ctx_state.use(state):
            built = make_inventory(inventory, cwd=state.cwd)
            state.init(built, Config())
            if names:
                state.limit_hosts = [h for h in built if h.name in names]
    except BaseException as exc:  # user code: one line, no traceback
        raise InventoryError(f"{inventory}: cannot load the inventory: "
                             f"{describe_load_error(exc)}") from None
    with ctx_state.use(state):
        connect_all(state)
    return state, [h for h in built if not names or h.name in names]


def host_address(host) -> str:
    """Where the inventory reaches `host` (its ssh_hostname, else its name): where a
    read-only command probes the host's public ports."""
    return str(host.data.get("ssh_hostname") or host.name)


def sudo_arguments(host) -> dict:
    """The inventory's sudo/su settings of `host`, for `host.run_shell_command`."""
    return {k: v for k, v in host.data.dict().items() if k in SUDO_KEYS}


def describe_load_error(exc: BaseException) -> str:
    """One line for an exception raised while loading user code: the innermost cause (pyinfra
    wraps errors from group data in its own exceptions), its type and its message."""
    from pyinfra.api.exceptions import PyinfraError

    inner = exc
    seen = set()
    while (inner.__cause__ or inner.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__
    try:
        message = str(inner)
    except Exception:  # user code's exception, whose __str__ may itself fail
        message = "(its message cannot be shown)"
    text = message if isinstance(inner, PyinfraError) else f"{type(inner).__name__}: {message}"
    return " ".join(text.split())[:500] or type(inner).__name__


@contextmanager
def _offline_connectors() -> Iterator[None]:
    """Let `@vagrant/NAME` hosts load without running Vagrant (their data is all we need)."""
    from pyinfra.connectors.vagrant import VagrantInventoryConnector as VagrantConnector

    original = VagrantConnector.make_names_data

    def names_data(name=None):
        if not name:
            raise ValueError("name each machine (@vagrant/NAME) so the check needs no Vagrant")
        yield (f"@vagrant/{name}", {}, ["@vagrant"])

    VagrantConnector.make_names_data = staticmethod(names_data)
    try:
        yield
    finally:
        VagrantConnector.make_names_data = original


if __name__ == "__main__":
    sys.exit(main())
