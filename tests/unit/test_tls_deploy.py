"""The TLS component's decisions: agent config per type, names, when to run `ensure`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import jinja2
import pytest

from operations.spec import build_spec
from operations.tls import agent_config, cert_names, ensure_needed

ADMIN = {"accounts": [{"name": "alice", "admin": True}]}
NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)


def spec(**data):
    return build_spec({"users": ADMIN, **data})


def test_self_signed_covers_the_hosts_names_and_addresses():
    site = spec(tls={"type": "self-signed", "names": ["hub.lan"]})
    names = cert_names(site, "pj-1", ["10.231.0.11", "fd00::11"])
    assert names == ["pj-1", "localhost", "10.231.0.11", "fd00::11", "127.0.0.1", "hub.lan"]
    config = agent_config(site, names)
    assert config["type"] == "self-signed" and config["self_signed"] == {"days": 365}
    assert config["key_group"] == "jupyter-tls"
    assert config["https_port"] == 443
    assert config["post_renew"] == [
        ["systemctl", "try-restart", "configurable-http-proxy*.service"]
    ]


def test_acme_http01_uses_the_webroot_and_a_private_ca():
    site = spec(tls={"type": "acme", "email": "a@b.org", "domains": ["hub.example.org"],
                     "directory": "https://10.231.0.1:14000/dir",
                     "directory_ca": "-----BEGIN CERTIFICATE-----\n..."})
    config = agent_config(site, cert_names(site, "pj-1", []))
    assert config["names"] == ["hub.example.org"]
    assert config["acme"] == {
        "directory": "https://10.231.0.1:14000/dir",
        "email": "a@b.org",
        "challenge": "http-01",
        "webroot": "/var/lib/pyinfra-jupyter/acme-challenge",
        "preflight": True,
        "ca_bundle": "/etc/pyinfra-jupyter/tls/acme-directory-ca.pem",
    }


def test_acme_dns01_goes_through_the_ddns_provider_and_keeps_the_token_out():
    site = spec(
        tls={"type": "acme", "email": "a@b.org", "domains": ["me.duckdns.org"],
             "challenge": "dns-01", "directory": "letsencrypt-staging"},
        ddns={"provider": "duckdns", "domain": "me.duckdns.org", "token": "TOKEN-123"},
    )
    config = agent_config(site, ["me.duckdns.org"])
    assert config["acme"]["dns"] == {
        "provider": "duckdns", "token_file": "/etc/pyinfra-jupyter/tls/dns-token",
        "subdomain": "me",
    }
    assert "staging" in config["acme"]["directory"]
    assert "TOKEN-123" not in json.dumps(config)


def test_notebook_mode_restarts_every_instance_on_renewal():
    site = build_spec({"mode": "notebook", "notebook": {"instances": [
        {"password": "pw", "port": 9999}]}})
    config = agent_config(site, ["x"])
    assert config["https_port"] == 9999
    assert config["post_renew"] == [["systemctl", "try-restart", "jupyter-notebook@*.service"]]


def test_provided_pem_goes_to_fixed_paths():
    site = spec(tls={"type": "provided", "cert_pem": "-----BEGIN CERTIFICATE-----\nx",
                     "key_pem": "-----BEGIN PRIVATE KEY-----\nx"})
    assert agent_config(site, [])["provided"] == {
        "cert_file": "/etc/pyinfra-jupyter/tls/provided/fullchain.pem",
        "key_file": "/etc/pyinfra-jupyter/tls/provided/privkey.pem",
    }


@pytest.mark.parametrize(
    ("status", "needed"),
    [
        (None, True),
        ({"names": ["a"], "renew_after": (NOW + timedelta(days=9)).isoformat()}, False),
        ({"names": ["a"], "renew_after": (NOW - timedelta(seconds=1)).isoformat()}, True),
        ({"names": ["b"], "renew_after": (NOW + timedelta(days=9)).isoformat()}, True),
        ({"names": ["a"]}, True),
        ({"names": ["a"], "renew_after": "2027-02-01T00:00:00Z"}, False),
    ],
)
def test_ensure_runs_only_when_needed(status, needed):
    assert ensure_needed(status, ["a"], now=NOW) is needed


@pytest.mark.parametrize("name", [
    "pyinfra-jupyter-http.service", "pyinfra-jupyter-tls-renew.service",
    "pyinfra-jupyter-tls-renew.timer",
])
def test_unit_templates_render(name):
    from operations.common import template

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    with open(template("tls", name)) as handle:
        unit = env.from_string(handle.read()).render(
            python="/opt/a/bin/python", agent="/opt/a/agent.py", config="/etc/a.json",
            port=80, webroot="/var/w", network_env="/etc/n.env",
        )
    assert "[Install]" in unit or "[Service]" in unit
    if name.endswith(".timer"):
        assert "RandomizedDelaySec=" in unit and "Persistent=true" in unit
