"""Single-user Jupyter servers (mode "notebook"): one hardened systemd unit per named instance.

Each instance of `notebook.instances` gets a system user (never root), a venv at
`{prefix}/{name}` with the pinned JupyterLab, a `jupyter_server_config.py` in
`/etc/jupyter/instances/{name}/` (0600, it holds the password hash) and the unit
`jupyter-notebook@{name}.service`. Instances deployed earlier but no longer in the spec are
stopped, disabled and removed; their users and notebooks stay.
"""

from __future__ import annotations

import shlex

from pydantic import SecretStr
from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Users
from pyinfra.operations import files, server, systemd

from .common import (
    NETWORK_ENV,
    TLS_CERT,
    TLS_GROUP,
    TLS_KEY,
    python_venv,
    render,
    service,
    template,
)
from .network import download_env
from .platforms import Platform
from .spec import SiteSpec
from .spec.notebook import NotebookInstance, NotebookSpec
from .staged import staged_file

CONFIG_ROOT = "/etc/jupyter/instances"
CONFIG_NAME = "jupyter_server_config.py"
UNIT_DIR = "/etc/systemd/system"
UNIT_TEMPLATE = "jupyter-notebook@.service"

# The config line that holds the hash, as the template writes it (the fact reads it back).
_HASH_PREFIX = "c.PasswordIdentityProvider.hashed_password = "

# The same argon2 parameters as jupyter_server.auth.passwd(), so hashes are interchangeable.
_ARGON2 = {"memory_cost": 10240, "time_cost": 10, "parallelism": 8}


def unit_name(name: str) -> str:
    return f"jupyter-notebook@{name}.service"


def config_dir(name: str) -> str:
    return f"{CONFIG_ROOT}/{name}"


def dropin_dir(name: str) -> str:
    return f"{UNIT_DIR}/{unit_name(name)}.d"


def venv_dir(spec: NotebookSpec, name: str) -> str:
    return f"{spec.prefix}/{name}"


# -- facts ---------------------------------------------------------------------------------


class NotebookInstances(FactBase[dict[str, "str | None"]]):
    """Notebook instances deployed on the host: name -> the password hash in its config.

    An instance is deployed if it has a config directory or a unit drop-in (a half-removed
    instance is still found). The hash is None when the config is missing or has none.
    """

    default = dict

    def command(self, config_root: str = CONFIG_ROOT, unit_dir: str = UNIT_DIR) -> str:
        # Output lines: "NAME HASH" or "NAME" (no hash). Names are slugs, hashes have no spaces.
        hash_re = _HASH_PREFIX.replace(".", r"\.") + r'"\(.*\)"$'
        return (
            f"for d in {config_root}/*/ {unit_dir}/jupyter-notebook@*.service.d/; do "
            '[ -d "$d" ] || continue; '
            'n=$(basename "$d"); n=${n#jupyter-notebook@}; n=${n%.service.d}; '
            f"h=$(sed -n 's/^{hash_re}/\\1/p' {config_root}/$n/{CONFIG_NAME} 2>/dev/null "
            "| head -n 1); "
            'echo "$n $h"; done'
        )

    def process(self, output: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for line in output:
            name, _, hashed = line.strip().partition(" ")
            if name:
                found[name] = hashed.strip() or found.get(name)
        return found


# -- pure logic (unit-tested) ----------------------------------------------------------------


def hash_password(secret: str) -> str:
    """An argon2 hash in jupyter_server's format: 'argon2:$argon2id$...'."""
    from argon2 import PasswordHasher

    return "argon2:" + PasswordHasher(**_ARGON2).hash(secret)


def hash_matches(hashed: str | None, secret: str) -> bool:
    """True if `hashed` (jupyter_server format) is a hash of `secret`."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    if not hashed or not hashed.startswith("argon2:"):
        return False
    try:
        return PasswordHasher().verify(hashed.removeprefix("argon2:"), secret)
    except (VerificationError, InvalidHashError):
        return False


def password_hash(instance: NotebookInstance, existing: str | None) -> str:
    """The hash to write for `instance`, keeping the host's `existing` one when still right.

    argon2 salts are random, so hashing the same secret again would change the config (and
    restart the server) on every run: an existing hash that verifies is kept.
    """
    if instance.password_hash is not None:
        return instance.password_hash
    assert instance.password is not None  # the spec requires exactly one of the two
    secret = instance.password.get_secret_value()
    if existing is not None and hash_matches(existing, secret):
        return existing
    return hash_password(secret)


def instances_to_remove(spec: NotebookSpec, deployed: dict[str, str | None] | list[str]) -> list[str]:
    """Deployed instances the spec no longer lists, in a stable order."""
    wanted = {instance.name for instance in spec.instances}
    return sorted(name for name in deployed if name not in wanted)


def config_values(
    instance: NotebookInstance, hashed_password: str, tls_min_version: str = "1.2"
) -> dict:
    """What templates/notebook/jupyter_server_config.py.j2 needs for one instance."""
    return {
        "instance_name": instance.name,
        "instance_user": instance.user,
        "ip": instance.ip,
        "port": instance.port,
        "root_dir": instance.notebook_dir,
        "base_url": instance.base_url,
        "allow_remote_access": instance.allow_remote_access,
        "certfile": TLS_CERT,
        "keyfile": TLS_KEY,
        "tls_group": TLS_GROUP,
        "tls_min_version": tls_min_version,
        "hashed_password": hashed_password,
    }


def packages(spec: SiteSpec, instance: NotebookInstance, platform: Platform) -> list[str]:
    """What goes into an instance's venv: pinned JupyterLab (+ Notebook 7), then extras."""
    notebook = spec.notebook
    wanted = [f"jupyterlab=={notebook.jupyterlab_version or platform.pins.jupyterlab}"]
    if notebook.notebook7:
        wanted.append(f"notebook=={platform.pins.notebook}")
    for package in [*spec.python.packages, *instance.packages]:
        if package not in wanted:
            wanted.append(package)
    return wanted


# Run on the host, as the instance user, with the instance's venv, before a restart: load
# the rendered config the way the server will and check what a typo or an incompatible
# jupyter_server would break (types, the identity provider, reading the TLS files).
CHECK_CONFIG = """
import os, ssl, sys
from traitlets.config.loader import PyFileConfigLoader
from jupyter_server.serverapp import ServerApp
from jupyter_server.auth.identity import PasswordIdentityProvider
directory, name = os.path.split(sys.argv[1])
config = PyFileConfigLoader(name, path=directory).load_config()
app = ServerApp(config=config)
provider = PasswordIdentityProvider(config=config)
assert provider.hashed_password.startswith("argon2:"), "no argon2 password hash"
assert not provider.token, "token login must be disabled"
ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(app.certfile, app.keyfile)
print(f"config ok: {app.ip}:{app.port} root_dir={app.root_dir}")
"""


def check_command(spec: NotebookSpec, instance: NotebookInstance, path: str = "{path}") -> str:
    """Shell command loading the config at `path` as the instance user, with its venv.

    By default `path` is left as `{path}`, for staged_file to check the staged copy before
    it replaces the live config: a rejected config never reaches the running server.
    """
    python = f"{venv_dir(spec, instance.name)}/bin/python"
    check = shlex.join(["runuser", "-u", instance.user, "--", python, "-c", CHECK_CONFIG])
    # cd /: the user may not read root's working directory.
    return f"cd / && {check} {path if path == '{path}' else shlex.quote(path)}"


# -- the deploy ------------------------------------------------------------------------------


@deploy("Deploy the notebook servers")
def deploy_notebook(spec: SiteSpec, platform: Platform) -> None:
    notebook = spec.notebook
    deployed = host.get_fact(NotebookInstances)
    users = host.get_fact(Users)
    env = download_env(spec.network, platform)

    for name in instances_to_remove(notebook, deployed):
        _remove_instance(notebook, name)

    server.group(name=f"Create the group {TLS_GROUP} (may read the TLS key)", group=TLS_GROUP,
                 system=True)

    unit = files.template(
        name=f"Upload {UNIT_DIR}/{UNIT_TEMPLATE}",
        src=template("notebook", UNIT_TEMPLATE),
        dest=f"{UNIT_DIR}/{UNIT_TEMPLATE}",
        mode="644",
        prefix=notebook.prefix,
        config_root=CONFIG_ROOT,
        network_env=NETWORK_ENV,
        systemd=platform.systemd or 0,
    )
    files.directory(name=f"Create {CONFIG_ROOT}", path=CONFIG_ROOT, mode="755")

    made_users: set[str] = set()
    for instance in notebook.instances:
        home = (users.get(instance.user) or {}).get("home") or f"/home/{instance.user}"
        if instance.user not in made_users:
            made_users.add(instance.user)
            _user(instance, home, exists=instance.user in users)
        _instance(spec, instance, platform, home, deployed.get(instance.name), env, unit)


def _user(instance: NotebookInstance, home: str, exists: bool) -> None:
    # An existing account (a researcher's own login) keeps its home and shell; it only joins
    # the TLS group. A new one is a system user with a shell for Jupyter's terminals.
    server.user(
        name=f"Create the user {instance.user} and add it to {TLS_GROUP}",
        user=instance.user,
        system=not exists,
        home=None if exists else home,
        shell=None if exists else "/bin/bash",
        create_home=not exists,
        groups=[TLS_GROUP],
        append=True,
    )


def _instance(
    spec: SiteSpec,
    instance: NotebookInstance,
    platform: Platform,
    home: str,
    existing_hash: str | None,
    env: dict[str, str],
    unit,
) -> None:
    notebook = spec.notebook
    name = instance.name
    if any(c.isspace() for c in instance.notebook_dir + home):
        raise DeployError(
            f"notebook.instances.{name}: {instance.notebook_dir} or {home} contains a space, "
            "which systemd's ReadWritePaths= cannot express here"
        )
    files.directory(
        name=f"Create the notebook directory {instance.notebook_dir} of {name}",
        path=instance.notebook_dir,
        user=instance.user,
        mode="750",
    )
    venv_changed = python_venv(
        f"notebook {name}",
        venv_dir(notebook, name),
        packages(spec, instance, platform),
        env,
    )
    directory = config_dir(name)
    files.directory(
        name=f"Create {directory}", path=directory, user=instance.user, mode="700"
    )
    config = staged_file(
        name=f"Upload {directory}/{CONFIG_NAME} (mode 0600, checked first: it holds the "
        "password hash, never shown)",
        dest=f"{directory}/{CONFIG_NAME}",
        content=SecretStr(render(
            "notebook", CONFIG_NAME,
            **config_values(instance, password_hash(instance, existing_hash),
                             spec.tls.min_version),
        )),
        user=instance.user,
        mode="600",
        check=check_command(notebook, instance),
    )
    dropin = files.template(
        name=f"Upload {dropin_dir(name)}/instance.conf (user {instance.user}, writable paths)",
        src=template("notebook", "instance.conf"),
        dest=f"{dropin_dir(name)}/instance.conf",
        mode="644",
        instance_name=name,
        run_as=instance.user,
        home=home,
        root_dir=instance.notebook_dir,
        systemd=platform.systemd or 0,
    )
    changed = [config.will_change, dropin.will_change, unit.will_change, venv_changed]
    # A new venv (an upgraded jupyter_server) must still load the config in place.
    server.shell(
        name=f"Check the config of {name} against its new venv or unit before restarting",
        commands=[check_command(notebook, instance, f"{directory}/{CONFIG_NAME}")],
        _if=lambda: not config.will_change and any(changed),
    )
    service(
        unit_name(name),
        changed=changed,
        unit_changed=unit.will_change or dropin.will_change,
    )


def _remove_instance(notebook: NotebookSpec, name: str) -> None:
    """Stop, disable and delete an instance; its user and notebook directory stay."""
    systemd.service(
        name=f"Stop and disable {unit_name(name)} (no longer in the spec)",
        service=unit_name(name),
        running=False,
        enabled=False,
    )
    for path, what in (
        (dropin_dir(name), "unit drop-in"),
        (config_dir(name), "config"),
        (venv_dir(notebook, name), "venv"),
    ):
        files.directory(name=f"Remove the {what} of {name}: {path}", path=path, present=False)
    systemd.daemon_reload(name="Reload systemd units")
