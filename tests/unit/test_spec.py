"""The site spec: what it accepts, and the words and field paths of what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyinfra_jupyter.spec import SiteSpec, SpecError, build_spec

ADMIN = {"accounts": [{"name": "alice", "admin": True}]}


def problems(data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        build_spec(data)
    return info.value.problems


def test_default_site_is_a_hub_with_self_signed_tls():
    spec = build_spec({"users": ADMIN})
    assert spec.mode == "hub"
    assert spec.tls.type == "self-signed"
    assert spec.public_ports() == [443, 80]
    assert spec.loopback_ports() == {"hub.api_port": 8081, "proxy.api_port": 8001}
    assert spec.users.admin_names == ["alice"]


def test_spec_is_immutable():
    spec = build_spec({"users": ADMIN})
    with pytest.raises(Exception, match="frozen"):
        spec.mode = "notebook"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"mode": "lab", "users": ADMIN}, "mode: Input should be 'notebook' or 'hub'"),
        ({"hub": {"prefx": "/opt"}, "users": ADMIN}, "hub.prefx: unknown key (typo?)"),
        ({"hubb": {}, "users": ADMIN}, "hubb: unknown key, did you mean 'hub'?"),
        (
            {"hub": {"auth": {"type": "github"}}, "users": ADMIN},
            "hub.auth.github.client_id: Field required",
        ),
        (
            {"hub": {"auth": {"type": "github", "client_id": "x", "client_secret": "s",
                              "callback_url": "https://h.org/callback"}}, "users": ADMIN},
            "hub.auth.github.callback_url: must end with /hub/oauth_callback",
        ),
        ({"hub": {"auth": {"type": "kerberos"}}, "users": ADMIN}, "hub.auth: Input tag 'kerberos'"),
        ({"proxy": {"port": 0}, "users": ADMIN}, "proxy.port: Input should be greater than"),
        ({"proxy": {"port": 50000}, "users": ADMIN}, "proxy.port: 50000 is in 49152-65535"),
        ({"hub": {"api_port": 8001}, "users": ADMIN}, "hub.api_port: 8001 is already used"),
        ({"tls": {"type": "self-signed", "http_port": 443}, "users": ADMIN},
         "tls.http_port: 443 is already used by proxy.port"),
        ({"firewall": {"ssh_ports": [443]}, "users": ADMIN}, "firewall.ssh_ports: 443 is also"),
        ({}, "users: JupyterHub 5+ lets nobody log in without an allow rule"),
        ({"users": {"allowed": ["bob"], "admins": ["carol"]}},
         "users.admins: carol must also be allowed to log in"),
        ({"hub": {"auth": {"type": "dummy"}}, "users": ADMIN},
         "users.allow_all: the dummy authenticator accepts any user name"),
        ({"tls": {"type": "acme"}, "users": ADMIN}, "tls.acme.email: Field required"),
        ({"tls": {"type": "acme", "email": "a@b.org", "domains": []}, "users": ADMIN},
         "tls.acme.domains: List should have at least 1 item"),
        ({"tls": {"type": "acme", "email": "nope", "domains": ["h.org"]}, "users": ADMIN},
         "tls.acme.email: 'nope' is not an e-mail address"),
        ({"tls": {"type": "acme", "email": "a@b.org", "domains": ["10.0.0.1"]}, "users": ADMIN},
         "tls.acme.domains.0: '10.0.0.1' is an IP address"),
        ({"tls": {"type": "acme", "email": "a@b.org", "domains": ["h.org"], "http_port": None},
          "users": ADMIN}, "tls.http_port: ACME HTTP-01 validates on port 80"),
        ({"tls": {"type": "acme", "email": "a@b.org", "domains": ["h.org"],
                  "challenge": "dns-01"}, "users": ADMIN},
         "tls.challenge: dns-01 sets TXT records through the DDNS provider's API"),
        ({"tls": {"type": "acme", "email": "a@b.org", "domains": ["h.org"], "challenge": "dns-01"},
          "ddns": {"provider": "duckdns", "domain": "me.duckdns.org", "token": "t"},
          "users": ADMIN}, "tls.domains: h.org not managed by the ddns provider"),
        ({"tls": {"type": "provided", "cert_file": "/c.pem"}, "users": ADMIN},
         "give exactly one of key_file and key_pem"),
        ({"users": {"accounts": [{"name": "root"}]}}, "users.accounts.0.name: root never logs in"),
        ({"users": {"accounts": [{"name": "Bad Name"}]}}, "is not a valid Unix user"),
        ({"users": {"accounts": [{"name": "a"}, {"name": "a"}]}}, "account 'a' is listed twice"),
        ({"firewall": {"allow": [{"port": 50000}]}, "users": ADMIN},
         "overlap the kernel range 49152-65535"),
        ({"firewall": {"allow": [{"port": 22, "sources": ["not-a-net"]}]}, "users": ADMIN},
         "firewall.allow.0.sources.0: 'not-a-net' is not an IP address or network"),
        ({"network": {"ca_certificates": ["hello"]}, "users": ADMIN},
         "network.ca_certificates: item 0 is not a PEM certificate"),
        ({"mode": "notebook"}, "notebook.instances: mode 'notebook' needs at least one instance"),
        ({"mode": "notebook", "notebook": {"instances": [{"password": "x", "password_hash":
          "argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdA$aGFzaA"}]}},
         "give exactly one of password_hash and password"),
        ({"mode": "notebook", "notebook": {"instances": [{"password_hash": "sha1:ab:cd"}]}},
         "sha1 password hashes (the old notebook's format) are fast to brute-force"),
        ({"mode": "notebook", "notebook": {"instances": [{"password": "x", "user": "root"}]}},
         "never runs as root"),
        ({"mode": "notebook", "notebook": {"instances": [
            {"password": "x", "name": "a"}, {"password": "y", "name": "b"}]}},
         "two instances have the port 8888"),
        ({"hub": {"spawner": {"type": "systemd", "mem_limit": "lots"}}, "users": ADMIN},
         "hub.spawner.systemd.mem_limit: String should match pattern"),
        ({"ddns": {"provider": "duckdns", "domain": "x.duckdns.org"}, "users": ADMIN},
         "ddns.duckdns.token: Field required"),
    ],
)
def test_bad_input_names_the_field(data, expected):
    found = problems(data)
    assert any(expected in p for p in found), found
    # Every problem is one `field.path: message` line.
    assert all(": " in p and "\n" not in p for p in found)


def test_every_problem_is_reported_at_once():
    found = problems({"hubb": {}, "proxy": {"port": 50000}, "hub": {"api_port": 8001}})
    assert any(p.startswith("hubb:") for p in found)
    assert any(p.startswith("proxy.port:") for p in found)
    assert any(p.startswith("hub.api_port:") for p in found)
    assert any(p.startswith("users:") for p in found)


def test_secrets_never_show_in_errors_or_repr():
    data = {"hub": {"auth": {"type": "github", "client_id": "id", "client_secret": "TOPSECRET",
                             "callback_url": "http://x"}}, "users": ADMIN}
    assert not any("TOPSECRET" in p for p in problems(data))
    ok = dict(data, hub={"auth": dict(data["hub"]["auth"],
                                      callback_url="https://h.org/hub/oauth_callback")})
    spec = build_spec(ok)
    assert "TOPSECRET" not in repr(spec) and "TOPSECRET" not in str(spec.model_dump())


def test_pyinfra_connector_keys_are_ignored():
    spec = build_spec({"ssh_user": "root", "ssh_port": 2222, "_private": 1, "users": ADMIN})
    assert spec.mode == "hub"


def test_notebook_ip_star_means_all_addresses():
    spec = build_spec({"mode": "notebook", "notebook": {"instances": [
        {"password": "pw", "ip": "*", "port": 8100}]}})
    assert spec.notebook.instances[0].ip == "0.0.0.0"
    assert spec.public_ports() == [8100, 80]
    assert spec.loopback_ports() == {}


def test_dns01_through_the_ddns_zone():
    spec = build_spec({
        "tls": {"type": "acme", "email": "a@b.org", "domains": ["hub.home.example.org"],
                "challenge": "dns-01", "http_port": None},
        "ddns": {"provider": "dynv6", "zone": "home.example.org", "token": "t"},
        "users": ADMIN,
    })
    assert spec.tls.directory_url.startswith("https://acme-v02.api.letsencrypt.org")


@given(port=st.integers(min_value=1, max_value=65535))
def test_any_public_port_outside_the_kernel_range_is_accepted(port):
    data = {"proxy": {"port": port}, "tls": {"type": "self-signed", "http_port": None},
            "users": ADMIN}
    if port in range(49152, 65536) or port in (8001, 8081, 22):
        with pytest.raises(SpecError):
            build_spec(data)
    else:
        assert build_spec(data).public_ports() == [port]


def test_schema_is_json_serialisable():
    import json

    schema = json.dumps(SiteSpec.model_json_schema())
    assert '"discriminator"' in schema and "client_secret" in schema


def notebooks(*instances: tuple[str, str, str | None]) -> dict:
    return {"mode": "notebook", "notebook": {"instances": [
        {"name": name, "user": user, "port": 8100 + i, "password": "pw",
         **({"root_dir": root} if root else {})}
        for i, (name, user, root) in enumerate(instances)
    ]}}


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        ([("a", "alice", "/srv/nb"), ("b", "bob", "/srv/nb/bob")],
         "notebook.instances: instances.1.root_dir '/srv/nb/bob' is inside "
         "instances.0.root_dir '/srv/nb'"),
        ([("a", "alice", "/srv/nb/alice/deep"), ("b", "bob", "/srv/nb/alice")],
         "notebook.instances: instances.1.root_dir '/srv/nb/alice' contains "
         "instances.0.root_dir '/srv/nb/alice/deep'"),
        ([("a", "alice", "/srv/nb"), ("b", "bob", "/srv/nb")],
         "notebook.instances: instances.1.root_dir '/srv/nb' is instances.0.root_dir"),
        # The default directory (~USER/notebooks) counts too.
        ([("a", "alice", None), ("b", "bob", "/home/alice/notebooks/b")],
         "instances.1.root_dir '/home/alice/notebooks/b' is inside instances.0.root_dir "
         "'/home/alice/notebooks'"),
        ([("a", "alice", "/srv/nb"), ("b", "alice", "/srv/nb/more")],
         "instances.1.root_dir '/srv/nb/more' is inside instances.0.root_dir '/srv/nb'"),
    ],
    ids=["nested", "contains", "equal-other-user", "in-default", "nested-same-user"],
)
def test_notebook_directories_must_not_overlap(instances, expected):
    found = problems(notebooks(*instances))
    assert len(found) == 1 and expected in found[0], found


def test_notebook_directories_may_share_a_prefix_but_not_a_component():
    spec = build_spec(notebooks(("a", "alice", "/srv/nb"), ("b", "bob", "/srv/nb2"),
                                ("c", "carol", "/srv/nb-c/x"), ("d", "dan", None),
                                ("e", "dan", None)))
    # Two servers of one user may share its directory.
    assert [i.notebook_dir for i in spec.notebook.instances] == [
        "/srv/nb", "/srv/nb2", "/srv/nb-c/x", "/home/dan/notebooks", "/home/dan/notebooks"]
