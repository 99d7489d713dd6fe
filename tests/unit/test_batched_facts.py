"""The run's two batched facts, offline: the host's facts carry the SSH connection (unless
sudo may reset the environment), the snapshot carries components' own probes, and an
answer the batch did not hold is asked on its own. tests/lab/test_hub.py holds a real no-op
run of the default hub site to exactly these two remote commands."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from operations.ops import facts
from operations.ops.facts import HostFacts, Snapshot, parse_ssh_connection
from tests.support import platform


@pytest.mark.parametrize("text, parsed", [
    ("203.0.113.9 51234 192.0.2.10 2222",
     {"client": "203.0.113.9", "client_port": 51234, "server": "192.0.2.10", "port": 2222}),
    ("", None),  # not over SSH (a local or container connector)
    ("203.0.113.9 51234 192.0.2.10", None),
    ("203.0.113.9 x 192.0.2.10 22", None),
])
def test_ssh_connection_parsing(text, parsed):
    assert parse_ssh_connection(text) == parsed


def test_host_facts_ask_for_the_ssh_connection_only_when_told():
    fact = HostFacts()
    with_ssh = fact.command(users=[], lines=[], globs=[], lock=False, ssh=True)
    assert 'echo "ssh_connection=$SSH_CONNECTION"' in with_ssh
    assert "SSH_CONNECTION" not in fact.command(users=[], lines=[], globs=[], lock=False)
    info = fact.process(["id=debian", "ssh_connection=10.0.0.1 40000 10.0.0.2 22"])
    assert info["ssh_connection"]["port"] == 22
    assert fact.process(["id=debian", "ssh_connection="])["ssh_connection"] is None


def _host(data: dict | None = None, **config):
    defaults = {"SUDO": False, "SU_USER": None, "DOAS": False}
    return SimpleNamespace(data=data or {}, state=SimpleNamespace(
        config=SimpleNamespace(**{**defaults, **config})))


@pytest.mark.parametrize("host, escalates", [
    (_host(), False),
    (_host({"_sudo": True}), True),
    (_host({"_su_user": "root"}), True),
    (_host(SUDO=True), True),
    (_host(DOAS=True), True),
])
def test_sudo_su_or_doas_means_the_ssh_connection_is_its_own_fact(host, escalates):
    assert facts.escalates(host) is escalates


def test_snapshot_probes_run_in_the_batch_and_come_back_by_name():
    command = Snapshot().command(
        paths=[], units=[], users=[], groups=[], manager="apt", packages=[], venvs=[], npm=[],
        probes=[("first", "echo a=1; echo b"), ("empty", "true"), ("second", "echo x:y")])
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    snap = Snapshot().process(output)
    assert snap["probes"] == {"first": ["a=1", "b"], "second": ["x:y"]}


@pytest.mark.parametrize("name", ["", "Upper", "with space", "semi;colon", "quote'"])
def test_a_probe_name_is_a_plain_word(name):
    with pytest.raises(ValueError, match="not a probe name"):
        Snapshot().command(paths=[], units=[], users=[], groups=[], manager="apt",
                           packages=[], venvs=[], npm=[], probes=[(name, "true")])


class _Host:
    """A stand-in for a pyinfra host: memo keeps its answers on the object."""


def test_a_probe_the_snapshot_ran_is_read_from_it_else_asked_on_its_own():
    host = _Host()
    facts.memo(host, "snapshot", lambda: {"_requested": {"probes": {"ran", "silent"}},
                                          "probes": {"ran": ["line"]}})
    assert facts.probe_of(host, "ran", lambda lines: ("processed", lines),
                          lambda: "fetched") == ("processed", ["line"])
    # Run, and printed nothing: still the batch's answer (e.g. no nft on the host).
    assert facts.probe_of(host, "silent", lambda lines: lines or None, lambda: "fetched") is None
    assert facts.probe_of(host, "other", lambda lines: lines, lambda: "fetched") == "fetched"


def test_a_line_the_host_facts_read_is_not_asked_again(monkeypatch):
    host = _Host()
    asked = []
    monkeypatch.setattr(facts, "quiet_fact", lambda h, fact, **kw: asked.append(kw) or "asked")
    facts.memo(host, "host_facts", lambda: {"lines": {("/etc/f", "include"): None}})
    assert facts.line_of(host, "/etc/f", "include") is None
    assert asked == []
    assert facts.line_of(host, "/etc/g", "include") == "asked"
    assert asked == [{"path": "/etc/g", "prefix": "include"}]


def test_file_line_finds_the_first_line_with_the_prefix(tmp_path):
    conf = tmp_path / "nftables.conf"
    conf.write_text('flush ruleset\ninclude "/etc/x.nft" # ours\ninclude "/etc/x.nft"\n')
    fact = facts.FileLine()
    for prefix, found in (('include "/etc/x.nft"', 'include "/etc/x.nft" # ours'),
                          ('include "/etc/y.nft"', None)):
        out = subprocess.run(["sh", "-c", fact.command(str(conf), prefix)],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert fact.process(out) == found
    missing = subprocess.run(["sh", "-c", fact.command(str(tmp_path / "none"), "x")],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert fact.process(missing) is None
    assert shlex.split(fact.command(str(conf), "a b"))  # one shell line


FACT_FIXTURES = Path(__file__).resolve().parents[1] / "operations" / "facts"
FIREWALL_FACTS = {  # fixture directory -> (probe name, the fact, its backend module)
    "firewall.ufw.UfwState": ("ufw_state", "operations.firewall.ufw"),
    "firewall.iptables.IptablesFilter": ("iptables_filter", "operations.firewall.iptables"),
    "firewall.firewalld.FirewalldZone": ("firewalld_zone", "operations.firewall.firewalld"),
}


@pytest.mark.parametrize("fixture", sorted(
    p for d in FIREWALL_FACTS for p in (FACT_FIXTURES / d).glob("*.json")), ids=lambda p: p.stem)
def test_a_firewall_backends_state_read_through_the_snapshot_is_its_facts_answer(fixture):
    """Each backend puts its rule-state fact in the snapshot as a probe (its own command,
    guarded by the command it requires) and reads it back as the fact would have."""
    import importlib

    from operations.firewall.rules import RuleSet

    probe, module_name = FIREWALL_FACTS[fixture.parent.name]
    module = importlib.import_module(module_name)
    fact = getattr(module, fixture.parent.name.rsplit(".", 1)[-1])
    case = json.loads(fixture.read_text())
    reads = module.snapshot_reads(RuleSet(allow=(), closed=()), platform("centos7"))
    (name, command), = reads["probes"]
    assert name == probe and case["command"] in command
    assert command.startswith(f"if command -v {case['requires_command']} ")
    host = _Host()
    snap = Snapshot().process([f"probe={probe}:{line}" for line in case["output"]])
    facts.memo(host, "snapshot", lambda: {**snap, "_requested": {"probes": {probe}}})
    assert facts.probed_fact(host, probe, fact) == case["fact"]


def test_a_forgotten_probe_is_asked_again_as_it_runs():
    """A firewall package that was missing (its install may start the firewall with the
    distro's rules): the backend's state is no longer read from the snapshot."""
    host = _Host()
    facts.memo(host, "snapshot", lambda: {"_requested": {"probes": {"zone"}},
                                          "probes": {"zone": ["stale"]}})
    assert facts.probe_of(host, "zone", lambda lines: lines, lambda: "live") == ["stale"]
    facts.forget_probe(host, "zone")
    assert facts.probe_of(host, "zone", lambda lines: lines, lambda: "live") == "live"
    # With no snapshot taken at all, forgetting is harmless and everything is asked.
    other = _Host()
    facts.forget_probe(other, "zone")
    assert facts.probe_of(other, "zone", lambda lines: lines, lambda: "live") == "live"
