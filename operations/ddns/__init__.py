"""Dynamic DNS: keep the site's name pointing at this host's public address.

The host agent (operations/agent/ddns.py) does the work from a systemd timer, as its own
system user, the only account that can read the provider token. This deploy renders its
config from the spec, installs the token, the units and the state directory, and runs one
update when any of them changed, so a wrong token fails the deploy with the provider's own
answer (never the token). With `ddns.provider = none` all of it is removed again.
"""

from __future__ import annotations

import json

from pydantic import SecretStr

from pyinfra_jupyter.spec import SiteSpec

from .. import paths
from ..items import Absent, Directory, File, Item, Service, Step, User
from ..ops.converge import command
from ..ops.render import render
from ..site import Site

NAME = "ddns"
TITLE = "Dynamic DNS"

USER = "pj-ddns"
DIR = paths.DDNS_ETC
CONFIG = f"{DIR}/ddns.json"
TOKEN = f"{DIR}/token"
STATE_DIR = f"{paths.STATE}/ddns"
STATE = paths.DDNS_STATE
UNIT = paths.DDNS_UNIT
UNIT_FILES = (f"{paths.UNIT_DIR}/{UNIT}.service", f"{paths.UNIT_DIR}/{UNIT}.timer")


def wanted(spec: SiteSpec) -> bool:
    # Always: a site that drops DDNS gets the updater removed.
    return True


def reads(spec: SiteSpec) -> dict:
    # Whether the updater's account exists (a site that drops DDNS removes it).
    return {"accounts": [USER]}


def agent_config(spec: SiteSpec) -> dict:
    """The updater's JSON config (no secret: the token lives in its own 0600 file)."""
    ddns = spec.ddns
    config = {**ddns.agent_settings(), "state_file": STATE}
    if ddns.secret() is not None:
        config["token_file"] = TOKEN
    if spec.router.wan_address:
        config["router_wan"] = str(spec.router.wan_address)
    return config


def jitter_seconds(minutes: int) -> int:
    """A fifth of the interval, at most five minutes."""
    return min(300, max(10, minutes * 60 // 5))


def render_units(spec: SiteSpec, site: Site) -> dict[str, str]:
    minutes = spec.ddns.interval_minutes
    service, timer = UNIT_FILES
    return {
        service: render("ddns", f"{UNIT}.service", user=USER, python=paths.AGENT_PYTHON,
                        agent=paths.AGENT_ZIPAPP, config=CONFIG, network_env=paths.NETWORK_ENV,
                        state_dir=STATE_DIR, caps=site.platform.systemd,
                        names=", ".join(spec.ddns.names())),
        timer: render("ddns", f"{UNIT}.timer", minutes=minutes, jitter=jitter_seconds(minutes)),
    }


def items(site: Site) -> list[Item]:
    spec = site.spec
    ddns = spec.ddns
    if not ddns.enabled:
        # Removed (a site that dropped DDNS, or never had it): nothing of it is left, the
        # timer stopped first, then its units, settings, token, state and user.
        out: list[Item] = [Service(f"{UNIT}.timer", enabled=False, running=False),
                           *[Absent(path) for path in UNIT_FILES],
                           Absent(DIR), Absent(STATE_DIR)]
        if site.account(USER):
            out.append(Step(command, f"Remove the DDNS updater's user {USER}",
                            {"command": f"userdel {USER} && (groupdel {USER} 2>/dev/null; true)",
                             "force": True}, key_name="ddns-user-removed"))
        return out
    out: list[Item] = [
        User(USER, comment="pyinfra-jupyter DDNS updater"),
        Directory(DIR, group=USER, mode="750"),
        Directory(STATE_DIR, user=USER, group=USER, mode="755"),
    ]
    inputs = [f"file:{CONFIG}"]
    secret = ddns.secret()
    if secret is not None:
        out.append(File(TOKEN, SecretStr(secret.get_secret_value() + "\n"), user=USER,
                        group=USER, mode="600", label=f"Upload the provider token {TOKEN}"))
        inputs.append(f"file:{TOKEN}")
    else:
        out.append(Absent(TOKEN))
    out.append(File(CONFIG, json.dumps(agent_config(spec), indent=2, sort_keys=True) + "\n",
                    group=USER, mode="640"))
    units = render_units(spec, site)
    out += [File(path, text) for path, text in units.items()]
    unit_keys = tuple(f"file:{path}" for path in units)
    out.append(Service(f"{UNIT}.timer", reload_on=unit_keys, restart_on=unit_keys))
    # One update now when anything it reads changed: a refused token fails the deploy here,
    # with the provider's answer from the journal (the agent never logs the token).
    out.append(Step(
        command, f"Update {', '.join(ddns.names())} now (DDNS settings changed)",
        {"command": f"systemctl start {UNIT}.service || {{ journalctl -u {UNIT}.service "
                    "-n 3 -o cat --no-pager >&2; exit 1; }"},
        key_name="ddns-update",
        restart_on=(*inputs, *unit_keys, f"venv:{paths.AGENT_HOME}", f"file:{paths.AGENT_ZIPAPP}"),
        timeout=spec.network.timeout,
    ))
    return out
