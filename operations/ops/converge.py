"""Operations that converge one item each (operations/items.py), from the host's snapshot.

Each reads the answers `apply` fetched for all items at once (operations/ops/facts.py) and
yields commands only for what differs, so on a converged host they cost no remote command.
Rules every one of them keeps:

- root never follows a path a non-root user could have changed: files are written to a
  fresh staged name and renamed over the destination (a rename replaces a symlink, never
  writes through it); a symlink where a file or directory should be is refused or replaced;
  directories in a user's own space are made by that user (`runuser`);
- every value on a command line is quoted (`shlex.quote`), and secrets never are on one:
  they travel in uploaded files, and commands that need the network read its proxy
  settings from a 0600 file instead of `export http_proxy=...`;
- nothing waits forever on the network (timeouts and retries on apt, yum, pip, curl).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import uuid
from io import BytesIO, StringIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff

from ..items import (
    AbsentUser,
    Directory,
    File,
    Group,
    NpmPackage,
    Packages,
    Perms,
    Service,
    User,
    Venv,
)
from .facts import packages_state, quiet_fact, snapshot_of
from .shell import WITH_NETWORK, Installs, bounded, sha256_check

q = shlex.quote


_STAGED_PREFIX = ".pyinfra-new."
_REGULAR = ("regular file", "regular empty file")  # what `stat -c %F` says of a file


def staged_path(dest: str) -> str:
    """Where a new file waits: beside the live one (same file system: one atomic rename),
    same suffix (loaders may need `.py`)."""
    directory, _, name = dest.rpartition("/")
    return f"{directory}/{_STAGED_PREFIX}{name}"


def _upload_via_private_dir() -> bool:
    args = host.current_op_global_arguments or {}
    return bool(args.get("_sudo") or args.get("_su_user") or args.get("_doas")
                or args.get("_dzdo"))


def upload(data: str | bytes, dest: str):
    """Commands that upload `data` to `dest` (which exists, empty, mode 0600).

    Under sudo, pyinfra first uploads as the login user to a temporary file: put it in a
    directory only that user can enter, so no other user ever reads it.
    """
    if _upload_via_private_dir():
        # Relative to the login user's home: SFTP starts there, and sudo keeps that cwd.
        private = ".cache/pyinfra-jupyter-upload"
        yield StringCommand(f"umask 077 && mkdir -p {private} && chmod 700 {private}",
                            _sudo=False, _su_user=None, _doas=False, _dzdo=False)
        yield FileUploadCommand(upload_source(data), dest,
                                remote_temp_filename=f"{private}/{uuid.uuid4().hex}")
    else:
        yield FileUploadCommand(upload_source(data), dest)


def upload_source(data: str | bytes):
    """Text or bytes as what pyinfra uploads (a file-like object): files.put's `src` too."""
    return BytesIO(data) if isinstance(data, bytes) else StringIO(data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@operation()
def file(item: File):
    """
    Keep a file's content, owner and mode; a new content goes through a checked staged copy.

    + item: the File (path, content, owner, mode, optional check with `{path}`)
    """
    live = snapshot_of(host, "paths", item.path)
    want_meta = (item.user, item.group, str(int(item.mode)))
    regular = bool(live) and live["type"] in _REGULAR
    same_content = regular and live["sha256"] == sha256(item.data)
    same_meta = regular and (live["user"], live["group"], live["mode"]) == want_meta
    if same_content and same_meta:
        host.noop(f"{item.path} is up to date")
        return
    dest = q(item.path)
    if same_content:
        # Only ownership or mode drifted on a regular file: fix them in place.
        yield f"chown -h {q(item.user)}:{q(item.group)} {dest} && chmod {item.mode} {dest}"
        return
    if live and not regular:
        logger.warning(f"{host.print_prefix}{item.path} is a {live['type']}: replacing it")
    if item.secret:
        host.log(f"{item.path}: will be written (secret: contents not shown)", logger.info)
    elif host.state.config.DIFF and not host.state.is_executing:
        _show_diff(item, exists=regular)
    staged = q(staged_path(item.path))
    # The staged file is made (exclusively: never through a symlink) at its full size first,
    # so a full file system fails here with a message naming the file, not in the upload.
    size = len(item.data)
    yield (f"umask 077 && rm -f -- {staged} && (set -C && head -c {size} /dev/zero > {staged}) "
           f"|| {{ rm -f -- {staged}; echo {q(f'no room for {item.path} ({size} bytes) on its file system')} >&2; exit 1; }}")
    yield from upload(item.data, staged_path(item.path))
    yield f"chown {q(item.user)}:{q(item.group)} {staged} && chmod {item.mode} {staged}"
    if item.check:
        # replace, not format: a check may hold code with braces of its own.
        yield f"{item.check.replace('{path}', staged)} || {{ rm -f -- {staged}; exit 1; }}"
    yield f"mv -fT -- {staged} {dest}"


def _show_diff(item: File, exists: bool) -> None:
    current = quiet_fact(host, FileContents, path=item.path) if exists else None
    current_lines = [line + "\n" for line in current or []]
    host.log(f"Will {'modify' if exists else 'create'} {item.path}", logger.info)
    try:
        text = item.data.decode()
    except UnicodeDecodeError:
        logger.info("  (binary file)")
        return
    for line in generate_color_diff(current_lines, text.splitlines(keepends=True)):
        logger.info("  %s", line)


@operation()
def directory(item: Directory):
    """
    Keep a directory's owner and mode; refuse a symlink where the directory should be.

    + item: the Directory; with `as_user`, that user makes it and sets its mode
    """
    live = snapshot_of(host, "paths", item.path)
    path = q(item.path)
    if item.as_user:
        if live and live["type"] == "directory" and live["user"] == item.as_user and live[
                "mode"] == str(int(item.mode)):
            host.noop(f"{item.path} is up to date")
            return
        # As the user, with the user's rights only: whatever they put on the way is theirs.
        yield (f"cd / && runuser -u {q(item.as_user)} -- sh -c "
               + q(f"mkdir -p -- {path} && chmod {item.mode} -- {path}"))
        return
    if live and live["type"] == "symbolic link":
        raise_operation_error(f"{item.path} is a symbolic link; refusing to manage it "
                              "(remove it, or point the spec elsewhere)")
    if live and live["type"] == "directory" and (live["user"], live["group"], live["mode"]) == (
            item.user, item.group, str(int(item.mode))):
        host.noop(f"{item.path} is up to date")
        return
    if not live:
        yield f"mkdir -p -- {path}"
    yield f"chown -h {q(item.user)}:{q(item.group)} {path} && chmod {item.mode} {path}"


def raise_operation_error(message: str):
    from pyinfra.api.exceptions import OperationError

    raise OperationError(message)


@operation()
def perms(item: Perms):
    """
    Fix the owner and mode of a file something else writes, when they drifted.

    + item: the Perms (a regular file in a root-owned directory; absent: nothing to do)
    """
    live = snapshot_of(host, "paths", item.path)
    if not live or live["type"] not in _REGULAR:
        host.noop(f"{item.path} is not there (yet): nothing to fix")
        return
    if (live["user"], live["group"], live["mode"]) == (item.user, item.group,
                                                        str(int(item.mode))):
        host.noop(f"{item.path} has owner {item.user}:{item.group} and mode {item.mode}")
        return
    path = q(item.path)
    yield f"chown -h {q(item.user)}:{q(item.group)} {path} && chmod {item.mode} {path}"


@operation()
def absent(path: str, marker: str = ""):
    """
    Remove a file or directory tree we made and no longer need.

    + path: what to remove (nothing happens when it is already gone)
    + marker: a file it must hold to be removed (e.g. a venv's pyvenv.cfg)
    """
    if not snapshot_of(host, "paths", path):
        host.noop(f"{path} is already absent")
        return
    if marker and not snapshot_of(host, "paths", f"{path}/{marker}"):
        logger.warning(f"{host.print_prefix}{path} holds no {marker}: it is not what the "
                       "deploy made, so it stays")
        host.noop(f"{path} kept (no {marker} in it)")
        return
    yield f"rm -rf -- {q(path)}"


@operation()
def group(item: Group):
    """
    Make a group.

    + item: the Group
    """
    if snapshot_of(host, "groups", item.name):
        host.noop(f"group {item.name} exists")
        return
    yield f"groupadd {'--system ' if item.system else ''}{q(item.name)}"


@operation()
def user(item: User):
    """
    Make an account, or add an existing one to groups (its home and shell stay its own
    unless the item manages its login).

    + item: the User
    """
    live = snapshot_of(host, "users", item.name)
    if not live:
        args = ["useradd", "--comment", item.comment, "--shell", item.shell]
        if item.system:
            args.append("--system")
        if item.home:
            args += ["--home-dir", item.home]
        args.append("--create-home" if item.create_home else "--no-create-home")
        if item.create_home:
            # A private home (0700): useradd's mode is HOME_MODE or else 0777 & ~UMASK from
            # /etc/login.defs, which is 0755 on Debian 12. UMASK, not HOME_MODE: shadow-utils
            # before 4.8 (CentOS 7) refuses a key it does not know.
            args += ["--key", "UMASK=0077"]
        if item.groups:
            args += ["--groups", ",".join(item.groups)]
        if snapshot_of(host, "groups", item.name):
            # Its group is already there (made first, or left behind when the account was
            # deleted): useradd refuses to make it again, so join it.
            args += ["--gid", item.name]
        yield shlex.join([*args, item.name])
        return
    commands = []
    missing = [g for g in item.groups if g not in live["groups"]]
    if missing:
        commands.append(shlex.join(["usermod", "-a", "-G", ",".join(missing), item.name]))
    if item.manage_login and live["shell"] != item.shell:
        commands.append(shlex.join(["usermod", "--shell", item.shell, item.name]))
    if not commands:
        host.noop(f"user {item.name} is up to date")
    yield from commands


@operation()
def absent_user(item: AbsentUser):
    """
    Delete an account we made (its comment still carries our marker); its home stays unless
    the item says otherwise.

    + item: the AbsentUser
    """
    live = snapshot_of(host, "users", item.name)
    if not live:
        host.noop(f"no account {item.name}")
        return
    if item.marker not in live.get("comment", ""):
        host.noop(f"{item.name} was not made by pyinfra-jupyter (comment "
                  f"{live.get('comment', '')!r}): kept")
        return
    # Its processes first (userdel refuses a logged-in account); then the account.
    yield f"pkill -KILL -u {q(item.name)} 2>/dev/null; true"
    yield shlex.join(["userdel", *(["--remove"] if item.remove_home else []), item.name])


@operation()
def packages(item: Packages, family):
    """
    Install OS packages missing from the host (lists refreshed first when old).

    + item: the Packages
    + family: the platform's Family (its package manager)
    """
    state = packages_state(host, family.manager, list(item.names))
    missing = [name for name in item.names if name not in state["installed"]]
    if not missing:
        host.noop(f"{', '.join(item.names)} installed")
        return
    age = state["lists_age"]
    stale = bool(family.lists_path) and (age is None or age > family.lists_max_age)
    yield WITH_NETWORK + family.install_command(missing, update=stale, timeout=item.timeout)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(dist_info_names: list[str]) -> dict[str, str]:
    """{normalized name: version} from `NAME-VERSION.dist-info` directory names."""
    found = {}
    for entry in dist_info_names:
        stem = entry.removesuffix(".dist-info")
        name, _, version = stem.rpartition("-")
        if name:
            found[_normalize(name)] = version
    return found


def unmet(requirements: tuple[str, ...] | list[str], installed: dict[str, str]) -> list[str]:
    """The requirements `installed` does not satisfy (name, extras ignored, and specifier)."""
    from packaging.requirements import Requirement

    missing = []
    for text in requirements:
        req = Requirement(text)
        version = installed.get(_normalize(req.name))
        if version is None or (req.specifier and not req.specifier.contains(version, prereleases=True)):
            missing.append(text)
    return missing


PIP_OPTIONS = "--disable-pip-version-check --no-input --timeout 30 --retries 3 -q"


_SAID: set[tuple[str, str]] = set()  # (host, venv) whose bundle was announced


def _controller_bundle(item: Venv, installs: Installs):
    """The controller's wheel bundle for this venv (python.wheels), or None for the host's
    index. `controller` fails the host when the controller cannot make it; `auto` on a
    fleet says why and falls back to the index."""
    if installs.wheels == "index":
        return None
    from .wheelhouse import WheelhouseError, bundle, target_for

    required = installs.wheels == "controller"
    target = target_for(item.python_version, installs.arch, installs.glibc,
                        installs.extra_index_urls)
    try:
        if target is None:
            raise WheelhouseError(f"the host's C library ({installs.glibc or 'unknown'}) "
                                  "is not glibc")
        found = bundle(item.requirements, target)
    except WheelhouseError as exc:
        if required:
            raise DeployError(f"{host.name}: python.wheels controller: {item.path}: {exc}") \
                from None
        logger.warning(f"{host.print_prefix}{item.path}: the controller cannot fetch its "
                       f"wheels ({str(exc).splitlines()[0]}): the host installs from its index")
        return None
    if (host.name, item.path) not in _SAID:  # pyinfra may generate an op's commands twice
        _SAID.add((host.name, item.path))
        logger.info(f"{host.print_prefix}{item.path}: {found.wheels} wheels "
                    f"({found.size // 1048576} MiB) fetched once by the controller, uploaded")
    return found


@operation()
def venv(item: Venv, installs: Installs | None = None):
    """
    Keep a venv made by `item.python` holding `item.requirements`; rebuild it when its
    Python is gone or of another minor version (after an OS upgrade).

    + item: the Venv
    + installs: swap file and extra package indexes for the install (ops/shell.py)
    """
    installs = installs or Installs()
    live = snapshot_of(host, "venvs", item.path)
    path = q(item.path)
    commands = []
    rebuild = live is not None and (
        not live["runs"] or ".".join(live["version"].split(".")[:2]) != item.python_version)
    if live is None or rebuild:
        if rebuild:
            logger.warning(f"{host.print_prefix}{item.path}: its Python is gone or changed "
                           f"(now {item.python_version}): rebuilding the venv")
            commands.append(f"rm -rf -- {path}")
        commands.append(f"{q(item.python)} -m venv {path}")
        missing = list(item.requirements)
    else:
        missing = unmet(item.requirements, installed_distributions(live["dists"]))
    if missing:
        reqs = " ".join(q(r) for r in item.requirements)
        index = installs.pip_options
        wheels = f"{item.path}.wheels"
        bundle = None if item.wheels else _controller_bundle(item, installs)
        if item.wheels or bundle:
            commands.append(f"rm -rf -- {q(wheels)} && mkdir -m 700 -- {q(wheels)}")
            index = f" --no-index --find-links {q(wheels)}"
        if item.wheels:  # from the controller's checked downloads, not from an index
            from .fetch import fetch

            for artifact in item.wheels:
                commands.append(FileUploadCommand(str(fetch(artifact)),
                                                  f"{wheels}/{artifact.name}"))
            commands.append(" && ".join(sha256_check(a.sha256, f"{wheels}/{a.name}")
                                        for a in item.wheels))
        elif bundle:  # every wheel the venv needs, resolved once by the controller
            tar = f"{wheels}/wheels.tar"
            commands.append(FileUploadCommand(str(bundle.path), tar))
            commands.append(f"{sha256_check(bundle.sha256, tar)} && tar -xf {q(tar)} -C "
                            f"{q(wheels)} --no-same-owner && rm -f -- {q(tar)}")
        install = WITH_NETWORK + installs.wrap(bounded(
            f"{path}/bin/pip install {PIP_OPTIONS}{index} {reqs}",
            item.timeout, "pip (the package index or proxy)"))
        if item.keep_previous and live is not None and not rebuild:
            previous = q(item.path + ".previous")
            commands.append(f"rm -rf -- {previous} && cp -a -- {path} {previous}")
            install = (f"( {install} ) || {{ echo 'pip failed: {item.path} is put back as it "
                       f"was' >&2; rm -rf -- {path} && mv -T -- {previous} {path}; exit 1; }}")
        commands.append(install)
        if item.wheels or bundle:
            commands.append(f"rm -rf -- {q(wheels)}")
    if not commands:
        host.noop(f"{item.path} holds {len(item.requirements)} pinned packages")
    elif missing:
        installs.say(host)
    yield from commands


# npm itself is fetched from its registry rather than from apt: Debian 12's `npm` package
# pulls ~300 packages and took ~220 s in the lab, the tarball takes seconds. Pinned and
# checked by sha256, one npm per Node major (operations/platform.py: NPM_FOR_NODE); it only
# installs packages and is not kept on the host.
@operation()
def npm_package(item: NpmPackage, installs: Installs | None = None):
    """
    Install an npm package globally into its own prefix, with a pinned, checksummed npm.

    + item: the NpmPackage (prefix, package, exact version, node binary)
    + installs: the swap file for the install (ops/shell.py)
    """
    installs = installs or Installs()
    if (snapshot_of(host, "npm", item.prefix) or {}).get(item.package) == item.version:
        host.noop(f"{item.package} {item.version} is installed in {item.prefix}")
        return
    installs.say(host)
    yield WITH_NETWORK + installs.wrap(
        "tmp=$(mktemp -d) && trap 'rm -rf \"$tmp\"' EXIT"
        f" && curl -fsSL --connect-timeout 20 --max-time 300 --retry 3 -o \"$tmp/npm.tgz\" {item.npm.url}"
        " && " + sha256_check(item.npm.sha256, "$tmp/npm.tgz") +
        " && tar -xzf \"$tmp/npm.tgz\" -C \"$tmp\""
        " && " + bounded(
            f"{q(item.node)} \"$tmp/package/bin/npm-cli.js\" install --global --prefix "
            f"{q(item.prefix)} --no-audit --no-fund --no-update-notifier --fetch-timeout=60000 "
            f"--fetch-retries=3 {q(item.package + '@' + item.version)}",
            item.timeout, "npm (the registry or proxy)")
    )


PORT_WAIT_SECONDS = 120


def wait_for_port(unit: str, port: int) -> str:
    """Wait (bounded) until something listens on `port`; fail naming the unit if not."""
    return (
        f"for i in $(seq {PORT_WAIT_SECONDS}); do "
        f"if ss -Hltn 'sport = :{port}' | grep -q .; then exit 0; fi; "
        f"case $(systemctl is-active {q(unit)}) in active|activating|reloading) ;; "
        "*) break ;; esac; sleep 1; done; "
        f"echo '{unit} did not start listening on port {port}:' >&2; "
        f"journalctl -u {q(unit)} -n 20 --no-pager >&2; exit 1"
    )


@operation()
def service(item: Service, restart: bool, reload: bool):
    """
    Keep a unit enabled and running as asked; reload units and restart it when told to.

    + item: the Service
    + restart: something it reads changed (its check, when given, runs first)
    + reload: a unit file changed: `systemctl daemon-reload` first
    """
    live = snapshot_of(host, "units", item.unit) or {}
    unit = q(item.unit)
    commands = []
    if reload:
        commands.append("systemctl daemon-reload")
    file_state = live.get("UnitFileState", "")
    if file_state.startswith("masked"):
        # `mask --runtime` links it to /dev/null under /run, which a plain unmask leaves.
        runtime = " --runtime" if file_state == "masked-runtime" else ""
        commands.append(f"systemctl unmask{runtime} {unit}")
        file_state = ""
    if item.enabled and file_state not in ("enabled", "static", "alias", "indirect", "generated"):
        commands.append(f"systemctl enable {unit}")
    elif not item.enabled and file_state == "enabled":
        commands.append(f"systemctl disable {unit}")
    active = live.get("ActiveState") in ("active", "activating", "reloading")
    started = False
    if item.running and not active:
        commands.append(f"systemctl start {unit}")
        started = True
    elif item.running and restart:
        if item.check:
            commands.append(item.check)
        commands.append(f"systemctl restart {unit}")
        started = True
    elif not item.running and active:
        commands.append(f"systemctl stop {unit}")
    if started and item.port:
        commands.append(wait_for_port(item.unit, item.port))
    if not commands:
        host.noop(f"{item.unit} is {'running' if item.running else 'stopped'} and "
                  f"{'enabled' if item.enabled else 'disabled'}")
    yield from commands


@operation()
def command(command: str, changed: bool = False, force: bool = False, network: bool = False,
            timeout: int | None = None):
    """
    Run a shell command when something it depends on changed (or when told to).

    + command: the command (built from quoted values)
    + changed: something it depends on changed
    + force: run it anyway (e.g. a certificate is due)
    + network: it downloads: read the proxy settings from the 0600 environment file first
    + timeout: seconds it may take
    """
    if not (changed or force):
        host.noop("nothing it depends on changed")
        return
    if timeout:
        command = bounded(command, timeout, "the step's server (network or proxy)")
    yield (WITH_NETWORK if network else "") + command
