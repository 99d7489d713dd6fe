"""The default site: a JupyterHub over HTTPS (self-signed), PAM logins, one admin.

Every inventory's hosts get these keys unless a group file (group_data/<inventory name>.py)
or the host itself sets the same key — pyinfra merges group data one top-level key at a
time, so each component is one key. `pyinfra-jupyter schema --markdown` lists every option.
"""

mode = "hub"

tls = {"type": "self-signed"}

users = {
    "accounts": [
        {
            "name": "admin",
            "admin": True,
            # Made on first deploy (random, mode 0600) on the machine running pyinfra.
            "password_file": "~/.config/pyinfra-jupyter/admin.password",
            "generate_password": True,
        }
    ],
}

hub = {
    "auth": {"type": "pam"},
    "idle_culler": {"timeout": 3600},
}
