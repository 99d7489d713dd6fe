"""The notes a sysadmin reads: router forwards, unmanaged firewall, DDNS status."""

from __future__ import annotations

from operations.notes import site_notes
from pyinfra_jupyter.spec import build_spec

ADMIN = {"accounts": [{"name": "alice", "admin": True}]}


def test_router_forwards_default_to_the_public_ports():
    notes = site_notes(build_spec({"users": ADMIN, "router": {
        "behind_nat": True, "lan_address": "192.168.1.50"}}))
    assert "forward these ports to 192.168.1.50" in notes
    assert "tcp 443 -> 443" in notes and "tcp 80 -> 80" in notes


def test_seed_001_forward_8100_to_80():
    notes = site_notes(build_spec({
        "mode": "notebook",
        "notebook": {"instances": [{"password": "pw", "port": 8100}]},
        "router": {"behind_nat": True, "forwards": [{"external": 80, "internal": 8100}]},
    }))
    assert "tcp 80 -> 8100" in notes
    assert "give it a fixed LAN address" in notes


def test_unmanaged_firewall_and_ddns_are_said_plainly():
    notes = site_notes(build_spec({
        "users": ADMIN,
        "firewall": {"backend": "none"},
        "ddns": {"provider": "duckdns", "domain": "me.duckdns.org", "token": "SECRET-TOKEN"},
    }))
    assert "keep 49152-65535 closed" in notes
    assert "does not install an updater yet" in notes
    assert "SECRET-TOKEN" not in notes
