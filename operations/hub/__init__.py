"""JupyterHub: its venv, configuration, secrets and systemd service.

The hub runs as root (PAM logins and the local spawner need it) from its own venv, keeps
its state (sqlite database, cookie secret) in `hub.state_dir`, listens on loopback only
and talks to the separately running configurable-http-proxy (operations/proxy).

A changed configuration is uploaded next to the live one, loaded by the hub's own Python
(check_config.py, beside this file: the configured authenticator and spawner are imported
too) and only then moved into place, so a bad change fails the deploy and never takes a
running hub down. Secrets (OAuth client secrets, a shared password) never appear in the
rendered configuration: the config reads them from a 0600 file at start.

Authenticator and spawner variants render generically: each model says its class, its
packages, its secrets and its traits (pyinfra_jupyter/spec/hub.py).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from pydantic import SecretStr
from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import DeployError

from pyinfra_jupyter.backup import ROOT, backup_command, database_copy
from pyinfra_jupyter.spec import SiteSpec
from pyinfra_jupyter.spec.hub import SYSTEM_ACCOUNTS_GUARD

from .. import paths
from ..items import Absent, Directory, File, Item, Perms, Service, Step, Venv
from ..ops.converge import wait_for_port
from ..ops.facts import snapshot_of
from ..ops.render import render
from ..platform import Platform, SystemdCaps
from ..site import Site

NAME = "hub"
TITLE = "Install and run JupyterHub"

CONFIG_DIR = paths.HUB_ETC
CONFIG = f"{CONFIG_DIR}/jupyterhub_config.py"
SECRETS = f"{CONFIG_DIR}/secrets.json"  # 0600 root; read by the config, never rendered into it
CHECK_SCRIPT = f"{CONFIG_DIR}/check_config.py"
UNIT_FILE = f"{paths.UNIT_DIR}/{paths.HUB_UNIT}"
CHECK_SOURCE = Path(__file__).with_name("check_config.py")

# Scopes the idle culler needs (jupyterhub-idle-culler's README); admin:users only when it
# also deletes users, which we never ask it to.
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def wanted(spec: SiteSpec) -> bool:
    return spec.mode == "hub"


def packages(spec: SiteSpec, platform: Platform) -> list[str]:
    """The pinned Python packages of the hub's venv, then the spec's extras."""
    hub = spec.hub
    wanted_pkgs = [
        f"jupyterhub=={hub.version or platform.pin('jupyterhub')}",
        f"jupyterlab=={hub.jupyterlab_version or platform.pin('jupyterlab')}",
    ]
    names = list(hub.auth.requirements) + list(hub.spawner.requirements)
    if hub.idle_culler.enabled:
        names.append("jupyterhub-idle-culler")
    wanted_pkgs += [f"{name}=={platform.pin(name)}" for name in names]
    return wanted_pkgs + [p for p in spec.python.packages if p not in wanted_pkgs]


def secrets(spec: SiteSpec) -> dict[str, SecretStr]:
    return spec.hub.auth.secrets()


def _traits(traits: dict) -> list[tuple[str, dict]]:
    for cls, values in traits.items():
        if not _IDENTIFIER.fullmatch(cls) or not all(_IDENTIFIER.fullmatch(t) for t in values):
            raise ValueError(f"not a trait name: {cls}.{list(values)}")
    return list(traits.items())


def render_config(spec: SiteSpec, secrets_path: str = SECRETS) -> str:
    """The text of jupyterhub_config.py for this spec (no secrets in it)."""
    hub = spec.hub
    culler = hub.idle_culler
    culler_cmd = [
        f"{hub.prefix}/bin/python3", "-m", "jupyterhub_idle_culler",
        f"--timeout={culler.timeout}", f"--cull-every={culler.every}",
        f"--max-age={culler.max_age}",
    ] if culler.enabled else None
    return render(
        "hub", "jupyterhub_config.py",
        hub=hub,
        database=paths.hub_database(hub.state_dir),
        cookie_secret=paths.hub_cookie_secret(hub.state_dir),
        auth=hub.auth,
        system_accounts_guard=SYSTEM_ACCOUNTS_GUARD,
        users=spec.users,
        proxy_api_port=spec.proxy.api_port,
        allow_all=spec.users.allow_all or hub.auth.admits_everyone_it_accepts(),
        auth_traits=_traits(hub.auth.traits()),
        spawner=hub.spawner,
        spawner_traits=_traits(hub.spawner.traits()),
        secrets_path=secrets_path if secrets(spec) else None,
        culler_cmd=culler_cmd,
        culler_scopes=CULLER_SCOPES,
    )


def check_command(spec: SiteSpec, path: str = "{path}") -> str:
    """Load the config at `path` (default: the staged copy) with the hub's own Python."""
    args = [f"{spec.hub.prefix}/bin/python", CHECK_SCRIPT]
    target = path if path == "{path}" else shlex.quote(path)
    # check_config.py CONFIG [--no-construct]: the flag after the config it is about.
    flag = "" if spec.hub.auth.constructible else " --no-construct"
    return f"cd / && {shlex.join(args)} {target}{flag}"


def render_unit(spec: SiteSpec, platform: Platform) -> str:
    return render(
        "hub", "jupyterhub.service",
        hub=spec.hub,
        config=CONFIG,
        token_env=paths.PROXY_TOKEN_ENV,
        proxy_unit=paths.PROXY_UNIT,
        version=spec.hub.version or platform.pin("jupyterhub"),
        caps=platform.systemd,
        writes_etc=spec.hub.auth.creates_system_users(),
        ca_bundle=platform.family.ca_bundle,
    )


def _check_platform(spec: SiteSpec, platform: Platform) -> None:
    for capability in spec.hub.spawner.needs:
        if not platform.systemd.has(capability):
            raise DeployError(
                f"hub.spawner: the {spec.hub.spawner.type} spawner needs systemd "
                f"{SystemdCaps.since(capability)} or newer ({capability.replace('_', ' ')}), "
                f"and {platform.label} has systemd {platform.systemd.version}; "
                "use hub.spawner.type = 'local'"
            )


def items(site: Site) -> list[Item]:
    spec, platform = site.spec, site.platform
    hub = spec.hub
    _check_platform(spec, platform)
    secret_values = secrets(spec)
    out: list[Item] = [
        Venv(hub.prefix, site.python_bin, site.python_version, tuple(packages(spec, platform)),
             "JupyterHub", timeout=spec.network.timeout, keep_previous=True),
        Directory(hub.state_dir, mode="700", label=f"Create {hub.state_dir} (database, cookie secret)"),
        # The hub makes its cookie secret once and refuses to start if others can read it:
        # its mode is kept (before any restart below), its bytes never touched.
        Perms(paths.hub_cookie_secret(hub.state_dir),
              label="Keep the cookie secret root's alone (0600; never regenerated)"),
        Directory(CONFIG_DIR, mode="755"),
    ]
    if secret_values:
        text = json.dumps({k: v.get_secret_value() for k, v in secret_values.items()},
                          indent=1, sort_keys=True) + "\n"
        out.append(File(SECRETS, SecretStr(text), mode="600"))
    else:
        out.append(Absent(SECRETS, label=f"Remove {SECRETS} (no secrets needed)"))
    out += [
        File(CHECK_SCRIPT, CHECK_SOURCE.read_text()),
        File(CONFIG, render_config(spec), check=check_command(spec),
             label=f"Upload {CONFIG} (checked by the hub's Python before it replaces the old one)"),
        File(UNIT_FILE, render_unit(spec, platform)),
        # The unit is the spec's alone: a drop-in made by hand is drift.
        Absent(f"{UNIT_FILE}.d", label=f"Remove drop-ins added by hand ({UNIT_FILE}.d)"),
        # New packages in a running hub's venv: back up, upgrade-db, check, restart; roll
        # back to the venv's previous copy and the backup if the new hub does not come up.
        Step(upgrade, "Switch the hub to its new packages (a backup first, upgrade-db if "
             "JupyterHub changed, rolled back if the hub does not come up)",
             {"spec": spec, "new": packages(spec, platform)[0].split("==", 1)[1]},
             key_name="hub-upgrade", restart_on=(f"venv:{hub.prefix}",)),
        Service(
            paths.HUB_UNIT,
            restart_on=(f"file:{SECRETS}", f"absent:{SECRETS}",
                        f"file:{CONFIG}", f"file:{UNIT_FILE}", paths.PROXY_TOKEN_STEP,
                        f"absent:{UNIT_FILE}.d",
                        # A (re)started proxy has no routes until the hub adds them, which
                        # a hub does at start (else only every last_activity_interval).
                        f"service:{paths.PROXY_UNIT}"),
            reload_on=(f"file:{UNIT_FILE}", f"absent:{UNIT_FILE}.d"),
            # A new venv (an upgraded JupyterHub) must still load the config in place.
            check=check_command(spec, CONFIG),
            port=hub.api_port,
        ),
    ]
    return out



def upgrade_script(spec: SiteSpec, old: str | None, new: str) -> str:
    """The hub's switch to the packages its venv just got (operations `upgrade`): a backup
    first; `jupyterhub upgrade-db` when JupyterHub's version changed; the config checked by
    the new hub; the hub started and answering. If any of it fails, the previous venv (kept by
    the install as `PREFIX.previous`) and the database from that backup are put back, the old
    hub is started, and the run fails saying so."""
    hub = spec.hub
    prefix, previous = shlex.quote(hub.prefix), shlex.quote(hub.prefix + ".previous")
    db = shlex.quote(paths.hub_database(hub.state_dir))
    port = int(hub.api_port)
    lines = [
        "set -u",
        "stamp=$(sh -c " + shlex.quote(backup_command(spec, spec.backup.keep))
        + " | sed -n 's/^stamp=//p')",
        '[ -n "$stamp" ] || { echo "the backup before the upgrade failed: nothing was '
        'switched" >&2; exit 1; }',
        f'echo "backup $stamp taken before the hub packages changed ({old} -> {new})"',
        "rollback() {",
        '  echo "the hub did not come up on its new packages ($1): rolling back to the '
        'previous venv and the database of backup $stamp" >&2',
        f"  systemctl stop {paths.HUB_UNIT}",
        f"  if [ -d {previous} ]; then rm -rf -- {prefix} && mv -T -- {previous} {prefix}; fi",
        f'  if [ -f "{ROOT}/$stamp/jupyterhub.sqlite" ]; then rm -f -- {db}-journal {db}-wal && '
        + database_copy(spec, f'"{ROOT}/$stamp/jupyterhub.sqlite"', db) + "; fi",
        f"  systemctl start {paths.HUB_UNIT}",
        "  exit 1",
        "}",
        # The unit file may be new in this run too (the Service item reloads it later).
        f"systemctl daemon-reload; systemctl stop {paths.HUB_UNIT}",
    ]
    if old != new:
        # upgrade-db runs `alembic` from PATH: the venv's own.
        lines.append(f"(cd {shlex.quote(hub.state_dir)} && PATH={prefix}/bin:$PATH "
                     f"{prefix}/bin/jupyterhub upgrade-db -f {shlex.quote(CONFIG)}) || "
                     "rollback 'jupyterhub upgrade-db failed'")
    lines += [
        f"{check_command(spec, CONFIG)} || rollback 'its config does not load'",
        f"systemctl start {paths.HUB_UNIT} || rollback 'it did not start'",
        f"( {wait_for_port(paths.HUB_UNIT, port)} ) || "
        f"rollback 'its API never answered on port {port}'",
        f"rm -rf -- {previous}",
        f'echo "the hub runs JupyterHub {new}"',
    ]
    return "\n".join(lines)


@operation()
def upgrade(spec: SiteSpec, new: str, changed: bool = False):
    """
    Switch the running hub to the packages its venv just got, with a backup first and a
    rollback on failure (`upgrade_script`); nothing for a first install.

    + spec: the site spec
    + new: the JupyterHub version the venv now holds
    + changed: the hub's venv changed in this run
    """
    live = snapshot_of(host, "venvs", spec.hub.prefix)
    if not changed or live is None:
        host.noop("the hub's packages did not change" if not changed
                  else "a new hub: nothing to upgrade")
        return
    from ..ops.converge import installed_distributions

    old = installed_distributions(live["dists"]).get("jupyterhub")
    yield f"sh -c {shlex.quote(upgrade_script(spec, old, new))}"


# A runtime drop-in (gone at the next boot if the uninstall is cut short).
_STOP_ALL = "/run/systemd/system/jupyterhub.service.d"


@operation()
def stop_with_servers():
    """Stop the hub and every single-user server it started: local servers live in the hub's
    cgroup and outlive a plain stop (KillMode=process, so a hub restart keeps them); the
    systemd spawner's run as units of their own.

    + (none)
    """
    live = snapshot_of(host, "units", paths.HUB_UNIT) or {}
    if live.get("ActiveState") not in ("active", "activating", "reloading"):
        host.noop(f"{paths.HUB_UNIT} is not running")
        return
    yield (f"mkdir -p {_STOP_ALL} && printf '[Service]\\nKillMode=control-group\\n' > "
           f"{_STOP_ALL}/uninstall.conf && systemctl daemon-reload && "
           f"systemctl stop {paths.HUB_UNIT}; rm -rf {_STOP_ALL}; systemctl daemon-reload; "
           "systemctl stop 'jupyter-*-singleuser.service' 2>/dev/null; true")


def before_removal(site: Site) -> list[Item]:
    """Uninstall, first: the hub goes down with its users' servers."""
    return [Step(stop_with_servers, "Stop the hub and the single-user servers it started")]
