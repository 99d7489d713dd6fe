"""The firewall rule set from the spec: what is open, what stays on loopback, and SSH safety."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operations.firewall import firewalld, iptables, nftables, ufw
from operations.firewall.rules import RulesError, build, check_ssh
from pyinfra_jupyter.spec import build_spec

HUB = {"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}}


def spec(**firewall):
    return build_spec({**HUB, "firewall": firewall})


def test_default_hub_site():
    s = spec()
    rules = build(s, 22)
    for port in (22, *s.public_ports()):
        assert rules.admits("203.0.113.7", port)
        assert rules.admits("2001:db8::7", port)
    for port in (*s.loopback_ports().values(), 49152, 50000, 65535):
        assert not rules.admits("203.0.113.7", port)
        assert not rules.admits("2001:db8::7", port)
    assert not rules.admits("203.0.113.7", 50000, "udp")
    assert not rules.admits("203.0.113.7", 3306)  # default deny


def test_acme_http_port_80_is_public():
    s = build_spec({**HUB, "tls": {"type": "acme", "email": "a@example.org",
                                   "domains": ["hub.example.org"], "http_port": 80}})
    assert build(s, 22).admits("198.51.100.1", 80)


def test_notebook_mode_opens_each_instance_and_no_api_ports():
    s = build_spec({"mode": "notebook", "notebook": {"instances": [
        {"name": "a", "port": 8100, "password": "x" * 12},
        {"name": "b", "port": 9999, "password": "y" * 12}]}})
    rules = build(s, 22)
    assert rules.admits("198.51.100.1", 8100) and rules.admits("198.51.100.1", 9999)
    assert [c.comment for c in rules.closed] == ["Jupyter kernels: loopback only"] * 2


def test_extra_allow_only_from_its_sources():
    rules = build(spec(allow=[{"port": 9100, "sources": ["10.0.0.0/8"]}]), 22)
    assert rules.admits("10.1.2.3", 9100)
    assert not rules.admits("192.0.2.1", 9100)
    assert not rules.admits("fd00::1", 9100)


def test_connected_ssh_port_is_added():
    rules = build(spec(ssh_ports=[22]), 2222)
    assert rules.admits("192.0.2.1", 2222) and rules.admits("192.0.2.1", 22)


def test_ssh_sources_that_exclude_the_deploy_are_refused():
    rules = build(spec(ssh_sources=["192.0.2.0/24"]), 22)
    check_ssh(rules, "192.0.2.9", 22)
    with pytest.raises(RulesError, match=r"refusing to apply .*from 198\.51\.100\.4 to port 22"
                       r".*not in firewall\.ssh_sources.*Nothing was changed"):
        check_ssh(rules, "198.51.100.4", 22)


def test_ssh_on_a_loopback_only_port_is_refused():
    rules = build(spec(), 50022)
    with pytest.raises(RulesError, match="port 50022 is loopback-only.*kernels"):
        check_ssh(rules, "192.0.2.1", 50022)


def test_loopback_client_is_not_a_free_pass():
    # A deploy through a port forward arrives from 127.0.0.1: judged by ssh_sources anyway.
    rules = build(spec(ssh_sources=["192.0.2.0/24"]), 22)
    with pytest.raises(RulesError):
        check_ssh(rules, "127.0.0.1", 22)
    check_ssh(build(spec(), 22), "127.0.0.1", 22)


def test_allow_that_opens_an_api_port_is_refused():
    with pytest.raises(RulesError, match="8081/tcp must never be reachable"):
        build(spec(allow=[{"port": 8000, "to_port": 8100}]), 22)


def test_spec_refuses_kernel_range_to_the_world():
    with pytest.raises(Exception, match="overlap the kernel range"):
        spec(allow=[{"port": 50000}])


@settings(max_examples=200, deadline=None)
@given(
    ssh=st.integers(1, 49151),
    port=st.integers(1, 65535),
    proto=st.sampled_from(["tcp", "udp"]),
    address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
    extra=st.lists(st.tuples(st.integers(1, 8000), st.integers(0, 50),
                             st.sampled_from(["10.0.0.0/8", "0.0.0.0/0", "::/0", "fd00::/8"])),
                   max_size=3),
)
def test_invariants(ssh, port, proto, address, extra):
    s = build_spec({**HUB, "firewall": {"ssh_ports": [], "allow": [
        {"port": p, "to_port": p + n, "sources": [src]} for p, n, src in extra
        if not (p <= 8081 <= p + n or p <= 8001 <= p + n)]}})
    if ssh in s.loopback_ports().values():
        return
    rules = build(s, ssh)
    check_ssh(rules, "192.0.2.1", ssh)  # never refuses the world-open SSH port
    if 49152 <= port <= 65535 or port in s.loopback_ports().values():
        assert not rules.admits(address, port, proto)
    if rules.admits(address, port, proto):
        assert any(port in a.ports and a.proto == proto
                   and ipaddress.ip_address(address) in ipaddress.ip_network(a.source)
                   for a in rules.allow)
    for port_ in s.public_ports():
        assert rules.admits(address, port_, "tcp")


def test_backends_render_the_same_rules():
    rules = build(spec(allow=[{"port": 9100, "sources": ["10.0.0.0/8"], "comment": "metrics"},
                              {"port": 5000, "to_port": 5010, "proto": "udp",
                               "sources": ["::/0"]}]), 22)
    nft = nftables.render_table(rules)
    assert 'tcp dport 49152-65535 drop comment "Jupyter kernels: loopback only"' in nft
    assert 'ip saddr 10.0.0.0/8 tcp dport 9100 accept comment "metrics"' in nft
    assert "meta nfproto ipv6 udp dport 5000-5010 accept" in nft
    assert nft.index("dport 8081 drop") < nft.index("dport 22 accept")
    assert ufw.desired_rules(rules) == [
        "deny 8001/tcp", "deny 8081/tcp", "deny 49152:65535/tcp", "deny 49152:65535/udp",
        "allow 22/tcp", "allow 80/tcp", "allow 443/tcp",
        "allow from ::/0 to any port 5000:5010 proto udp",
        "allow from 10.0.0.0/8 to any port 9100 proto tcp"]
    zone = firewalld.desired_zone(rules)
    assert zone["ports"] == ["22/tcp", "80/tcp", "443/tcp"]
    assert 'rule port port="49152-65535" protocol="tcp" drop' in zone["rich_rules"]
    v4, v6 = iptables.render_tables(rules)
    assert "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 9100" in v4
    assert "9100" not in v6 and "--dport 5000:5010" in v6 and "5000:5010" not in v4
    assert ":INPUT DROP [0:0]" in v4
