"""Helpers several components share (components never import each other)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import pip, systemd

from .python import PYTHON

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Where the TLS component leaves the certificate every public service serves.
TLS_DIR = "/etc/pyinfra-jupyter/tls"
TLS_CERT = f"{TLS_DIR}/fullchain.pem"
TLS_KEY = f"{TLS_DIR}/privkey.pem"
TLS_GROUP = "jupyter-tls"  # services that serve TLS are members; the key is 0640 root:jupyter-tls
NETWORK_ENV = "/etc/pyinfra-jupyter/network.env"
# CONFIGPROXY_AUTH_TOKEN=...: made once on the host (0600 root), read by the proxy and the hub.
PROXY_TOKEN_ENV = "/etc/pyinfra-jupyter/proxy-auth.env"


def template(component: str, name: str) -> str:
    """Path of templates/<component>/<name>.j2."""
    return str(TEMPLATES / component / f"{name}.j2")


def render(component: str, name: str, **values) -> str:
    """Render templates/<component>/<name>.j2 the way files.template does (strict)."""
    import jinja2

    with open(template(component, name)) as handle:
        source = handle.read()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source).render(**values)


def text(content: str) -> StringIO:
    """An in-memory file for files.put."""
    return StringIO(content)


def python_venv(label: str, path: str, packages: list[str], env: dict[str, str]) -> bool:
    """Create a venv at `path` and install pinned `packages`; True if anything changed."""
    venv = pip.venv(name=f"Create the {label} venv {path}", path=path, python=PYTHON)
    installed = pip.packages(
        name=f"Install {label} packages",
        packages=packages,
        virtualenv=path,
        _env=env,
    )
    return bool(venv.will_change or installed.will_change)


def service(
    unit: str, *, changed: list, unit_changed: bool, enabled: bool = True, running: bool = True
) -> None:
    """Enable and start `unit`; restart it only when its config, code or unit changed.

    `changed` holds operations (or booleans) whose change requires a restart.
    """
    systemd.daemon_reload(name="Reload systemd units", _if=lambda: unit_changed)
    restart = any(op if isinstance(op, bool) else op.will_change for op in changed)
    # Say what will happen: systemd.service only restarts a unit that is already running.
    is_running = host.get_fact(SystemdStatus).get(unit)
    if not running:
        verb = "Stop"
    elif restart and is_running:
        verb = "Restart"
    else:
        verb = "Start"
    systemd.service(
        name=f"{verb} and {'enable' if enabled else 'disable'} {unit}",
        service=unit,
        running=running,
        enabled=enabled,
        restarted=restart and running,
    )


