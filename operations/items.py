"""What a component wants on a host, as plain data: the desired state, item by item.

Components are pure functions from (spec, platform, host facts) to a list of items; they
import no pyinfra. One runner (operations/ops/apply.py) turns items into operations that
read one batched snapshot of the host, so a converged host costs almost no remote
commands. The same lists tell `verify` what to check, `uninstall` what to remove, and the
hostile-input tests what to render.

Every item has a `key`; a `Service` restarts when an item it names by key changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr


@dataclass(frozen=True)
class Packages:
    """OS packages from the distro's package manager (never removed by us)."""

    names: tuple[str, ...]
    label: str
    timeout: int = 1800  # seconds each step (lists refresh, install) may take

    @property
    def key(self) -> str:
        return f"packages:{self.label}"


@dataclass(frozen=True)
class Group:
    name: str
    system: bool = True

    @property
    def key(self) -> str:
        return f"group:{self.name}"


@dataclass(frozen=True)
class User:
    """A system account. An account that already exists keeps its home and shell unless
    `manage_login`; it only joins `groups`."""

    name: str
    system: bool = True
    home: str | None = None
    shell: str = "/usr/sbin/nologin"
    groups: tuple[str, ...] = ()
    create_home: bool = False
    manage_login: bool = False
    comment: str = "pyinfra-jupyter"

    @property
    def key(self) -> str:
        return f"user:{self.name}"


@dataclass(frozen=True)
class Directory:
    """A directory. With `as_user`, it lives in that user's space: that user makes it and
    sets its mode (root never follows a path a non-root user can change)."""

    path: str
    user: str = "root"
    group: str = "root"
    mode: str = "755"
    as_user: str | None = None
    label: str = ""

    @property
    def key(self) -> str:
        return f"dir:{self.path}"


@dataclass(frozen=True)
class File:
    """A file in a root-owned directory, written through a staged copy that is checked
    (`check`, `{path}` = the staged copy) before one rename puts it live. A SecretStr
    content is never shown (not in output, not in diffs)."""

    path: str
    content: str | bytes | SecretStr
    user: str = "root"
    group: str = "root"
    mode: str = "644"
    check: str | None = None
    label: str = ""

    @property
    def secret(self) -> bool:
        return isinstance(self.content, SecretStr)

    @property
    def data(self) -> bytes:
        if isinstance(self.content, SecretStr):
            return self.content.get_secret_value().encode()
        return self.content if isinstance(self.content, bytes) else self.content.encode()

    @property
    def key(self) -> str:
        return f"file:{self.path}"


@dataclass(frozen=True)
class Perms:
    """Owner and mode of a file that something else writes (the hub's cookie secret, the
    agent's key copies): fixed in place when they drifted; never created, read or written.
    Only for files in root-owned directories (no user can swap them for a link)."""

    path: str
    user: str = "root"
    group: str = "root"
    mode: str = "600"
    label: str = ""

    @property
    def key(self) -> str:
        return f"perms:{self.path}"


@dataclass(frozen=True)
class Absent:
    """A file or directory tree that must not exist (something we made and no longer need)."""

    path: str
    label: str = ""
    # Removed only while it holds this file (relative to it), e.g. a venv's pyvenv.cfg: a
    # directory the spec names that turned out to be something else is never removed.
    marker: str = ""

    @property
    def key(self) -> str:
        return f"absent:{self.path}"


@dataclass(frozen=True)
class AbsentUser:
    """An account the deploy made that must go (uninstall): deleted only when its comment
    (GECOS) still carries our marker, so an account someone else made or took over is never
    touched. Its home directory stays unless `remove_home`."""

    name: str
    remove_home: bool = False
    marker: str = "pyinfra-jupyter"

    @property
    def key(self) -> str:
        return f"absent-user:{self.name}"


@dataclass(frozen=True)
class Venv:
    """A Python venv holding exactly-pinned (and extra) requirements."""

    path: str
    python: str  # the interpreter that makes it
    python_version: str  # its major.minor: a venv of another one is rebuilt
    requirements: tuple[str, ...]
    label: str
    timeout: int = 1800  # seconds the install may take
    # Installed from these files (platform.Artifact), which the controller downloads once and
    # checks, instead of from the package index: the host needs no internet access for them.
    wheels: tuple[Any, ...] = ()
    # Before an install changes an existing venv, copy it to `{path}.previous` (the hub's
    # rollback: operations/hub `upgrade`); a failed install puts that copy back at once.
    keep_previous: bool = False

    @property
    def key(self) -> str:
        return f"venv:{self.path}"


@dataclass(frozen=True)
class NpmPackage:
    prefix: str
    package: str
    version: str
    node: str
    npm: Any  # platform.Npm: the npm (version, sha256) that runs on that node
    label: str = ""
    timeout: int = 1800

    @property
    def key(self) -> str:
        return f"npm:{self.prefix}"


@dataclass(frozen=True)
class Service:
    """A systemd unit: enabled/running as asked; restarted when an item in `restart_on`
    changed (after `check`, when given, passes); units reloaded when `reload_on` changed."""

    unit: str
    enabled: bool = True
    running: bool = True
    restart_on: tuple[str, ...] = ()
    reload_on: tuple[str, ...] = ()
    check: str | None = None
    # A TCP port it listens on once up: after a (re)start the deploy waits for it, so a
    # service that crashes at start fails the deploy instead of passing silently.
    port: int | None = None

    @property
    def key(self) -> str:
        return f"service:{self.unit}"


@dataclass(frozen=True)
class Step:
    """An operation of our own that is not a plain item (a password, a token, firewall
    rules): `op(**kwargs)` with `name=label`. `restart_on` keys make it run when they changed
    (passed to the op as `changed=True`)."""

    op: Callable[..., Any]
    label: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    key_name: str = ""
    restart_on: tuple[str, ...] = ()
    # Paths the op looks at in the host snapshot (so it needs no command of its own).
    reads: tuple[str, ...] = ()
    # Seconds it may take at most (a step that talks to the network).
    timeout: int | None = None
    # It installs software: the op gets `installs` (ops/shell.py: swap, extra indexes).
    installs: bool = False

    @property
    def key(self) -> str:
        return f"step:{self.key_name or self.label}"


Item = (Packages | Group | User | Directory | File | Perms | Absent | AbsentUser | Venv | NpmPackage
        | Service | Step)
