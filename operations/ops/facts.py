"""The few facts a deploy needs, each asked once per host and run: what the host is, and one
batched snapshot of everything the site's items touch.

pyinfra 3 evaluates an operation twice (once to see whether it would change anything, once
to run it) and caches no fact, so an operation that asks its own facts costs two remote
commands or more even when nothing changes. Our operations instead read answers that
`host_facts` and `snapshot` fetch once per host and keep on the host object for the run.
Each path is managed by one item only, so an answer stays true until that item's own
operation changes it.

Both facts are *quiet*: their output holds password hashes and digests of secret files,
so it is never printed, not even with `-vvv` (`quiet_fact`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections.abc import Iterable

from pyinfra.api import FactBase

from .. import paths

# Between fields of one output line: the unit separator, which (unlike \x1e) Python's
# splitlines() does not take for a line break.
_SEP = "\x1f"


def quiet_fact(host, fact, **kwargs):
    """`host.get_fact`, with pyinfra's printing of fact output (`-vvv`) off for this one."""
    state = host.state
    previous = getattr(state, "print_fact_output", False)
    state.print_fact_output = False
    try:
        return host.get_fact(fact, **kwargs)
    finally:
        state.print_fact_output = previous


def _memo_store(host) -> dict:
    """This run's answers for `host`, kept on the real host object: `pyinfra.host` is a
    context proxy shared by all hosts, and pyinfra makes new host objects for each run."""
    real = host._get_module() if hasattr(type(host), "_get_module") else host
    return vars(real).setdefault("_pyinfra_jupyter_memo", {})


def memo(host, key: str, compute):
    """`compute()` once per host and run."""
    store = _memo_store(host)
    if key not in store:
        store[key] = compute()
    return store[key]


# -- what the host is, and what planning needs to read ---------------------------------------

# One deploy at a time per host. The first command of a run takes this lock and leaves a
# process holding it for as long as the run's SSH connection lives (its sshd is watched), so
# a second run waits for the first (bounded), and a run killed half-way (connection gone)
# frees the host within seconds. Without an sshd (a local or container connector) the
# process that ran the command is watched instead; LOCK_LEASE bounds it in every case.
LOCK = "/run/pyinfra-jupyter.lock"
LOCK_WAIT = 900
LOCK_LEASE = 1800


def _lock_command() -> str:
    return (
        f"exec 9>>{LOCK}; "
        f"if ! flock -w {LOCK_WAIT} 9; then echo \"locked=$(cat {LOCK}.who 2>/dev/null)\"; "
        "exit 0; fi; "
        # The nearest ancestor that is this connection's sshd (through sudo, if any). OpenSSH
        # 9.8+ (Debian 13, Ubuntu 24.10) runs each connection as `sshd-session`; its `sshd` is
        # the listener, which never ends (a lock watching it held the host for the lease).
        "s=; p=$$; while [ \"$p\" -gt 1 ] 2>/dev/null; do "
        "case \"$(cat /proc/$p/comm 2>/dev/null)\" in sshd|sshd-session) s=$p; break;; esac; "
        "p=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f2); p=${p:-0}; done; "
        # No sshd (the local connector, a container's exec): the process that ran us.
        "s=${s:-$PPID}; "
        f"echo \"since $(date -u +%FT%TZ) by ${{SUDO_USER:-$(id -un)}} (sshd $s)\" > {LOCK}.who; "
        f"end=$(( $(date +%s) + {LOCK_LEASE} )); "
        "setsid sh -c \"while [ \\$(date +%s) -lt $end ] && { [ -z '$s' ] || kill -0 '$s'; }; "
        "do sleep 2; done\" </dev/null >/dev/null 2>&1 9>&9 & "
        "echo locked="
    )


class HostFacts(FactBase):
    """Distro, architecture, systemd, names and addresses, memory, board model; the accounts
    `users` names; for each (path, prefix) in `lines`, the first line of the file starting
    with the prefix (e.g. a password hash: secret, hence quiet); the TLS agent's state.
    Takes the host's deploy lock first (`locked=` says who holds it, when it could not)."""

    def command(self, users: list[str], lines: list[tuple[str, str]], globs: list[str],
                lock: bool = True, ssh: bool = False) -> str:
        parts = [
            _lock_command() if lock else "echo locked=",
            ". /etc/os-release 2>/dev/null",
            'echo "id=$ID"', 'echo "version_id=$VERSION_ID"', 'echo "pretty=$PRETTY_NAME"',
            "echo \"minor=$(grep -oE '[0-9]+\\.[0-9]+' /etc/redhat-release /etc/debian_version "
            "2>/dev/null | head -n 1 | cut -d: -f2)\"",
            'echo "arch=$(uname -m)"',
            "echo \"systemd=$(systemctl --version 2>/dev/null | head -n 1)\"",
            "[ -d /run/systemd/system ] && echo booted=1",
            'echo "hostname=$(hostname)"',
            'echo "addresses=$(hostname -I 2>/dev/null)"',
            # The interface and address of the default route, and its MAC (router notes).
            "r=$(ip -o -4 route get 192.0.2.1 2>/dev/null); "
            "d=$(echo \"$r\" | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); "
            "echo \"lan_interface=$d\"; "
            "echo \"lan_address=$(echo \"$r\" | sed -n 's/.* src \\([^ ]*\\).*/\\1/p')\"; "
            "echo \"lan_mac=$(cat /sys/class/net/$d/address 2>/dev/null)\"",
            "echo \"python3=$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' "
            '2>/dev/null)"',
            "echo \"memory_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)\"",
            "echo \"model=$(tr -d '\\000' 2>/dev/null < /proc/device-tree/model)\"",
            'echo "cpus=$(nproc 2>/dev/null)"',
            # The C library, for the wheels the controller fetches (ops/wheelhouse.py).
            'echo "glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null)"',
            # SELinux (CentOS): its mode, how many of our files restorecon would relabel, and
            # the ports web servers may bind (operations/selinux).
            "if command -v getenforce >/dev/null 2>&1; then m=$(getenforce); "
            "echo \"selinux=$m\"; if [ \"$m\" != Disabled ]; then "
            "echo \"selinux_relabel=$(restorecon -Rn -v /opt /etc/pyinfra-jupyter /etc/jupyterhub "
            "/etc/jupyter /etc/systemd/system 2>/dev/null | wc -l)\"; "
            "echo \"selinux_http_ports=$(semanage port -l 2>/dev/null | awk '$1 == \"http_port_t\" "
            "&& $2 == \"tcp\" {for (i = 3; i <= NF; i++) printf \"%s\", $i}')\"; fi; fi",
            'echo "node=$(node --version 2>/dev/null)"',
            # Pythons the deploy built (python.provider source): each prefix's interpreter,
            # with the version it reports only when the modules the stack needs load (a
            # half-finished build reports nothing and is built again).
            f"for x in {paths.PYTHON_PREFIXES}/*/bin/python3.*[0-9]; do [ -x \"$x\" ] && "
            "echo \"pybuilt=$x\037$(\"$x\" -c 'import ssl, sqlite3, ctypes, zlib, venv, sys; "
            "print(\"%d.%d.%d\" % sys.version_info[:3])' 2>/dev/null)\"; done",
        ]
        for user in users:
            parts.append(f"echo \"passwd=$(getent passwd {shlex.quote(user)})\"")
        parts += [_line_command(path, prefix) for path, prefix in lines]
        for pattern in globs:
            # Unquoted on purpose: a shell glob, built by a component from safe names.
            parts.append(f"for f in {pattern}; do [ -e \"$f\" ] && echo \"glob={pattern}\037$f\"; "
                         "done")
        state = f"{paths.TLS_DIR}/state.json"
        parts.append(f"echo \"tls_state=$(tr -d '\\n' 2>/dev/null < {state})\"")
        parts.append(f"echo \"ddns_state=$(tr -d '\\n' 2>/dev/null < {paths.DDNS_STATE})\"")
        if ssh:
            # Where this run's SSH connection arrives (the firewall keeps its port open);
            # only asked when the command runs without sudo, which may reset the environment.
            parts.append('echo "ssh_connection=$SSH_CONNECTION"')
        # The pair's digest, compared with the one the agent recorded: a certificate or key
        # replaced by hand (an expired one, another host's) makes the deploy run the agent.
        parts.append(f"[ -s {paths.TLS_CERT} ] && [ -s {paths.TLS_KEY} ] && echo tls_pair=$(cat "
                     f"{paths.TLS_CERT} {paths.TLS_KEY} | sha256sum | cut -c1-64)")
        return "; ".join(parts) + "; true"

    def process(self, output: list[str]) -> dict:
        info: dict = {"passwd": {}, "lines": {}, "addresses": [], "globs": {}, "pythons": {}}
        for raw in output:
            key, _, value = raw.partition("=")
            if key == "passwd":
                fields = value.split(":")
                if len(fields) >= 7:
                    info["passwd"][fields[0]] = {"uid": int(fields[2]), "gid": int(fields[3]),
                                                 "home": fields[5], "shell": fields[6]}
            elif key == "line":
                path, prefix, line = (value.split(_SEP, 2) + ["", ""])[:3]
                info["lines"][(path, prefix)] = line or None
            elif key == "pybuilt":
                path, _, version = value.partition(_SEP)
                info["pythons"][path] = version.strip() or None
            elif key == "glob":
                pattern, _, found = value.partition(_SEP)
                info["globs"].setdefault(pattern, []).append(found)
            elif key == "addresses":
                info["addresses"] = [a for a in value.split() if not a.startswith("fe80:")]
            elif key == "systemd":
                words = value.split()
                info["systemd_version"] = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            elif key == "ssh_connection":
                info[key] = parse_ssh_connection(value)
            elif key in ("tls_state", "ddns_state"):
                with contextlib.suppress(ValueError):
                    info[key] = json.loads(value) if value else None
            else:
                info[key] = value.strip()
        info["id"] = info.get("id", "").lower()
        version = info.get("version_id", "")
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        minor_text = version.split(".")[1] if "." in version else info.get("minor", "0.0").split(".")[-1]
        info["version"] = (major, int(minor_text) if minor_text.isdigit() else 0)
        info["systemd"] = info.get("systemd_version") if info.get("booted") else 0
        info["memory_mb"] = int(info.get("memory_kb") or 0) // 1024
        info["tls_pair_sha256"] = info.get("tls_pair") or ""
        info["tls_pair"] = bool(info.get("tls_pair"))
        return info


def _line_command(path: str, prefix: str) -> str:
    """Print `line=PATH<US>PREFIX<US>` and the first line of PATH that starts with `prefix`
    (a plain string, not a regex)."""
    q = shlex.quote
    return (f"printf 'line=%s\\037%s\\037%s\\n' {q(path)} {q(prefix)} \"$(awk -v p={q(prefix)} "
            f"'index($0, p) == 1 {{print; exit}}' {q(path)} 2>/dev/null)\"")


class FileLine(FactBase):
    """The first line of `path` that starts with `prefix` (a plain string); None if none."""

    def command(self, path: str, prefix: str) -> str:
        return _line_command(path, prefix)

    def process(self, output: list[str]) -> str | None:
        for raw in output:
            if raw.startswith("line="):
                return (raw[5:].split(_SEP, 2) + ["", ""])[2] or None
        return None


def line_of(host, path: str, prefix: str) -> str | None:
    """FileLine, from the run's host facts when a component's `reads` asked for it there."""
    facts = _memo_store(host).get("host_facts") or {}
    if (path, prefix) in facts.get("lines", {}):
        return facts["lines"][(path, prefix)]
    return quiet_fact(host, FileLine, path=path, prefix=prefix)


def parse_ssh_connection(text: str) -> dict | None:
    """sshd's SSH_CONNECTION ("client_ip client_port server_ip server_port") as
    {client, client_port, server, port}; None when not over SSH."""
    fields = text.split()
    if len(fields) != 4 or not fields[1].isdigit() or not fields[3].isdigit():
        return None
    return {"client": fields[0], "client_port": int(fields[1]), "server": fields[2],
            "port": int(fields[3])}


def escalates(host) -> bool:
    """Whether the host's commands run through sudo, su or doas (the environment may then be
    reset, SSH_CONNECTION with it)."""
    config = host.state.config
    return (any(host.data.get(name) for name in ("_sudo", "_su_user", "_doas"))
            or any(getattr(config, name, None) for name in ("SUDO", "SU_USER", "DOAS")))


def host_facts(host, users: Iterable[str] = (), lines: Iterable[tuple[str, str]] = (),
               globs: Iterable[str] = (), lock: bool = True) -> dict:
    """The HostFacts of `host`, fetched once per run (quiet: it may hold hashes). With `lock`
    (a deploy), the host's deploy lock is taken first. Without sudo, it also says where the
    run's SSH connection arrives (`ssh_connection`, absent under sudo)."""
    users, lines, globs = sorted(set(users)), sorted(set(lines)), sorted(set(globs))
    ssh = not escalates(host)
    return memo(host, "host_facts", lambda: quiet_fact(
        host, HostFacts, users=users, lines=lines, globs=globs, lock=lock, ssh=ssh))


# -- the state of what items touch: one small fact per kind, and the batch of them ---------

# Shell functions, defined once per command: one line of output per thing found.
_FUNCTIONS = (
    "p() { if [ -e \"$1\" ] || [ -L \"$1\" ]; then s=$(stat -c '%F|%U|%G|%a|%s' \"$1\"); "
    "h=; if [ -f \"$1\" ] && [ ! -L \"$1\" ]; then h=$(sha256sum \"$1\" | cut -c1-64); fi; "
    "printf 'path=%s\\037%s|%s\\n' \"$1\" \"$s\" \"$h\"; fi; }; "
    "u() { e=$(getent passwd \"$1\") && printf 'user=%s\\037%s\\037%s\\n' \"$1\" \"$e\" "
    "\"$(id -nG \"$1\")\"; }; "
    "g() { getent group \"$1\" >/dev/null && echo \"group=$1\"; }; "
    "v() { [ -f \"$1/pyvenv.cfg\" ] || return 0; "
    "r=; \"$1/bin/python\" -c '' 2>/dev/null && r=1; "
    "printf 'venv=%s\\037%s\\037%s\\037%s\\n' \"$1\" "
    "\"$(sed -n 's/^version[_info]* *= *//p' \"$1/pyvenv.cfg\" | head -n 1)\" \"$r\" "
    "\"$(cd \"$1\" && ls -d lib/python*/site-packages/*.dist-info 2>/dev/null "
    "| sed 's|.*/||' | tr '\\n' ' ')\"; }; "
    "n() { for f in \"$1\"/lib/node_modules/*/package.json; do [ -f \"$f\" ] || continue; "
    "printf 'npm=%s\\037%s\\037%s\\n' \"$1\" \"$(basename \"$(dirname \"$f\")\")\" "
    "\"$(sed -n 's/^  \"version\": \"\\(.*\\)\",*$/\\1/p' \"$f\" | head -n 1)\"; done; }"
)
_UNIT_PROPERTIES = "Id,LoadState,ActiveState,UnitFileState"


def _package_lines(manager: str, names: list[str]) -> str:
    from ..platform import FAMILIES

    family = FAMILIES[manager]
    parts = [f"{{ {family.query_command(names)}; }} | sed 's/^/package=/'"]
    if family.lists_path:
        parts.append(f"echo lists_age=$(( $(date +%s) - $(stat -c %Y {family.lists_path} "
                     "2>/dev/null || echo 0) ))")
    return "; ".join(parts)


def _commands(paths=(), units=(), users=(), groups=(), manager="", packages=(), venvs=(),
              npm=(), probes=()) -> str:
    q = shlex.quote
    parts = [_FUNCTIONS]
    parts += [f"p {q(path)}" for path in paths]
    if units:
        parts.append(f"systemctl show --property={_UNIT_PROPERTIES} "
                     + " ".join(q(u) for u in units) + " 2>/dev/null | sed 's/^/unit:/'")
    parts += [f"u {q(user)}" for user in users]
    parts += [f"g {q(group)}" for group in groups]
    if packages:
        parts.append(_package_lines(manager, list(packages)))
    parts += [f"v {q(venv)}" for venv in venvs]
    parts += [f"n {q(prefix)}" for prefix in npm]
    for name, command in probes:
        if not _PROBE_NAME.fullmatch(name):
            raise ValueError(f"not a probe name: {name!r}")
        parts.append(f"{{ {command}; }} 2>/dev/null | sed 's/^/probe={name}:/'")
    return "; ".join(parts) + "; true"


_PROBE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _parse(output: list[str]) -> dict:
    snap: dict = {"paths": {}, "units": {}, "users": {}, "groups": {},
                  "packages": {"installed": set(), "lists_age": None}, "venvs": {}, "npm": {},
                  "probes": {}}
    unit: dict = {}
    for raw in output:
        if raw.startswith("unit:"):
            key, _, value = raw[5:].partition("=")
            if key == "Id" and unit:
                snap["units"][unit["Id"]] = unit
                unit = {}
            unit[key] = value
            continue
        key, _, value = raw.partition("=")
        if key == "path":
            path, _, stat = value.partition(_SEP)
            kind, user, group, mode, size, digest = (stat.split("|") + [""] * 6)[:6]
            snap["paths"][path] = {"type": kind, "user": user, "group": group, "mode": mode,
                                   "size": int(size or 0), "sha256": digest}
        elif key == "user":
            name, passwd, groups = (value.split(_SEP) + ["", ""])[:3]
            fields = passwd.split(":")
            snap["users"][name] = {"comment": fields[4] if len(fields) > 4 else "",
                                   "home": fields[5] if len(fields) > 5 else "",
                                   "shell": fields[6] if len(fields) > 6 else "",
                                   "groups": sorted(groups.split())}
        elif key == "group":
            snap["groups"][value] = True
        elif key == "package":
            snap["packages"]["installed"].add(value.split()[0])
        elif key == "lists_age":
            age = int(value) if value.strip().lstrip("-").isdigit() else None
            # No lists at all: stat failed and the age is "now - 0".
            snap["packages"]["lists_age"] = age if age is not None and age < 10**9 else None
        elif key == "venv":
            path, version, runs, dists = (value.split(_SEP) + ["", "", ""])[:4]
            snap["venvs"][path] = {"version": version.strip(), "runs": runs.strip() == "1",
                                   "dists": dists.split()}
        elif key == "probe":
            name, _, line = value.partition(":")
            snap["probes"].setdefault(name, []).append(line)
        elif key == "npm":
            prefix, name, version = (value.split(_SEP) + ["", ""])[:3]
            snap["npm"].setdefault(prefix, {})[name] = version
    if unit.get("Id"):
        snap["units"][unit["Id"]] = unit
    snap["packages"]["installed"] = sorted(snap["packages"]["installed"])
    return snap


class PathState(FactBase):
    """A path's type, owner, group, mode, size and (regular files) sha256, without following a
    symlink; None when absent. Quiet: a digest of a secret file must not be printed."""

    def command(self, path: str) -> str:
        return _commands(paths=[path])

    def process(self, output: list[str]):
        return next(iter(_parse(output)["paths"].values()), None)


class UnitState(FactBase):
    """A unit's LoadState, ActiveState and UnitFileState (systemctl show)."""

    def command(self, unit: str) -> str:
        return _commands(units=[unit])

    def process(self, output: list[str]):
        return next(iter(_parse(output)["units"].values()), None)


class UserState(FactBase):
    """An account's home, shell and groups; None when it does not exist (no password data)."""

    def command(self, user: str) -> str:
        return _commands(users=[user])

    def process(self, output: list[str]):
        return next(iter(_parse(output)["users"].values()), None)


class GroupState(FactBase):
    """True when the group exists."""

    default = bool

    def command(self, group: str) -> str:
        return _commands(groups=[group])

    def process(self, output: list[str]) -> bool:
        return bool(_parse(output)["groups"])


class PackageState(FactBase):
    """Which of `names` are installed (sorted), and the age of apt's package lists in
    seconds (None: none, or not apt)."""

    def command(self, manager: str, names: list[str]) -> str:
        return _commands(manager=manager, packages=names)

    def process(self, output: list[str]) -> dict:
        return _parse(output)["packages"]


class VenvState(FactBase):
    """A venv's Python version, whether its Python still runs, and its installed
    distributions (NAME-VERSION.dist-info names); None when there is no venv."""

    def command(self, path: str) -> str:
        return _commands(venvs=[path])

    def process(self, output: list[str]):
        return next(iter(_parse(output)["venvs"].values()), None)


class NpmState(FactBase):
    """{package: version} of the npm packages installed globally under a prefix."""

    default = dict

    def command(self, prefix: str) -> str:
        return _commands(npm=[prefix])

    def process(self, output: list[str]) -> dict:
        return next(iter(_parse(output)["npm"].values()), {})


class Snapshot(FactBase):
    """The state of every path, unit, account, group, package, venv and npm prefix the
    site's items name, in one command: the per-kind facts above, batched."""

    @staticmethod
    def default() -> dict:
        # pyinfra returns default() when a command prints nothing (a site whose items name
        # nothing to look at): an empty snapshot, not None.
        return _parse([])

    def command(self, paths, units, users, groups, manager, packages, venvs, npm,
                probes=()) -> str:
        return _commands(paths, units, users, groups, manager, packages, venvs, npm, probes)

    def process(self, output: list[str]) -> dict:
        return _parse(output)


# section -> (the per-item fact, its argument name)
_SINGLE = {"paths": (PathState, "path"), "units": (UnitState, "unit"),
           "users": (UserState, "user"), "groups": (GroupState, "group"),
           "venvs": (VenvState, "path"), "npm": (NpmState, "prefix")}


def _snapshot(host) -> dict:
    """The run's snapshot; an empty one (everything asked on its own) if none was taken."""
    return memo(host, "snapshot", lambda: {"_requested": {k: set() for k in
                                                          (*_SINGLE, "packages", "probes")},
                                           **{k: {} for k in _SINGLE}, "probes": {}})


def take_snapshot(host, request: dict) -> dict:
    """Fetch the snapshot for `request` (Snapshot.command's kwargs) once per run."""
    def fetch() -> dict:
        snap = quiet_fact(host, Snapshot, **request)
        snap["_requested"] = {key: set(request.get(key) or ()) for key in _SINGLE}
        snap["_requested"]["packages"] = set(request.get("packages") or ())
        snap["_requested"]["probes"] = {name for name, _ in request.get("probes") or ()}
        return snap
    return memo(host, "snapshot", fetch)


def snapshot_of(host, section: str, key: str):
    """The host's state of `key` (a path, unit, account, ...) in `section`, from the run's
    snapshot; what the snapshot was not asked about is looked up on its own."""
    snap = _snapshot(host)
    if key not in snap["_requested"][section]:
        fact, argument = _SINGLE[section]
        snap[section][key] = quiet_fact(host, fact, **{argument: key})
        snap["_requested"][section].add(key)
    return snap[section].get(key)


def probe_of(host, name: str, process, fetch):
    """`process(lines)` of the run's snapshot probe `name` (a component's own command, batched
    into the snapshot); `fetch()` (the same question as its own fact) when the snapshot did
    not run it."""
    snap = _snapshot(host)
    if name in snap["_requested"].get("probes", ()):
        return process(snap["probes"].get(name, []))
    return fetch()


def forget_probe(host, name: str) -> None:
    """From now on in this run, answer probe `name` with its own fact: an operation before
    its readers changes what it read (a package whose install starts a service, a unit
    stopped first). pyinfra asks a fact again when it runs an operation, so the readers then
    see the host as it is by then."""
    _snapshot(host)["_requested"].get("probes", set()).discard(name)


def fact_probe(name: str, fact: type[FactBase], **kwargs) -> tuple[str, str]:
    """A snapshot probe (name, command) that asks what `fact` asks (with `kwargs`), run only
    where its required command exists, as pyinfra runs the fact."""
    command = fact().command(**kwargs)
    required = fact.requires_command  # a name: our facts never compute it from kwargs
    if required:
        command = f"if command -v {shlex.quote(required)} >/dev/null 2>&1; then {command}; fi"
    return name, command


def probed_fact(host, name: str, fact: type[FactBase], **kwargs):
    """`host.get_fact(fact, **kwargs)`, answered by the run's snapshot probe `name` when a
    component's snapshot_reads put `fact_probe(name, fact, **kwargs)` there."""
    instance = fact()
    return probe_of(host, name,
                    lambda lines: instance.process(lines) if lines else instance.default(),
                    lambda: host.get_fact(fact, **kwargs))


def packages_state(host, manager: str, names: list[str]) -> dict:
    """{"installed": [...], "lists_age": seconds or None} for `names`."""
    snap = _snapshot(host)
    if not set(names) <= snap["_requested"]["packages"]:
        found = quiet_fact(host, PackageState, manager=manager, names=sorted(names))
        previous = snap.get("packages", {"installed": []})
        snap["packages"] = {"installed": sorted(set(previous["installed"]) | set(found["installed"])),
                            "lists_age": found["lists_age"]}
        snap["_requested"]["packages"].update(names)
    return snap["packages"]
