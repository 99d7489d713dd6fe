"""Single-user Jupyter servers (mode "notebook"): one hardened systemd unit per named instance.

Each instance of `notebook.instances` runs as its own user (never root) from a venv at
`{prefix}/{name}` with the pinned JupyterLab, reads `jupyter_server_config.py` from
`/etc/jupyter/instances/{name}/` and runs as `jupyter-notebook@{name}.service`.

Root never works in a place the instance's user can change: the config directory is
root's (the config itself, which holds the password hash, is readable by the user only),
and the notebook directory — the user's space — is made by the user. Instances deployed
earlier but no longer in the spec are stopped, disabled and removed; their users and
notebooks stay.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import SecretStr
from pyinfra.api.exceptions import DeployError

from pyinfra_jupyter.spec import SiteSpec
from pyinfra_jupyter.spec.notebook import NotebookInstance, NotebookSpec

from .. import paths
from ..items import Absent, Directory, File, Item, Service, Step, Venv
from ..ops.converge import command
from ..ops.render import render
from ..platform import Platform
from ..site import Site

NAME = "notebook"
TITLE = "Deploy the notebook servers"

CONFIG_ROOT = f"{paths.NOTEBOOK_ETC}/instances"
CONFIG_NAME = "jupyter_server_config.py"
CHECK_SCRIPT = f"{CONFIG_ROOT}/check_config.py"
CHECK_SOURCE = Path(__file__).with_name("check_config.py")
UNIT_TEMPLATE_FILE = f"{paths.UNIT_DIR}/{paths.NOTEBOOK_UNIT_TEMPLATE}"

# The config line that holds the hash, as the template writes it (read back to keep it).
HASH_PREFIX = "c.PasswordIdentityProvider.hashed_password = "

# The same argon2 parameters as jupyter_server.auth.passwd(), so hashes are interchangeable.
_ARGON2 = {"memory_cost": 10240, "time_cost": 10, "parallelism": 8}


def wanted(spec: SiteSpec) -> bool:
    return spec.mode == "notebook"


def config_dir(name: str) -> str:
    return f"{CONFIG_ROOT}/{name}"


def config_path(name: str) -> str:
    return f"{config_dir(name)}/{CONFIG_NAME}"


def dropin_dir(name: str) -> str:
    return f"{paths.UNIT_DIR}/{paths.notebook_unit(name)}.d"


def venv_dir(spec: NotebookSpec, name: str) -> str:
    return f"{spec.prefix}/{name}"


def reads(spec: SiteSpec) -> dict:
    return {
        "lines": [(config_path(i.name), HASH_PREFIX) for i in spec.notebook.instances],
        # Instances deployed earlier: a config directory or a unit drop-in (a half-removed
        # instance is still found).
        "globs": [f"{CONFIG_ROOT}/*/", f"{paths.UNIT_DIR}/jupyter-notebook@*.service.d"],
    }


def deployed(site: Site) -> list[str]:
    names = {Path(p.rstrip("/")).name for p in site.glob(f"{CONFIG_ROOT}/*/")}
    names |= {Path(p).name.removeprefix("jupyter-notebook@").removesuffix(".service.d")
              for p in site.glob(f"{paths.UNIT_DIR}/jupyter-notebook@*.service.d")}
    return sorted(names)


# -- password hashes ----------------------------------------------------------------------

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


def existing_hash(line: str | None) -> str | None:
    """The hash in a config line as the template writes it, or None."""
    if not line or not line.startswith(HASH_PREFIX):
        return None
    value = line[len(HASH_PREFIX):].strip()
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else None


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


def instances_to_remove(spec: NotebookSpec, deployed_names) -> list[str]:
    """Deployed instances the spec no longer lists, in a stable order."""
    wanted_names = {instance.name for instance in spec.instances}
    return sorted(name for name in deployed_names if name not in wanted_names)


# -- what is rendered ----------------------------------------------------------------------

def config_values(instance: NotebookInstance, hashed_password: str,
                  tls_min_version: str = "1.2") -> dict:
    """What templates/notebook/jupyter_server_config.py.j2 needs for one instance."""
    cert, key = paths.tls_copy(instance.user)
    return {
        "instance_name": instance.name,
        "instance_user": instance.user,
        "ip": instance.ip,
        "port": instance.port,
        "root_dir": instance.notebook_dir,
        "base_url": instance.base_url,
        "allow_remote_access": instance.allow_remote_access,
        "certfile": cert,
        "keyfile": key,
        "tls_min_version": tls_min_version,
        "hashed_password": hashed_password,
    }


def packages(spec: SiteSpec, instance: NotebookInstance, platform: Platform) -> list[str]:
    """What goes into an instance's venv: pinned JupyterLab (+ Notebook 7), then extras."""
    notebook = spec.notebook
    wanted_pkgs = [f"jupyterlab=={notebook.jupyterlab_version or platform.pin('jupyterlab')}"]
    if notebook.notebook7:
        wanted_pkgs.append(f"notebook=={platform.pin('notebook')}")
    for package in [*spec.python.packages, *instance.packages]:
        if package not in wanted_pkgs:
            wanted_pkgs.append(package)
    return wanted_pkgs


def check_command(spec: NotebookSpec, instance: NotebookInstance, path: str = "{path}") -> str:
    """Load the config at `path` as the instance user, with its venv.

    By default `path` is left as `{path}`, for the staged copy to be checked before it
    replaces the live config: a rejected config never reaches the running server.
    """
    python = f"{venv_dir(spec, instance.name)}/bin/python"
    check = shlex.join(["runuser", "-u", instance.user, "--", python, CHECK_SCRIPT])
    # cd /: the user may not read root's working directory.
    return f"cd / && {check} {path if path == '{path}' else shlex.quote(path)}"


def render_unit(spec: SiteSpec, platform: Platform) -> str:
    return render("notebook", paths.NOTEBOOK_UNIT_TEMPLATE, prefix=spec.notebook.prefix,
                  config_root=CONFIG_ROOT, network_env=paths.NETWORK_ENV_USERS,
                  caps=platform.systemd)


def render_dropin(instance: NotebookInstance, home: str, platform: Platform) -> str:
    return render("notebook", "instance.conf", instance_name=instance.name,
                  run_as=instance.user, home=home, root_dir=instance.notebook_dir,
                  caps=platform.systemd)


# -- the items -------------------------------------------------------------------------------

def _removal(spec: SiteSpec, name: str) -> list[Item]:
    """Stop, disable and delete an instance; its user and notebook directory stay."""
    unit = paths.notebook_unit(name)
    return [
        Service(unit, enabled=False, running=False),
        Absent(dropin_dir(name), label=f"Remove the unit drop-in of {name} (no longer in the spec)"),
        Absent(config_dir(name), label=f"Remove the config of {name}"),
        Absent(venv_dir(spec.notebook, name), label=f"Remove the venv of {name}"),
    ]


def _instance(site: Site, instance: NotebookInstance, unit_key: str) -> list[Item]:
    spec, platform = site.spec, site.platform
    name = instance.name
    account = site.account(instance.user)
    home = (account or {}).get("home") or f"/home/{instance.user}"
    hashed = password_hash(instance, existing_hash(site.line(config_path(name), HASH_PREFIX)))
    config = render("notebook", CONFIG_NAME,
                    **config_values(instance, hashed, spec.tls.min_version))
    venv = venv_dir(spec.notebook, name)
    dropin = f"{dropin_dir(name)}/instance.conf"
    return [
        *_notebook_dir(instance, home),
        Venv(venv, site.python_bin, site.python_version, tuple(packages(spec, instance, platform)),
             f"notebook {name}", timeout=spec.network.timeout),
        Directory(config_dir(name), mode="755"),
        File(config_path(name), SecretStr(config), user=instance.user, group="root",
             mode="400", check=check_command(spec.notebook, instance),
             label=f"Upload {config_path(name)} (checked first; holds the password hash, "
             "never shown)"),
        Directory(dropin_dir(name), mode="755"),
        File(dropin, render_dropin(instance, home, platform),
             label=f"Upload {dropin} (user {instance.user}, writable paths)"),
        Service(
            paths.notebook_unit(name),
            restart_on=(f"file:{config_path(name)}", f"file:{dropin}", unit_key,
                        f"venv:{venv}", f"file:{CHECK_SCRIPT}", paths.TLS_ENSURE),
            reload_on=(f"file:{dropin}", unit_key),
            # A new venv (an upgraded jupyter_server) must still load the config in place.
            check=check_command(spec.notebook, instance, config_path(name)),
            port=instance.port,
        ),
    ]


def _notebook_dir(instance: NotebookInstance, home: str) -> list[Item]:
    """The notebook directory. In the user's home it is the user's to make (root never works
    where the user can change the path); elsewhere root makes the (root-owned) way to it and
    hands the last directory to the user."""
    path = instance.notebook_dir
    label = f"Create the notebook directory {path} of {instance.name}"
    if path.startswith(home.rstrip("/") + "/"):
        return [Directory(path, mode="750", as_user=instance.user, label=f"{label} (as {instance.user})")]
    for tree in ("/home", "/root", "/tmp", "/var/tmp"):
        if path.startswith(tree + "/"):
            raise DeployError(
                f"notebook.instances.{instance.name}.root_dir: {path} is in another user's "
                f"space ({tree}); put it under {home} or outside users' homes (e.g. /srv/...)"
            )
    parent = path.rsplit("/", 1)[0]
    parents = [Directory(parent, mode="755")] if parent.count("/") > 1 else []
    return [*parents, Directory(path, user=instance.user, group="root", mode="750", label=label)]


def items(site: Site) -> list[Item]:
    spec = site.spec
    out: list[Item] = []
    removed = instances_to_remove(spec.notebook, deployed(site))
    for name in removed:
        out += _removal(spec, name)
    if removed:
        out.append(Step(command, "Reload systemd units (instances removed)",
                        {"command": "systemctl daemon-reload"},
                        restart_on=tuple(f"absent:{dropin_dir(n)}" for n in removed)))
    unit = File(UNIT_TEMPLATE_FILE, render_unit(spec, site.platform))
    out += [unit, Directory(CONFIG_ROOT, mode="755"), File(CHECK_SCRIPT, CHECK_SOURCE.read_text())]
    for instance in spec.notebook.instances:
        out += _instance(site, instance, unit.key)
    return out
