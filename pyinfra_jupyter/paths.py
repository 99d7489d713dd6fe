"""The host's shared contracts: paths, unit names, users and groups, named once.

What one component of the deploy (operations/) makes and another uses, and what the tools
that reach a deployed host (backup and restore, the z2jh export, verify) read there. Pure
constants: no pyinfra, no file system. operations/paths.py re-exports it for the
components, so the dependency points one way (operations -> pyinfra_jupyter).
"""

from __future__ import annotations

ETC = "/etc/pyinfra-jupyter"
STATE = "/var/lib/pyinfra-jupyter"
OPT = "/opt/pyinfra-jupyter"
UNIT_DIR = "/etc/systemd/system"
# Configs of the hub and of notebook servers (the spec's: rendered by every deploy).
HUB_ETC = "/etc/jupyterhub"
NOTEBOOK_ETC = "/etc/jupyter"

# network: proxy settings and CA bundle for commands that download, as KEY='value' lines
# (0600 root: proxy URLs may carry credentials). Sourced by download commands, read by
# systemd (EnvironmentFile=) for services that download at run time.
NETWORK_ENV = f"{ETC}/network.env"
# The same for services that run users' code (notebook servers): proxy settings only when the
# proxy URLs carry no credentials (users could read them from their environment), 0644.
NETWORK_ENV_USERS = f"{ETC}/network-users.env"

# tls: the live pair (root only) and one copy per consumer, owned by that consumer's user.
TLS_DIR = f"{ETC}/tls"
TLS_CERT = f"{TLS_DIR}/fullchain.pem"
TLS_KEY = f"{TLS_DIR}/privkey.pem"


def tls_copy(consumer: str) -> tuple[str, str]:
    """(certificate chain, key) kept for one consumer (a service's user)."""
    return f"{TLS_DIR}/for/{consumer}/fullchain.pem", f"{TLS_DIR}/for/{consumer}/privkey.pem"


def tls_consumers(spec) -> list[str]:
    """The users of the services that serve the certificate: each gets its own copy."""
    if spec.mode == "hub":
        return [PROXY_USER]
    return list(dict.fromkeys(i.user for i in spec.notebook.instances))


# The change key of the TLS component's "the certificate is new" step: services that serve
# the certificate restart (and are waited for) when a deploy made a new one — not when only
# the list of consumers or the agent changed. The renewal timer restarts them itself (the
# agent's post_renew).
TLS_ENSURE = "step:tls-new-certificate"

# python (provider "source"): each CPython the deploy builds, in its own versioned prefix.
PYTHON_PREFIXES = f"{OPT}/python"

# The host agent (TLS issuance and renewal, DDNS updates): one venv, one zipapp.
AGENT_HOME = f"{OPT}/agent"
AGENT_PYTHON = f"{AGENT_HOME}/bin/python"
AGENT_ZIPAPP = f"{AGENT_HOME}/agent.pyz"

# proxy: CONFIGPROXY_AUTH_TOKEN=..., made once on the host (0600 root), read by the proxy's
# and the hub's units.
PROXY_TOKEN_ENV = f"{ETC}/proxy-auth.env"
# The change key of the step that makes it: the proxy and the hub restart when it is new.
PROXY_TOKEN_STEP = "step:proxy-token"
PROXY_USER = "jupyter-proxy"
PROXY_UNIT = "configurable-http-proxy.service"

HUB_UNIT = "jupyterhub.service"


def hub_database(state_dir: str) -> str:
    """The hub's sqlite database, in `hub.state_dir`."""
    return f"{state_dir}/jupyterhub.sqlite"


def hub_cookie_secret(state_dir: str) -> str:
    """The hub's cookie secret (hex, written by JupyterHub on first start), in `hub.state_dir`."""
    return f"{state_dir}/jupyterhub_cookie_secret"

NOTEBOOK_UNIT_TEMPLATE = "jupyter-notebook@.service"


def notebook_unit(name: str) -> str:
    return f"jupyter-notebook@{name}.service"


# Unit patterns of the services that serve the certificate, per mode: they are restarted
# when it is renewed (`systemctl try-restart` skips a pattern matching no loaded unit).
PUBLIC_UNITS = {"hub": (f"{PROXY_UNIT.removesuffix('.service')}*.service",),
                "notebook": ("jupyter-notebook@*.service",)}

NOTES = f"{ETC}/NOTES.md"
# What `verify` checks, as the last deploy left it (operations/plan.py; no secrets in it).
VERIFY_PLAN = f"{ETC}/verify.json"

# firewall: the component's work files, and the rollback guard's copy of the rules it replaced
# (restored by a timer unless the deploy confirms that SSH still answers).
FIREWALL_DIR = f"{STATE}/firewall"
FIREWALL_PREVIOUS = f"{FIREWALL_DIR}/previous"

# DDNS: the updater's config and secret (the agent's, root only).
DDNS_ETC = f"{ETC}/ddns"

# Units of the host agent: certificate renewal (timer + oneshot) and the DDNS updater.
TLS_RENEW = "pyinfra-jupyter-tls-renew"
DDNS_UNIT = "pyinfra-jupyter-ddns"
# What the DDNS updater last saw (no secret in it): read by the notes (CGNAT) and verify.
DDNS_STATE = f"{STATE}/ddns/state.json"
