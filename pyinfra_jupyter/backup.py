"""`pyinfra-jupyter backup INVENTORY` and `restore INVENTORY --from STAMP`: a site's state,
on the host.

A backup is a directory `/var/backups/pyinfra-jupyter/STAMP` (root's, 0700) holding the
hub database, copied with sqlite's online backup API (a consistent copy of a live database,
never a file copy), and `files.tar`: the cookie secret, the proxy token, the rendered
configs (/etc/jupyterhub, /etc/jupyter), our /etc/pyinfra-jupyter (TLS certificates, the
ACME account key, the DDNS token) and /var/lib/pyinfra-jupyter. The last `backup.keep`
backups are kept. Nothing secret leaves the host or is printed.

A restore puts the state back — the database (through the same API, the hub stopped), the
cookie secret, the proxy token, TLS and agent state — and restarts what reads it. The
configs are the spec's: they stay as the last deploy wrote them (the backup keeps them for
reference and diffing).
"""

from __future__ import annotations

import re
import shlex
import sys

from . import paths

ROOT = "/var/backups/pyinfra-jupyter"
STAMP = re.compile(r"\d{8}T\d{6}Z(-\d+)?")
q = shlex.quote

# sqlite's online backup API, from one file to another (run by the hub venv's python).
_SQLITE_COPY = ("import sqlite3, sys; s = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', "
                "uri=True); t = sqlite3.connect(sys.argv[2]); s.backup(t); t.close(); s.close()")


def _hub_paths(spec) -> tuple[str, str, str]:
    """(database, cookie secret, the hub venv's python) of a hub site."""
    state = spec.hub.state_dir
    return paths.hub_database(state), paths.hub_cookie_secret(state), \
        f"{spec.hub.prefix}/bin/python"


def _state_members(spec) -> list[str]:
    """What a restore puts back (paths relative to /, as in files.tar)."""
    members = [paths.PROXY_TOKEN_ENV, paths.TLS_DIR, paths.DDNS_ETC, paths.STATE]
    if spec.mode == "hub":
        members.append(_hub_paths(spec)[1])
    return [m.lstrip("/") for m in members]


def database_copy(spec, source: str, target: str) -> str:
    """A shell command copying the hub database `source` to `target` with sqlite's online
    backup API (run by the hub venv's python); both are shell words (quoted or variables)."""
    python = _hub_paths(spec)[2]
    return f"{q(python)} -c {q(_SQLITE_COPY)} {source} {target}"


def backup_command(spec, keep: int) -> str:
    files = [paths.ETC, paths.HUB_ETC, paths.NOTEBOOK_ETC, paths.STATE]
    if spec.mode == "hub":
        files.append(_hub_paths(spec)[1])
    files = [f.lstrip("/") for f in files]
    lines = [
        "set -e", "umask 077",
        f"mkdir -p {ROOT} && chmod 700 {ROOT}",
        "stamp=$(date -u +%Y%m%dT%H%M%SZ)",
        f"d={ROOT}/$stamp",
        'if [ -e "$d" ]; then stamp="$stamp-$$"; d="$d-$$"; fi',
        'mkdir -m 700 "$d"',
    ]
    if spec.mode == "hub":
        db, _, python = _hub_paths(spec)
        lines.append(f'if [ -f {q(db)} ]; then {q(python)} -c {q(_SQLITE_COPY)} {q(db)} '
                     '"$d/jupyterhub.sqlite"; fi')
    existing = " ".join(f"$( [ -e /{f} ] && echo {f} )" for f in files)
    lines += [
        f'tar -cpf "$d/files.tar" -C / {existing}',
        # The oldest beyond `keep` go (stamps sort by time).
        f"ls -1d {ROOT}/[0-9]*T*Z* 2>/dev/null | sort | head -n -{int(keep)} | "
        "xargs -r rm -rf --",
        'echo "stamp=$stamp"',
        f"echo \"kept=$(ls -1d {ROOT}/[0-9]*T*Z* | wc -l)\"",
    ]
    return "\n".join(lines)


def restore_command(spec, stamp: str) -> str:
    if not STAMP.fullmatch(stamp):
        raise ValueError(f"{stamp!r} is not a backup stamp (like 20261126T031500Z)")
    d = f"{ROOT}/{stamp}"
    members = " ".join(q(m) for m in _state_members(spec))
    lines = [
        "set -e", "umask 077",
        f'[ -d {d} ] || {{ echo "no backup {stamp} in {ROOT}" >&2; exit 1; }}',
        # Only the members this backup holds.
        f"m=; for x in {members}; do tar -tf {d}/files.tar \"$x\" >/dev/null 2>&1 && "
        'm="$m $x"; done',
    ]
    if spec.mode == "hub":
        db, _, python = _hub_paths(spec)
        lines += [
            f"systemctl stop {paths.HUB_UNIT}",
            f'[ -z "$m" ] || tar -xpf {d}/files.tar -C / $m',
            f"if [ -f {d}/jupyterhub.sqlite ]; then rm -f {q(db)}-journal {q(db)}-wal && "
            f"{q(python)} -c {q(_SQLITE_COPY)} {d}/jupyterhub.sqlite {q(db)} && "
            f"chown root:root {q(db)} && chmod 600 {q(db)}; fi",
            f"systemctl restart {paths.PROXY_UNIT}",
            f"systemctl start {paths.HUB_UNIT}",
            # Done when the hub answers again (it re-adds its routes to the proxy on start).
            f"for i in $(seq 120); do ss -Hltn 'sport = :{int(spec.hub.api_port)}' | "
            "grep -q . && break; sleep 1; done",
            f"ss -Hltn 'sport = :{int(spec.hub.api_port)}' | grep -q . || {{ echo 'the hub did "
            "not come back; see journalctl -u jupyterhub' >&2; exit 1; }",
        ]
    else:
        lines += [f'[ -z "$m" ] || tar -xpf {d}/files.tar -C / $m',
                  f"systemctl restart {q(paths.notebook_unit('*'))} 2>/dev/null || true"]
    lines.append(f'echo "restored={stamp}"')
    return "\n".join(lines)


def pull(host, stamp: str, into: str, sudo: dict) -> str:
    """Copy backup `stamp` of `host` into `into`/HOST/STAMP on this machine (0700 folders,
    0600 files). Read through the same sudo as the backup, as base64 on the command's output:
    no copy ever lands in a shared temporary directory on the host."""
    import base64
    import os
    from pathlib import Path

    from pyinfra.api import StringCommand

    if not STAMP.fullmatch(stamp or ""):
        raise ValueError(f"no backup stamp to pull ({stamp!r})")
    target = Path(into).expanduser() / host.name / stamp
    old = os.umask(0o077)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in ("jupyterhub.sqlite", "files.tar"):
            path = f"{ROOT}/{stamp}/{name}"
            ran, output = host.run_shell_command(
                StringCommand("sh -c " + q(f"if [ -f {path} ]; then base64 -w0 {path}; "
                                           "else echo absent; fi")),
                print_output=False, print_input=False, **sudo)
            if not ran:
                raise OSError(f"cannot read {path}: " + " ".join(output.stderr_lines)[-200:])
            data = "".join(output.stdout_lines).strip()
            if data != "absent":
                (target / name).write_bytes(base64.b64decode(data))
    finally:
        os.umask(old)
    return str(target)


def run_inventory(inventory: str, limit: list[str] | None, command_for, verb: str,
                  out=sys.stdout, pull_into: str | None = None) -> int:
    """Run `command_for(spec)` on each host of `inventory` (as root, with its sudo
    settings); print one line per host; exit 1 when any failed."""
    from pyinfra.api import StringCommand
    from pyinfra.context import ctx_host, ctx_state

    from .cli import InventoryError, connect_inventory, inventory_specs, sudo_arguments

    specs = inventory_specs(inventory)
    if isinstance(specs, str):
        print(specs, file=sys.stderr)
        return 1
    bad = {name: errors for name, errors in specs if isinstance(errors, list)}
    if bad:
        for name, errors in bad.items():
            print(f"{name}: invalid site spec: " + "; ".join(errors), file=sys.stderr)
        return 1
    wanted = {name: spec for name, spec in specs if not limit or name in limit}
    try:
        state, hosts = connect_inventory(inventory, list(wanted))
    except InventoryError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    failed = 0
    for host in hosts:
        if not host.connected:
            print(f"{host.name}: FAIL cannot connect with the inventory's settings", file=out)
            failed += 1
            continue
        try:
            command = command_for(wanted[host.name])
        except ValueError as exc:
            print(f"{host.name}: FAIL {exc}", file=out)
            failed += 1
            continue
        with ctx_state.use(state), ctx_host.use(host):
            ran, output = host.run_shell_command(
                StringCommand("sh -c " + q(command)), print_output=False, print_input=False,
                **sudo_arguments(host))
            words = dict(line.split("=", 1) for line in output.stdout_lines if "=" in line)
            pulled = None
            if ran and pull_into:
                try:
                    pulled = pull(host, words.get("stamp", ""), pull_into, sudo_arguments(host))
                except (OSError, ValueError) as exc:
                    print(f"{host.name}: FAIL pulling the backup: {exc}", file=out)
                    failed += 1
        host.disconnect()
        if not ran:
            print(f"{host.name}: FAIL {verb}: " + " ".join(output.stderr_lines)[-300:], file=out)
            failed += 1
        elif verb == "backup":
            print(f"{host.name}: backup {words.get('stamp')} in {ROOT}/{words.get('stamp')} "
                  f"({words.get('kept')} kept)" + (f"; copied to {pulled}" if pulled else ""),
                  file=out)
        else:
            print(f"{host.name}: restored {words.get('restored')}; services restarted",
                  file=out)
    return 1 if failed else 0


def backup_inventory(inventory: str, limit: list[str] | None = None,
                     keep: int | None = None, pull_into: str | None = None) -> int:
    return run_inventory(inventory, limit,
                         lambda spec: backup_command(spec, keep or spec.backup.keep), "backup",
                         pull_into=pull_into)


def restore_inventory(inventory: str, stamp: str, limit: list[str] | None = None) -> int:
    return run_inventory(inventory, limit, lambda spec: restore_command(spec, stamp), "restore")
