"""System accounts and groups the site needs, before anything refers to them.

The hub's accounts (with their login passwords when the hub logs in with system passwords),
the proxy's service user, and each notebook instance's user. An account that already
exists (a researcher's own login) keeps its home and shell; it only joins its groups.
"""

from __future__ import annotations

from .. import paths
from ..items import Group, Item, Step, User
from ..ops.accounts import login_password
from ..site import Site

NAME = "users"
TITLE = "System accounts"


def wanted(spec) -> bool:
    return True


def _sets_passwords(spec) -> bool:
    return spec.mode == "hub" and spec.hub.auth.uses_system_passwords


def reads(spec) -> dict:
    names = [a.name for a in spec.users.accounts]
    names += [i.user for i in spec.notebook.instances] if spec.mode == "notebook" else []
    shadow = [("/etc/shadow", f"{a.name}:") for a in spec.users.accounts] if _sets_passwords(
        spec) else []
    return {"accounts": names, "lines": shadow}


def items(site: Site) -> list[Item]:
    spec = site.spec
    out: list[Item] = [Group(g, system=False) for g in
                       sorted({g for a in spec.users.accounts for g in a.groups})]
    for account in spec.users.accounts:
        out.append(User(account.name, system=False, home=f"/home/{account.name}",
                        shell="/bin/bash", groups=tuple(account.groups), create_home=True,
                        manage_login=True, comment="pyinfra-jupyter account"))
        password = site.passwords.get(account.name)
        if password is not None and _sets_passwords(spec):
            current = site.line("/etc/shadow", f"{account.name}:")
            out.append(Step(login_password,
                            f"Set the login password of {account.name} (from the spec, not shown)",
                            {"user": account.name, "password": password,
                             "current_hash": current.split(":")[1] if current else None},
                            key_name=f"password:{account.name}"))
    if spec.mode == "hub":
        out.append(User(paths.PROXY_USER, home="/nonexistent",
                        comment="configurable-http-proxy (pyinfra-jupyter)"))
    else:
        accounts = {a.name for a in spec.users.accounts}
        for name in dict.fromkeys(i.user for i in spec.notebook.instances):
            if name in accounts:
                continue
            # A new instance user is a system user with a shell for Jupyter's terminals; an
            # existing login keeps its own home and shell.
            out.append(User(name, home=f"/home/{name}", shell="/bin/bash", create_home=True,
                            comment="Jupyter notebook server (pyinfra-jupyter)"))
    return out
