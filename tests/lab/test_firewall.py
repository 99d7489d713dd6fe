"""The firewall on real lab hosts, one per backend (nftables, ufw, firewalld, iptables), probed from the
lab's probe namespace: public port open, kernels and APIs loopback-only, SSH kept, no changes
on a second run, hand-made drift removed, and a lockout refused before anything is applied.

Only the firewall component is deployed (tests/lab/firewall_deploy.py): no JupyterHub is
needed; tiny `python3 -m http.server` listeners stand in for the services.
"""

from __future__ import annotations

import copy
import subprocess
import time

import pytest
from deploy_helpers import assert_no_changes, run_deploy

pytestmark = pytest.mark.lab

DEPLOY = "tests/lab/firewall_deploy.py"
SITE = {"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}}
PUBLIC, KERNEL, HUB_API, PROXY_API = 443, 50000, 8081, 8001
# A hand edit that really opens the kernel range to everyone, per backend.
OPEN_KERNELS_BY_HAND = {
    "nftables": "nft insert rule inet pyinfra_jupyter input tcp dport 49152-65535 accept",
    "ufw": "ufw allow 49152:65535/tcp",
    "firewalld": "firewall-cmd -q --permanent --remove-rich-rule="
                 "'rule port port=\"49152-65535\" protocol=\"tcp\" drop' && "
                 "firewall-cmd -q --permanent --add-port=49152-65535/tcp && firewall-cmd -q --reload",
    "iptables": "iptables -I INPUT 1 -p tcp --dport 49152:65535 -j ACCEPT",
}
LIVE_RULES = {
    "nftables": "nft list ruleset",
    "ufw": "ufw status verbose; ufw show added",
    "firewalld": "firewall-cmd --list-all; firewall-cmd --permanent --list-all",
    # Without the timestamp comments and packet counters, which change on their own.
    "iptables": "for t in iptables-save ip6tables-save; do $t | grep -v '^#' "
                "| sed 's/ \\[[0-9]*:[0-9]*\\]$//'; done",
}


def _out(result) -> str:
    return getattr(result, "stdout", result) or ""


def _rc(result) -> int:
    for attr in ("rc", "returncode", "exit_status"):
        if hasattr(result, attr):
            return getattr(result, attr)
    return 0


class Site:
    def __init__(self, lab, backend: str, tmp_path):
        self.lab, self.backend = lab, backend
        self.host = lab.new_host()
        self.spec = copy.deepcopy(SITE) | {"firewall": {"backend": backend}}
        self.inventory = tmp_path / "inventory.py"
        self.figures: dict[str, float] = {}

    def deploy(self, label: str, check: bool = True):
        self.lab.write_inventory(self.inventory, [self.host], self.spec)
        start = time.monotonic()
        result = run_deploy(self.inventory, check=check, deploy_file=DEPLOY)
        self.figures[label] = time.monotonic() - start
        return result

    def sh(self, command: str) -> str:
        return _out(self.host.run(command, check=False)).strip()

    def listen(self, port: int) -> None:
        self.sh(f"systemctl is-active -q pj-listen-{port} || systemd-run -q "
                f"--unit=pj-listen-{port} python3 -m http.server {port} --directory /tmp")
        # Wait until it serves on the host itself (a readiness poll, not a timing assertion).
        for _ in range(100):
            if self.sh(f"curl --noproxy '*' -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/") == "200":
                return
            time.sleep(0.1)
        raise AssertionError(f"the test listener on {port} did not start")

    def from_probe(self, port: int) -> bool:
        """Does an HTTP request from the probe namespace get an answer?"""
        out = _out(self.lab.probe(
            f"curl --noproxy '*' -s -m 3 -o /dev/null -w '%{{http_code}}' http://{self.host.address}:{port}/"))
        return out.strip().endswith("200")

    def ssh_banner_from_probe(self) -> str:
        return _out(self.lab.probe(
            "python3 -c \"import socket; s = socket.create_connection(('"
            f"{self.host.address}', 22), 5); print(s.recv(8).decode())\"")).strip()


@pytest.fixture(scope="module", params=["nftables", "ufw", "firewalld", "iptables"])
def site(request, lab, tmp_path_factory):
    site = Site(lab, request.param, tmp_path_factory.mktemp(f"fw-{request.param}"))
    site.deploy("first run")
    for port in (PUBLIC, KERNEL, HUB_API, PROXY_API):
        site.listen(port)
    yield site
    print(f"\nfirewall ({site.backend}) deploy figures (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in site.figures.items()))


def test_second_run_changes_nothing(site):
    assert_no_changes(site.deploy("second run").stdout)


def test_public_port_answers_from_outside(site):
    assert site.from_probe(PUBLIC)


def test_kernel_port_is_loopback_only(site):
    assert site.sh(f"curl --noproxy '*' -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{KERNEL}/") == "200"
    assert not site.from_probe(KERNEL)


def test_hub_and_proxy_api_ports_are_not_public(site):
    assert not site.from_probe(HUB_API)
    assert not site.from_probe(PROXY_API)


def test_ssh_still_works(site):
    assert site.ssh_banner_from_probe().startswith("SSH-2.0")  # through the firewall
    # ... and a brand-new SSH session from the controller, the way pyinfra connects.
    ssh = subprocess.run(
        ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-i", site.host.ssh_key, "-p", str(site.host.ssh_port),
         "root@127.0.0.1", "echo ok"], capture_output=True, text=True, timeout=60)
    assert ssh.stdout.strip() == "ok", ssh.stderr


def test_drift_is_removed_and_said(site):
    site.sh(OPEN_KERNELS_BY_HAND[site.backend])
    assert site.from_probe(KERNEL), "the hand edit should have opened the kernel range"
    output = site.deploy("drift run").stdout
    assert "Remove rule not in the spec" in output
    assert not site.from_probe(KERNEL)
    assert_no_changes(site.deploy("after drift").stdout)


def test_lockout_is_refused_and_nothing_applied(site):
    before = site.sh(LIVE_RULES[site.backend])
    site.spec["firewall"]["ssh_sources"] = ["192.0.2.0/24"]  # not where the deploy comes from
    try:
        result = site.deploy("refused run", check=False)
    finally:
        del site.spec["firewall"]["ssh_sources"]
    assert result.returncode != 0
    assert "refusing to apply rules that would cut this deploy's SSH connection" in result.stdout
    assert "Nothing was changed" in result.stdout
    assert site.sh(LIVE_RULES[site.backend]) == before
    assert site.sh("systemctl is-active pj-firewall-rollback.timer || true") != "active"


def test_rollback_timer_restores_the_rules_when_not_confirmed(site):
    """Rules that cut SSH, applied with the guard armed and never confirmed: the timer puts
    the previous rules back by itself, and SSH gets in again."""
    before = site.sh(LIVE_RULES[site.backend])
    assert "SSH-" in site.ssh_banner_from_probe()
    bad = copy.deepcopy(site.spec)
    bad["firewall"] = {"backend": site.backend, "ssh_ports": [2222], "rollback_seconds": 25}
    site.lab.write_inventory(site.inventory, [site.host], bad)
    run_deploy(site.inventory, deploy_file="tests/lab/firewall_rollback_deploy.py")
    assert "SSH-" not in site.ssh_banner_from_probe(), "the bad rules did not cut SSH"

    # The timer fires 25 s after the arm (time for the deploy to finish first on a loaded
    # machine, so the cut above is seen); a busy machine may lag.
    deadline = time.monotonic() + 120
    while "SSH-" not in site.ssh_banner_from_probe() and time.monotonic() < deadline:
        time.sleep(1)
    assert "SSH-" in site.ssh_banner_from_probe(), "the rollback timer did not restore SSH"
    assert site.sh(LIVE_RULES[site.backend]) == before
    assert "previous firewall rules restored" in site.sh(
        "journalctl -t pj-firewall-rollback --no-pager")
    # The real deploy converges again (the bad run left its rules in the boot config).
    site.deploy("after rollback")
    assert_no_changes(_out(site.deploy("rerun after rollback")))


def test_uninstall_removes_our_rules_and_keeps_ssh(site):
    """Last (it takes the rules away): nftables gets the host's ruleset back as it was (our
    table gone, the others' untouched); the backends that own the whole rule set keep a safe
    default, inbound denied but SSH."""
    run_deploy(site.inventory, deploy_file="tests/lab/firewall_uninstall.py")
    assert site.ssh_banner_from_probe().startswith("SSH-2.0")
    test_ssh_still_works(site)
    assert not site.from_probe(KERNEL) or site.backend == "nftables"
    if site.backend == "nftables":
        assert "pyinfra_jupyter" not in site.sh("nft list tables")
        assert "pyinfra-jupyter" not in site.sh("cat /etc/nftables.conf")
        assert site.from_probe(PUBLIC)  # nothing filters any more, as before the deploy
    else:
        assert not site.from_probe(PUBLIC)
        assert f"{PUBLIC}" not in site.sh(LIVE_RULES[site.backend])
    assert site.sh("ls /etc/pyinfra-jupyter /var/lib/pyinfra-jupyter 2>/dev/null; true") == ""
    assert_no_changes(run_deploy(site.inventory,
                                 deploy_file="tests/lab/firewall_uninstall.py").stdout)
