"""The DDNS component's plan: what reaches the host, with which owner and mode, and what a
site that drops DDNS gets removed. (The updater itself: tests/unit/agent/test_ddns.py; on a
real host: tests/lab/test_ddns.py.)"""

from __future__ import annotations

import json
import subprocess

import pytest
from pydantic import SecretStr

from operations import ddns as ddns_ops
from operations.items import Absent, File, Service, Step, User
from tests.support import make_site

USERS = {"accounts": [{"name": "alice", "admin": True}]}
DUCK = {"provider": "duckdns", "domain": "ourfamily.duckdns.org", "token": "TOKEN-123",
        "interval_minutes": 10}


def _items(ddns: dict, **extra):
    site = make_site({"users": USERS, "ddns": ddns, **extra})
    return site, {getattr(i, "path", None) or getattr(i, "unit", None) or i.key: i
                  for i in ddns_ops.items(site)}


def test_the_token_is_readable_by_the_updater_alone_and_never_in_its_config():
    _, items = _items(DUCK, router={"wan_address": "198.51.100.7"})
    token = items[ddns_ops.TOKEN]
    assert isinstance(token, File) and isinstance(token.content, SecretStr)
    assert (token.user, token.group, token.mode) == ("pj-ddns", "pj-ddns", "600")
    config = json.loads(items[ddns_ops.CONFIG].content)
    assert "TOKEN-123" not in items[ddns_ops.CONFIG].content
    assert {k: config[k] for k in ("provider", "names", "ipv6", "state_file", "token_file",
                                   "router_wan")} == {
        "provider": "duckdns", "names": ["ourfamily.duckdns.org"], "ipv6": False,
        "state_file": "/var/lib/pyinfra-jupyter/ddns/state.json",
        "token_file": "/etc/pyinfra-jupyter/ddns/token", "router_wan": "198.51.100.7"}
    assert any(isinstance(i, User) and i.name == "pj-ddns" for i in items.values())


def test_units_run_as_the_updater_user_on_the_spec_interval():
    site, items = _items(DUCK)
    service = items["/etc/systemd/system/pyinfra-jupyter-ddns.service"].content
    timer = items["/etc/systemd/system/pyinfra-jupyter-ddns.timer"].content
    assert "User=pj-ddns" in service and "NoNewPrivileges=yes" in service
    assert "ddns --config /etc/pyinfra-jupyter/ddns/ddns.json update" in service
    assert "OnUnitActiveSec=10min" in timer and "RandomizedDelaySec=120s" in timer
    update = items["step:ddns-update"]
    assert isinstance(update, Step) and "file:/etc/pyinfra-jupyter/ddns/token" in update.restart_on


@pytest.mark.parametrize("minutes, jitter", [(1, 12), (5, 60), (60, 300), (1440, 300)])
def test_jitter_is_a_fifth_of_the_interval_at_most_five_minutes(minutes, jitter):
    assert ddns_ops.jitter_seconds(minutes) == jitter


def test_units_pass_systemd_analyze_verify(tmp_path):
    _, items = _items(DUCK)
    for path in ddns_ops.UNIT_FILES:
        (tmp_path / path.rsplit("/", 1)[1]).write_text(items[path].content)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no",
         str(tmp_path / "pyinfra-jupyter-ddns.service")],
        capture_output=True, text=True)
    # The agent's python does not exist on this machine: that is the only complaint allowed.
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "/opt/pyinfra-jupyter/agent/bin/python" not in line
                and "Failed to prepare" not in line]
    assert problems == []


def _section(unit: str, name: str) -> list[str]:
    """The directive lines of section `name` in a unit file's text."""
    lines, current = [], None
    for line in unit.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif current == name and line and not line.startswith("#"):
            lines.append(line)
    return lines


@pytest.mark.parametrize("release", ["centos7", "ubuntu1604", "ubuntu1804", "debian12"])
def test_the_timer_oneshots_have_no_start_rate_limit(release):
    """A deploy, the unit's timer and a sysadmin may start the updater or the renewal more
    than 5 times in 10 s (the lab's DDNS test did, and systemd refused the 6th start with
    start-limit-hit): no rate limit, in the section and spelling the host's systemd reads
    (StartLimitIntervalSec= in [Unit] since systemd 230, StartLimitInterval= in [Service])."""
    from operations import tls as tls_ops

    site = make_site({"users": USERS, "ddns": DUCK}, release=release)
    units = {**ddns_ops.render_units(site.spec, site), **tls_ops.render_units(site.spec, site)}
    old = site.platform.systemd.version < 230
    for path in (ddns_ops.UNIT_FILES[0], "/etc/systemd/system/pyinfra-jupyter-tls-renew.service"):
        unit, service = _section(units[path], "Unit"), _section(units[path], "Service")
        if old:
            assert "StartLimitInterval=0" in service and not any("StartLimit" in x for x in unit)
        else:
            assert "StartLimitIntervalSec=0" in unit and not any("StartLimit" in x for x in service)


def test_no_ddns_removes_the_updater_and_leaves_nothing():
    _, items = _items({"provider": "none"})
    timer = items["pyinfra-jupyter-ddns.timer"]
    assert isinstance(timer, Service) and not timer.enabled and not timer.running
    assert {p for p, i in items.items() if isinstance(i, Absent)} == {
        *ddns_ops.UNIT_FILES, "/etc/pyinfra-jupyter/ddns", "/var/lib/pyinfra-jupyter/ddns"}
    assert "step:ddns-user-removed" not in items  # no such account on this host
    # A host where the updater ran: its account goes too (after its timer and files).
    site = make_site({"users": USERS, "ddns": {"provider": "none"}},
                     facts={"passwd": {"pj-ddns": {"uid": 998, "gid": 998, "home": "/",
                                                   "shell": "/usr/sbin/nologin"}}})
    last = ddns_ops.items(site)[-1]
    assert last.key == "step:ddns-user-removed"
    assert last.kwargs["command"].startswith("userdel pj-ddns && ")


def test_a_provider_variant_added_in_test_code_only_is_deployed_generically():
    # The components ask the variant (names, secret, agent settings); nothing else knows it.
    from typing import Literal

    from pyinfra_jupyter.spec.ddns import _Updater

    class ExampleDdns(_Updater):
        provider: Literal["example"] = "example"
        hostname: str
        key: SecretStr

        def names(self) -> list[str]:
            return [self.hostname]

        def secret(self) -> SecretStr:
            return self.key

        def agent_settings(self) -> dict:
            return {**self._common(), "url_template": "https://dyn.example/{hostname}?ip={ip}"}

    plain = make_site({"users": USERS})
    site = make_site({}, spec=plain.spec.model_copy(update={"ddns": ExampleDdns(
        hostname="home.example.org", key=SecretStr("EXAMPLE-KEY"), interval_minutes=15)}))
    items = {getattr(i, "path", None) or getattr(i, "unit", None) or i.key: i
             for i in ddns_ops.items(site)}
    config = json.loads(items[ddns_ops.CONFIG].content)
    assert config["provider"] == "example" and config["names"] == ["home.example.org"]
    assert config["url_template"].startswith("https://dyn.example/")
    assert items[ddns_ops.TOKEN].content.get_secret_value() == "EXAMPLE-KEY\n"
    assert "OnUnitActiveSec=15min" in items["/etc/systemd/system/pyinfra-jupyter-ddns.timer"].content
    assert "home.example.org" in items["step:ddns-update"].label
