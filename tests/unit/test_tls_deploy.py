"""The TLS component's decisions: agent config per type, names, when to run `ensure`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from operations import tls as tls_ops
from operations.tls import agent_config, ensure_needed
from pyinfra_jupyter.spec import build_spec
from tests.support import make_site, platform, self_signed_pem

ADMIN = {"accounts": [{"name": "alice", "admin": True}]}
NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)
CERT, KEY = self_signed_pem()


def spec(**data):
    return build_spec({"users": ADMIN, **data})


def test_self_signed_covers_the_hosts_names_and_addresses():
    site = spec(tls={"type": "self-signed", "names": ["hub.lan"]})
    names = site.tls.cert_names("pj-1", ["10.231.0.11", "fd00::11"])
    assert names == ["pj-1", "localhost", "10.231.0.11", "fd00::11", "127.0.0.1", "hub.lan"]
    config = agent_config(site, names)
    assert config["type"] == "self-signed" and config["self_signed"] == {"days": 365}
    # The proxy's user gets its own copy; nobody reads the root-only original.
    assert config["consumers"] == [{"name": "jupyter-proxy", "user": "jupyter-proxy"}]
    assert "key_group" not in config
    assert config["https_port"] == 443
    assert config["post_renew"] == [
        ["systemctl", "try-restart", "configurable-http-proxy*.service"]
    ]


def test_acme_http01_uses_the_webroot_and_a_private_ca():
    site = spec(tls={"type": "acme", "email": "a@b.org", "domains": ["hub.example.org"],
                     "directory": "https://10.231.0.1:14000/dir", "directory_ca": CERT})
    config = agent_config(site, site.tls.cert_names("pj-1", []))
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
    dns = config["acme"]["dns"]
    assert dns["provider"] == "duckdns" and dns["subdomain"] == "me"
    assert dns["token_file"] == "/etc/pyinfra-jupyter/tls/dns-token"
    assert "staging" in config["acme"]["directory"]
    assert "TOKEN-123" not in json.dumps(config)


def test_each_tls_variant_answers_for_itself():
    """What the components and the export ask a TLS variant (no `tls.type` checks outside
    the models): dns-01 or not, the names it states, its agent settings."""
    site = spec(
        tls={"type": "acme", "email": "a@b.org", "domains": ["me.duckdns.org"],
             "challenge": "dns-01", "dns_propagation_seconds": 90, "http_port": None},
        ddns={"provider": "duckdns", "domain": "me.duckdns.org", "token": "TOKEN-123"},
    )
    assert site.tls.dns01 and site.tls.public_names() == ["me.duckdns.org"]
    assert agent_config(site, ["me.duckdns.org"])["acme"]["dns"]["propagation_seconds"] == 90
    for other in ({"type": "self-signed"},
                  {"type": "provided", "cert_pem": CERT, "key_pem": KEY},
                  {"type": "acme", "email": "a@b.org", "domains": ["hub.example.org"]}):
        tls = spec(tls=other).tls
        assert not tls.dns01
        assert "dns" not in agent_config(spec(tls=other), []).get("acme", {})
        assert tls.public_names() == (["hub.example.org"] if other["type"] == "acme" else [])


def test_notebook_mode_restarts_every_instance_and_copies_per_user():
    site = build_spec({"mode": "notebook", "notebook": {"instances": [
        {"name": "a", "user": "alice", "password": "pw", "port": 9999},
        {"name": "b", "user": "alice", "password": "pw", "port": 9998},
        {"name": "c", "user": "carol", "password": "pw", "port": 9997}]}})
    config = agent_config(site, ["x"])
    assert config["https_port"] == 9999
    assert config["post_renew"] == [["systemctl", "try-restart", "jupyter-notebook@*.service"]]
    assert [c["user"] for c in config["consumers"]] == ["alice", "carol"]


def test_provided_pem_goes_to_fixed_paths_and_the_key_is_a_secret_file(monkeypatch):
    site = spec(tls={"type": "provided", "cert_pem": CERT, "key_pem": KEY})
    assert agent_config(site, [])["provided"] == {
        "cert_file": "/etc/pyinfra-jupyter/tls/provided/fullchain.pem",
        "key_file": "/etc/pyinfra-jupyter/tls/provided/privkey.pem",
    }
    monkeypatch.setattr(tls_ops, "agent_zipapp", lambda: b"zip")  # tested with the agent
    files = {i.path: i for i in tls_ops.items(make_site({}, spec=site)) if hasattr(i, "content")}
    key = files["/etc/pyinfra-jupyter/tls/provided/privkey.pem"]
    assert key.secret and key.mode == "600"
    assert not files["/etc/pyinfra-jupyter/tls/provided/fullchain.pem"].secret


@pytest.mark.parametrize(
    ("state", "pair", "copies_missing", "needed"),
    [
        (None, True, False, True),
        ({"names": ["a"], "renew_after": (NOW + timedelta(days=9)).isoformat()}, True, False, False),
        ({"names": ["a"], "renew_after": (NOW + timedelta(days=9)).isoformat()}, False, False, True),
        ({"names": ["a"], "renew_after": (NOW + timedelta(days=9)).isoformat()}, True, True, True),
        ({"names": ["a"], "renew_after": (NOW - timedelta(seconds=1)).isoformat()}, True, False, True),
        ({"names": ["b"], "renew_after": (NOW + timedelta(days=9)).isoformat()}, True, False, True),
        ({"names": ["a"]}, True, False, True),
        ({"names": ["a"], "renew_after": "2027-02-01T00:00:00Z"}, True, False, False),
    ],
)
def test_ensure_runs_only_when_needed(state, pair, copies_missing, needed):
    assert ensure_needed(state, pair, ["a"], copies_missing, now=NOW) is needed


def test_a_pair_other_than_the_recorded_one_makes_the_agent_run():
    state = {"names": ["a"], "renew_after": (NOW + timedelta(days=9)).isoformat(),
             "pair_sha256": "1" * 64}
    assert ensure_needed(state, True, ["a"], False, now=NOW, pair_sha256="1" * 64) is False
    assert ensure_needed(state, True, ["a"], False, now=NOW, pair_sha256="2" * 64) is True
    # A state from an agent that did not record it yet: the agent runs once and records it.
    del state["pair_sha256"]
    assert ensure_needed(state, True, ["a"], False, now=NOW, pair_sha256="2" * 64) is True


@pytest.mark.parametrize("release", ["centos7", "ubuntu1604", "debian12"])
def test_unit_templates_render(release):
    site = make_site({}, spec=spec(tls={"type": "acme", "email": "a@b.org",
                                        "domains": ["hub.example.org"]}), release=release)
    units = tls_ops.render_units(site.spec, site)
    renew = units["/etc/systemd/system/pyinfra-jupyter-tls-renew.service"]
    assert "ExecStart=/opt/pyinfra-jupyter/agent/bin/python /opt/pyinfra-jupyter/agent/agent.pyz" in renew
    assert "CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER" in renew
    if platform(release).systemd.protect_system_strict:
        assert "ProtectSystem=strict" in renew
        assert ("ReadWritePaths=/etc/pyinfra-jupyter/tls /var/lib/pyinfra-jupyter/acme-challenge"
                in renew.splitlines())
    timer = units["/etc/systemd/system/pyinfra-jupyter-tls-renew.timer"]
    assert "RandomizedDelaySec=" in timer and "Persistent=true" in timer


def test_dropping_a_notebook_instance_changes_who_gets_a_copy_not_the_certificate():
    # So removing one instance restarts no other (their copies and certificate are unchanged).
    from operations.tls import cert_inputs

    def notebook(instances):
        return build_spec({"mode": "notebook", "tls": {"type": "self-signed"}, "notebook": {
            "instances": [{"name": n, "user": u, "port": p, "password": "pw-0123456789"}
                          for n, u, p in instances]}})

    two = notebook([("lab-a", "alice", 8888), ("lab-b", "bob", 9999)])
    one = notebook([("lab-a", "alice", 8888)])
    names = ["pj-1", "localhost"]
    assert agent_config(two, names)["consumers"] != agent_config(one, names)["consumers"]
    assert cert_inputs(agent_config(two, names)) == cert_inputs(agent_config(one, names))
    assert cert_inputs(agent_config(spec(tls={"type": "self-signed", "days": 90}), names)) != \
        cert_inputs(agent_config(spec(tls={"type": "self-signed"}), names))
