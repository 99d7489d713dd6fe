"""Manage JupyterHub: its venv, users, configuration and systemd service.

The hub runs as root (PAM logins and the local spawner need it) from its own venv, keeps
its state (sqlite database, cookie secret) in `hub.state_dir`, listens on loopback only
and talks to the separately running configurable-http-proxy (operations/proxy.py).

A changed configuration is uploaded next to the live one, loaded by the hub's own Python
(the configured authenticator and spawner are imported too) and only then moved into
place, so a bad change fails the deploy and never takes a running hub down. Secrets
(OAuth client secrets, a dummy password, users' login passwords) never appear in the
rendered configuration, pyinfra's output or its diffs: they go to 0600 files through
operations here that upload without printing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from io import StringIO

import jinja2
from pydantic import SecretStr
from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, deploy, operation
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from .common import PROXY_TOKEN_ENV, TEMPLATES, python_venv, service, template
from .network import download_env
from .platforms import Platform
from .spec import SiteSpec
from .spec.hub import (
    DummyAuth,
    GenericOAuth,
    GitHubAuth,
    GoogleAuth,
    LdapAuth,
    NativeAuth,
    PamAuth,
    SystemdSpawner,
)
from .staged import staged_file

CONFIG_DIR = "/etc/jupyterhub"
CONFIG = f"{CONFIG_DIR}/jupyterhub_config.py"
SECRETS = f"{CONFIG_DIR}/secrets.json"  # 0600 root; read by the config, never rendered into it
CHECK_SCRIPT = f"{CONFIG_DIR}/check_config.py"
UNIT = "jupyterhub.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
# systemd-run's resource properties the systemd spawner uses (MemoryMax, CPUQuota with
# user units) arrived in systemd 243.
SYSTEMD_SPAWNER_MIN = 243

# Scopes the idle culler needs (jupyterhub-idle-culler's README); admin:users only when it
# also deletes users, which we never ask it to.
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]

# Run on the host by the hub's own Python against a freshly uploaded config: load it as
# JupyterHub would, then import (and, where harmless, construct) the classes it names.
CHECK_CONFIG = '''\
"""Check a JupyterHub config before it replaces the live one (pyinfra-jupyter)."""
import os
import sys

from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

path = sys.argv[1]
config = PyFileConfigLoader(os.path.basename(path), os.path.dirname(path)).load_config()
hub = config.JupyterHub
for trait in ("authenticator_class", "spawner_class"):
    cls = import_item(hub[trait])
    if trait == "authenticator_class" and "Native" not in cls.__name__:
        cls(config=config)  # runs the traits' validators (NativeAuthenticator opens its db)
for svc in hub.get("services", []):
    command = svc.get("command") or []
    if command:
        os.stat(command[0])
    if "-m" in command:
        __import__(command[command.index("-m") + 1])
print("config ok:", path)
'''


# -- facts -----------------------------------------------------------------------------


class ShadowHash(FactBase[str | None]):
    """A user's password hash from /etc/shadow, or None if the user does not exist."""

    def command(self, user: str) -> str:
        return f"getent shadow {user} | cut -d: -f2 || true"

    def process(self, output: list[str]) -> str | None:
        value = "\n".join(output).strip()
        return value or None


# -- sha512-crypt ----------------------------------------------------------------------

_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PERM = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
]


def _b64(value: int, chars: int) -> str:
    out = []
    for _ in range(chars):
        out.append(_B64[value & 0x3F])
        value >>= 6
    return "".join(out)


def sha512_crypt(password: str, salt: str | None = None, rounds: int = 5000) -> str:
    """The `$6$` (sha512-crypt) hash of `password`, as glibc's crypt(3) makes it.

    With `salt` taken from an existing hash (`$6$SALT$...` or `$6$rounds=N$SALT$...`),
    comparing the result to that hash checks the password; the standard library's `crypt`
    module is deprecated (gone in Python 3.13), hence this small implementation.
    """
    if salt is None:
        salt = "".join(secrets.choice(_B64) for _ in range(16))
    custom = False
    if salt.startswith("$6$"):
        parts = salt.split("$")
        if parts[2].startswith("rounds="):
            rounds, salt, custom = int(parts[2][7:]), parts[3], True
        else:
            salt = parts[2]
    rounds = min(max(rounds, 1000), 999_999_999)
    salt = salt[:16]
    p, s = password.encode(), salt.encode()
    b = hashlib.sha512(p + s + p).digest()
    a = hashlib.sha512(p + s + b * (len(p) // 64) + b[: len(p) % 64])
    n = len(p)
    while n:
        a.update(b if n & 1 else p)
        n >>= 1
    c = a.digest()
    dp = hashlib.sha512(p * len(p)).digest()
    pp = (dp * (len(p) // 64 + 1))[: len(p)]
    ds = hashlib.sha512(s * (16 + c[0])).digest()
    ss = (ds * (len(s) // 64 + 1))[: len(s)]
    for i in range(rounds):
        h = hashlib.sha512(pp if i & 1 else c)
        if i % 3:
            h.update(ss)
        if i % 7:
            h.update(pp)
        h.update(c if i & 1 else pp)
        c = h.digest()
    encoded = "".join(_b64((c[x] << 16) | (c[y] << 8) | c[z], 4) for x, y, z in _PERM)
    encoded += _b64(c[63], 2)
    prefix = f"$6$rounds={rounds}$" if custom else "$6$"
    return f"{prefix}{salt}${encoded}"


def password_matches(password: str, hashed: str | None) -> bool:
    """True if `hashed` (from /etc/shadow) is a sha512-crypt hash of `password`."""
    if not hashed or not hashed.startswith("$6$"):
        return False
    return secrets.compare_digest(sha512_crypt(password, hashed), hashed)


# -- operations ------------------------------------------------------------------------


@operation()
def login_password(user: str, password: SecretStr):
    """
    Set a user's login password without it ever appearing on a command line or in output.

    + user: the system user
    + password: the password (a SecretStr); only its sha512-crypt hash is sent, through an
      uploaded file in root's home that is removed at once

    .. code:: python

        login_password(user="admin", password=SecretStr("..."))
    """
    clear = password.get_secret_value()
    if password_matches(clear, host.get_fact(ShadowHash, user=user)):
        host.noop(f"the password of {user} is already set")
        return
    staged = f"/root/.pyinfra-jupyter-passwd-{user}"
    yield StringCommand(f"umask 077 && : > {staged}")
    yield FileUploadCommand(StringIO(f"{user}:{sha512_crypt(clear)}\n"), staged)
    yield StringCommand(f"chpasswd -e < {staged}; rc=$?; rm -f {staged}; exit $rc")


# -- what the hub is made of -----------------------------------------------------------


def hub_packages(spec: SiteSpec, platform: Platform) -> list[str]:
    """The pinned Python packages of the hub's venv."""
    pins, hub = platform.pins, spec.hub
    packages = [
        f"jupyterhub=={hub.version or pins.jupyterhub}",
        f"jupyterlab=={hub.jupyterlab_version or pins.jupyterlab}",
    ]
    if hub.idle_culler.enabled:
        packages.append(f"jupyterhub-idle-culler=={pins.culler}")
    auth = hub.auth
    if isinstance(auth, NativeAuth):
        packages.append(f"jupyterhub-nativeauthenticator=={pins.native_auth}")
    elif isinstance(auth, GitHubAuth | GoogleAuth | GenericOAuth):
        packages.append(f"oauthenticator=={pins.oauthenticator}")
    elif isinstance(auth, LdapAuth):
        packages.append(f"jupyterhub-ldapauthenticator=={pins.ldap_auth}")
    if isinstance(hub.spawner, SystemdSpawner):
        packages.append(f"jupyterhub-systemdspawner=={pins.systemdspawner}")
    return packages + list(spec.python.packages)


def hub_secrets(spec: SiteSpec) -> dict[str, str]:
    """Secrets the hub config reads from SECRETS at start (empty: no secrets file)."""
    auth = spec.hub.auth
    if isinstance(auth, GitHubAuth | GoogleAuth | GenericOAuth):
        return {"oauth_client_secret": auth.client_secret.get_secret_value()}
    if isinstance(auth, DummyAuth) and auth.password is not None:
        return {"dummy_password": auth.password.get_secret_value()}
    return {}


AUTH_CLASSES = {
    "pam": "jupyterhub.auth.PAMAuthenticator",
    "native": "nativeauthenticator.NativeAuthenticator",
    # The Local* variants create a system user at first login: the local spawner runs
    # every user's server as a real Unix user.
    "github": "oauthenticator.github.LocalGitHubOAuthenticator",
    "google": "oauthenticator.google.LocalGoogleOAuthenticator",
    "generic-oauth": "oauthenticator.generic.LocalGenericOAuthenticator",
    "ldap": "ldapauthenticator.LDAPAuthenticator",
    "dummy": "jupyterhub.auth.DummyAuthenticator",
}


def _auth_class(spec: SiteSpec) -> str:
    auth = spec.hub.auth
    if isinstance(auth, DummyAuth) and auth.password is not None:
        # DummyAuthenticator.password is deprecated since JupyterHub 5.3.
        return "jupyterhub.authenticators.shared.SharedPasswordAuthenticator"
    return AUTH_CLASSES[auth.type]


def render_config(spec: SiteSpec, secrets_path: str = SECRETS) -> str:
    """The text of jupyterhub_config.py for this spec (no secrets in it)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES / "hub")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = repr
    hub = spec.hub
    culler = hub.idle_culler
    culler_cmd = [
        f"{hub.prefix}/bin/python3", "-m", "jupyterhub_idle_culler",
        f"--timeout={culler.timeout}", f"--cull-every={culler.every}",
        f"--max-age={culler.max_age}",
    ]
    return env.get_template("jupyterhub_config.py.j2").render(
        spec=spec,
        hub=hub,
        auth=hub.auth,
        users=spec.users,
        auth_class=_auth_class(spec),
        allow_all=spec.users.allow_all or isinstance(hub.auth, NativeAuth),
        secrets_path=secrets_path if hub_secrets(spec) else None,
        culler_cmd=culler_cmd,
        culler_scopes=CULLER_SCOPES,
        is_pam=isinstance(hub.auth, PamAuth),
        is_native=isinstance(hub.auth, NativeAuth),
        is_oauth=isinstance(hub.auth, GitHubAuth | GoogleAuth | GenericOAuth),
        is_ldap=isinstance(hub.auth, LdapAuth),
        is_dummy=isinstance(hub.auth, DummyAuth),
        is_systemd=isinstance(hub.spawner, SystemdSpawner),
    )


def check_command(spec: SiteSpec) -> str:
    return f"{spec.hub.prefix}/bin/python {CHECK_SCRIPT} {{path}}"


# -- the deploy ------------------------------------------------------------------------


@deploy("Install and run JupyterHub")
def deploy_hub(spec: SiteSpec, platform: Platform) -> None:
    hub = spec.hub
    if isinstance(hub.spawner, SystemdSpawner) and (platform.systemd or 0) < SYSTEMD_SPAWNER_MIN:
        raise DeployError(
            f"hub.spawner: the systemd spawner needs systemd {SYSTEMD_SPAWNER_MIN} or newer for "
            f"per-user memory and CPU limits, and {platform.label} has systemd {platform.systemd}; "
            "use hub.spawner.type = 'local'"
        )

    venv_changed = python_venv(
        "JupyterHub", hub.prefix, hub_packages(spec, platform), download_env(spec.network, platform)
    )
    _users(spec)

    files.directory(name=f"Create {hub.state_dir} (database, cookie secret)",
                    path=hub.state_dir, user="root", group="root", mode="700")
    files.directory(name=f"Create {CONFIG_DIR}", path=CONFIG_DIR,
                    user="root", group="root", mode="755")

    changed: list = [venv_changed]
    secret_values = hub_secrets(spec)
    if secret_values:
        changed.append(staged_file(
            name=f"Upload {SECRETS} (mode 0600, contents not shown)",
            content=SecretStr(json.dumps(secret_values, indent=1, sort_keys=True) + "\n"),
            dest=SECRETS,
            mode="600",
        ))
    else:
        files.file(name=f"Remove {SECRETS} (no secrets needed)", path=SECRETS, present=False)

    files.put(name=f"Upload {CHECK_SCRIPT}", src=StringIO(CHECK_CONFIG), dest=CHECK_SCRIPT,
              user="root", group="root", mode="644")
    changed.append(staged_file(
        name=f"Upload {CONFIG} (checked by the hub's Python before it replaces the old one)",
        content=render_config(spec),
        dest=CONFIG,
        check=check_command(spec),
    ))

    unit = files.template(
        name=f"Upload {UNIT_FILE}",
        src=template("hub", "jupyterhub.service"),
        dest=UNIT_FILE,
        mode="644",
        hub=hub,
        config=CONFIG,
        token_env=PROXY_TOKEN_ENV,
        version=hub.version or platform.pins.jupyterhub,
    )
    changed.append(unit)
    # A (re)made proxy token (operations/proxy.py) must reach the hub too.
    token = host.get_fact(File, path=PROXY_TOKEN_ENV)
    changed.append(not (token and token.get("size")))
    service(UNIT, changed=changed, unit_changed=unit.will_change)


def _users(spec: SiteSpec) -> None:
    """System accounts from users.accounts, with their groups and (for PAM) passwords."""
    groups = sorted({g for a in spec.users.accounts for g in a.groups})
    for group in groups:
        server.group(name=f"Create the group {group}", group=group)
    for account in spec.users.accounts:
        server.user(
            name=f"Create the user {account.name}",
            user=account.name,
            home=f"/home/{account.name}",
            shell="/bin/bash",
            groups=list(account.groups),
            create_home=True,
        )
        password = account.login_password()
        if password is not None and isinstance(spec.hub.auth, PamAuth):
            login_password(
                name=f"Set the login password of {account.name} (from the spec, not shown)",
                user=account.name,
                password=password,
            )

