"""The notes a person follows outside the host: router forwards, DNS, checks, CGNAT.

Golden files: `tests/unit/golden/notes-*.md` are the exact notes of two example sites; set
PJ_UPDATE_GOLDEN=1 to rewrite them after an intended change (and read the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from operations.notes import items, site_notes
from pyinfra_jupyter.spec import build_spec
from tests.support import make_site

GOLDEN = Path(__file__).with_name("golden")
ADMIN = {"accounts": [{"name": "alice", "admin": True}]}

HOME_PI = {
    "mode": "hub",
    "ddns": {"provider": "duckdns", "domain": "ourfamily.duckdns.org", "token": "SECRET-TOKEN"},
    "tls": {"type": "acme", "email": "parent@example.org", "domains": ["ourfamily.duckdns.org"],
            "challenge": "dns-01"},
    "router": {"behind_nat": True, "lan_address": "192.168.1.50"},
    "users": ADMIN,
}
VPS = {
    "mode": "hub",
    "tls": {"type": "acme", "email": "lecturer@example.org", "domains": ["hub.example.org"]},
    "firewall": {"ssh_sources": ["203.0.113.0/24"]},
    "users": ADMIN,
}
LAN = {"hostname": "pi", "lan_interface": "eth0", "lan_address": "192.168.1.50",
       "lan_mac": "dc:a6:32:01:02:03"}


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PJ_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed: PJ_UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize(("name", "data", "facts"), [
    ("notes-home-pi.md", HOME_PI, LAN),
    ("notes-vps.md", VPS, {"hostname": "vps1"}),
])
def test_golden_notes(name, data, facts):
    site = make_site(data, facts=facts, release="raspbian12")
    text = site_notes(site.spec, site)
    _golden(name, text)
    assert "SECRET-TOKEN" not in text


def test_home_pi_says_what_to_forward_and_what_never():
    site = make_site(HOME_PI, facts=LAN)
    text = site_notes(site.spec, site)
    assert "| 443 | tcp | 192.168.1.50 | 443 | HTTPS (JupyterHub) |" in text
    assert "| 80 |" not in text  # DNS-01: port 80 need not be forwarded
    assert "MAC dc:a6:32:01:02:03" in text
    assert "Never forward: 49152-65535" in text and "8081" in text and "22 (SSH" in text
    assert "dig +short ourfamily.duckdns.org" in text


def test_http01_forwards_port_80_and_notebook_ports():
    spec = {"mode": "notebook", "router": {"behind_nat": True},
            "tls": {"type": "acme", "email": "a@example.org", "domains": ["nb.example.org"]},
            "notebook": {"instances": [{"password": "pw", "port": 8100}]}}
    text = site_notes(build_spec(spec))
    assert "| 443 | tcp |" in text and "| 8100 |" in text
    assert "| 80 | tcp |" in text and "HTTP-01" in text


def test_cgnat_or_a_foreign_wan_address_says_forwarding_cannot_work():
    cgnat = make_site(HOME_PI, facts={**LAN, "ddns_state": {"address": "100.72.3.4"}})
    assert "carrier-grade NAT" in site_notes(cgnat.spec, cgnat)
    data = {**HOME_PI, "router": {**HOME_PI["router"], "wan_address": "198.51.100.7"}}
    other = make_site(data, facts={**LAN, "ddns_state": {"address": "203.0.113.9"}})
    text = site_notes(other.spec, other)
    assert "not your router's WAN address 198.51.100.7" in text and "dns-01" in text
    same = make_site(data, facts={**LAN, "ddns_state": {"address": "198.51.100.7"}})
    assert "cannot work" not in site_notes(same.spec, same)


def test_unmanaged_firewall_is_said_plainly():
    text = site_notes(build_spec({"users": ADMIN, "firewall": {"backend": "none"}}))
    assert "keep 49152-65535 closed" in text


def test_notes_go_to_the_host_the_login_message_and_the_controller():
    site = make_site(HOME_PI, facts=LAN)
    found = {getattr(i, "path", None) or i.label: i for i in items(site)}
    assert "/etc/pyinfra-jupyter/NOTES.md" in found
    assert "/etc/motd.d/pyinfra-jupyter" in found
    assert any("notes/lab1.md" in key for key in found)
    old = make_site(HOME_PI, facts=LAN, release="centos7")  # no motd.d with PAM 1.1.8
    assert not any("motd.d" in (getattr(i, "path", "") or "") for i in items(old))
