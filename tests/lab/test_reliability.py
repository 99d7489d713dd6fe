"""Drift and faults on a real lab hub host: damage it, re-run the deploy, and prove it is back
to spec without losing anything.

Each drift scenario damages a converged host by hand, re-runs the deploy (which must report
a change), checks the host is back (the scenario's own check, plus every service active and
HTTPS answering from outside), and a third run reports no changes. Around every scenario the
things a deploy must never lose are compared: the user's home and notebook, the hub
database (its file and its users), and the cookie secret (same bytes, never regenerated).

`make test` runs the scenarios marked QUICK (the others' kinds of damage — a config edited,
a service stopped, a port opened, a secret's mode — are also repaired in tests/lab/test_hub.py's
verify test); `make test-reliability` runs them all
(PJ_RELIABILITY=all). docs/reliability.md is generated from SCENARIOS and FAULTS
(`PJ_UPDATE_GOLDEN=1 pytest tests/unit/test_reliability_doc.py`).
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
from dataclasses import dataclass

import pytest
from deploy_helpers import assert_no_changes, changed_operations, run_deploy

pytestmark = pytest.mark.lab

NB = "/home/admin/notebooks/keep.ipynb"
DB = "/var/lib/jupyterhub/jupyterhub.sqlite"
COOKIE = "/var/lib/jupyterhub/jupyterhub_cookie_secret"
TOKEN = "/etc/pyinfra-jupyter/proxy-auth.env"
HUB_CONFIG = "/etc/jupyterhub/jupyterhub_config.py"
HUB_UNIT = "/etc/systemd/system/jupyterhub.service"
PROXY_UNIT = "/etc/systemd/system/configurable-http-proxy.service"
SERVICES = ("jupyterhub", "configurable-http-proxy", "pyinfra-jupyter-http",
            "pyinfra-jupyter-tls-renew.timer")


@dataclass(frozen=True)
class Scenario:
    name: str
    damage: str  # shell, run as root on the host
    check: str  # shell that prints "ok" when the host is back
    quick: bool = False  # part of the default `make test`


def _same_file(path: str) -> str:
    """A check that `path` has the bytes it had before the damage (saved by the fixture)."""
    return f"cmp -s {path} /root/pj-baseline{path} && echo ok"


SCENARIOS = [
    Scenario("hub config edited", f"echo 'c.JupyterHub.log_level = 10' >> {HUB_CONFIG}",
             _same_file(HUB_CONFIG)),
    Scenario("admin removed from the hub config",
             f"sed -i \"s/^c.Authenticator.admin_users = .*/c.Authenticator.admin_users = []/\" "
             f"{HUB_CONFIG}", _same_file(HUB_CONFIG)),
    Scenario("hub unit file deleted", f"rm {HUB_UNIT} && systemctl daemon-reload",
             _same_file(HUB_UNIT)),
    Scenario("proxy unit file edited", f"sed -i 's/^Restart=.*/Restart=no/' {PROXY_UNIT} && "
             "systemctl daemon-reload", _same_file(PROXY_UNIT)),
    Scenario("drop-in added by hand to the hub unit",
             "mkdir -p /etc/systemd/system/jupyterhub.service.d && printf '[Service]\\n"
             "Environment=PJ_DRIFT=1\\n' > /etc/systemd/system/jupyterhub.service.d/x.conf && "
             "systemctl daemon-reload && systemctl restart jupyterhub",
             "test ! -e /etc/systemd/system/jupyterhub.service.d && "
             "! tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value jupyterhub)/environ "
             "| grep -q PJ_DRIFT && echo ok", quick=True),
    Scenario("hub stopped", "systemctl stop jupyterhub", "systemctl is-active -q jupyterhub && echo ok"),
    Scenario("proxy disabled and stopped", "systemctl disable --now configurable-http-proxy",
             "systemctl is-enabled -q configurable-http-proxy && echo ok"),
    Scenario("the firewall's boot loader masked", "systemctl mask nftables",
             "test \"$(systemctl is-enabled nftables)\" = enabled && echo ok", quick=True),
    Scenario("proxy token file made 0644", f"chmod 644 {TOKEN}",
             f"test \"$(stat -c '%U %a' {TOKEN})\" = 'root 600' && echo ok", quick=True),
    Scenario("proxy token file removed", f"rm {TOKEN}",
             f"test \"$(stat -c '%U %a' {TOKEN})\" = 'root 600' && "
             "curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/hub/api | grep -q 200 "
             "&& echo ok"),
    Scenario("cookie secret made world-readable", f"chmod 644 {COOKIE}",
             f"test \"$(stat -c '%U %a' {COOKIE})\" = 'root 600' && echo ok"),
    Scenario("a hub venv package removed",
             "/opt/jupyterhub/bin/pip uninstall -q -y jupyterhub-idle-culler",
             "/opt/jupyterhub/bin/python -c 'import jupyterhub_idle_culler' && echo ok"),
    Scenario("configurable-http-proxy uninstalled", "rm -rf /opt/configurable-http-proxy",
             "test -x /opt/configurable-http-proxy/bin/configurable-http-proxy && "
             "systemctl is-active -q configurable-http-proxy && echo ok"),
    Scenario("the kernel range opened to everyone",
             "nft insert rule inet pyinfra_jupyter input tcp dport 49152-65535 accept",
             "! nft list table inet pyinfra_jupyter | grep -q '49152-65535 accept' && echo ok"),
    Scenario("our firewall table deleted", "nft delete table inet pyinfra_jupyter",
             "nft list table inet pyinfra_jupyter >/dev/null && echo ok"),
    Scenario("the certificate deleted",
             "rm -f /etc/pyinfra-jupyter/tls/fullchain.pem /etc/pyinfra-jupyter/tls/privkey.pem",
             "test -s /etc/pyinfra-jupyter/tls/fullchain.pem && echo ok"),
    Scenario("a consumer's key copy made world-readable",
             "chmod 644 /etc/pyinfra-jupyter/tls/for/jupyter-proxy/privkey.pem",
             "test \"$(stat -c '%U %a' /etc/pyinfra-jupyter/tls/for/jupyter-proxy/privkey.pem)\" "
             "= 'jupyter-proxy 400' && echo ok"),
    Scenario("the renewal timer disabled",
             "systemctl disable --now pyinfra-jupyter-tls-renew.timer",
             "systemctl is-enabled -q pyinfra-jupyter-tls-renew.timer && echo ok"),
    Scenario("a managed user deleted (home kept)", "userdel admin",
             "id admin >/dev/null && test \"$(stat -c %U /home/admin)\" = admin && echo ok"),
    Scenario("/var/lib/jupyterhub re-owned", "chown nobody:nogroup /var/lib/jupyterhub && "
             "chmod 755 /var/lib/jupyterhub",
             "test \"$(stat -c '%U %a' /var/lib/jupyterhub)\" = 'root 700' && echo ok"),
    Scenario("the site notes deleted", "rm /etc/pyinfra-jupyter/NOTES.md",
             "test -s /etc/pyinfra-jupyter/NOTES.md && echo ok"),
    Scenario("the verify plan edited", "echo '{}' > /etc/pyinfra-jupyter/verify.json",
             _same_file("/etc/pyinfra-jupyter/verify.json")),
]

FAULTS = [
    ("the hub killed with SIGKILL", "systemd restarts it; no deploy needed"),
    ("two deploys at once on the same host", "the second waits for the host's deploy lock, "
     "then finds nothing to do"),
]


def selected(scenarios: list[Scenario]) -> list[Scenario]:
    return scenarios if os.environ.get("PJ_RELIABILITY") == "all" else [
        s for s in scenarios if s.quick]


class Hub:
    """One converged hub host and what must survive every scenario."""

    def __init__(self, lab, tmp_path):
        self.lab, self.tmp = lab, tmp_path
        self.host = lab.new_host()
        self.password_file = tmp_path / "admin.password"
        self.spec = {
            "mode": "hub", "tls": {"type": "self-signed"},
            "users": {"accounts": [{"name": "admin", "admin": True, "generate_password": True,
                                    "password_file": str(self.password_file)}]},
            "hub": {"auth": {"type": "pam"}},
        }
        self.inventory = tmp_path / "inventory.py"

    def deploy(self, spec: dict | None = None) -> str:
        data = {**copy.deepcopy(spec or self.spec), "network": self.lab.network()}
        self.lab.write_inventory(self.inventory, [self.host], data)
        return run_deploy(self.inventory).stdout

    def sh(self, command: str, check: bool = False) -> str:
        return (self.host.run(command, check=check).stdout or "").strip()

    def keepsakes(self) -> dict[str, str]:
        """What no scenario may lose or regenerate."""
        return {
            "home": self.sh("cd /home/admin && find . -type f -exec sha256sum {} + | sort; "
                            "stat -c '%U %a' . notebooks"),
            "notebook": self.sh(f"sha256sum {NB}"),
            "db file": self.sh(f"stat -c %i {DB}"),
            "db users": self.sh(
                "python3 -c \"import sqlite3; print(sqlite3.connect('file:" + DB
                + "?mode=ro', uri=True).execute('select id, name from users order by id')"
                ".fetchall())\""),
            "cookie secret": self.sh(f"sha256sum {COOKIE}"),
        }

    def healthy(self) -> list[str]:
        problems = [u for u in SERVICES if self.sh(f"systemctl is-active {u}") != "active"]
        # A readiness poll (a restarted hub takes a few seconds), not a timing assertion.
        for _ in range(30):
            answer = self.lab.probe(
                f"curl -sk -o /dev/null -w '%{{http_code}}' https://{self.host.address}/hub/login"
            ).stdout.strip()
            if answer == "200":
                break
            time.sleep(1)
        if answer != "200":
            problems.append(f"HTTPS from outside answered {answer!r}")
        return problems


@pytest.fixture(scope="module")
def hub(lab, tmp_path_factory):
    hub = Hub(lab, tmp_path_factory.mktemp("reliability"))
    hub.deploy()
    hub.sh(f"mkdir -p /home/admin/notebooks && printf '{{\"cells\": []}}\\n' > {NB} && "
           "chown -R admin:admin /home/admin/notebooks", check=True)
    # The hub has made its database: put a user in it the way a login would.
    hub.sh("until [ -s " + DB + " ]; do sleep 0.5; done")
    hub.sh("mkdir -p /root/pj-baseline && cp -a --parents /etc/jupyterhub /etc/systemd/system "
           "/etc/pyinfra-jupyter /root/pj-baseline/", check=True)
    return hub


@pytest.mark.parametrize("scenario", selected(SCENARIOS), ids=lambda s: s.name.replace(" ", "-"))
def test_drift_is_repaired_and_nothing_is_lost(hub, scenario):
    before = hub.keepsakes()
    hub.sh(scenario.damage, check=True)
    assert hub.sh(scenario.check) != "ok", f"{scenario.name}: the damage did not take"
    output = hub.deploy()
    assert changed_operations(output), f"{scenario.name}: the deploy saw nothing to repair"
    assert hub.sh(scenario.check) == "ok", f"{scenario.name}: not repaired"
    assert hub.healthy() == [], f"{scenario.name}: not serving after the repair"
    assert hub.keepsakes() == before, f"{scenario.name}: something was lost or regenerated"
    assert_no_changes(hub.deploy())


def test_fault_hub_killed_with_sigkill_comes_back(hub):
    pid = hub.sh("systemctl show -p MainPID --value jupyterhub")
    hub.sh(f"kill -9 {pid}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = hub.sh("systemctl show -p MainPID --value jupyterhub")
        if new not in ("0", pid) and not hub.healthy():
            break
        time.sleep(1)
    assert hub.sh("systemctl show -p MainPID --value jupyterhub") not in ("0", pid)
    assert hub.healthy() == []
    assert_no_changes(hub.deploy())


def test_fault_two_deploys_at_once_never_interleave(hub):
    # The first applies a change (the hub restarts); the second, started a moment later with
    # the same spec, must wait for the host's lock and then find nothing left to do. Had it
    # planned against the old state, it would report the same changes again.
    spec = copy.deepcopy(hub.spec)
    spec["hub"]["idle_culler"] = {"timeout": 5400}
    data = {**spec, "network": hub.lab.network()}
    first_inv, second_inv = hub.tmp / "first.py", hub.tmp / "second.py"
    hub.lab.write_inventory(first_inv, [hub.host], data)
    hub.lab.write_inventory(second_inv, [hub.host], data)
    from deploy_helpers import PYINFRA, REPO

    def start(inventory):
        return subprocess.Popen([str(PYINFRA), "-y", str(inventory), "deploy.py"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = start(first_inv)
    time.sleep(3)  # it has taken the lock: its first command does
    second = start(second_inv)
    out1, _ = first.communicate(timeout=900)
    out2, _ = second.communicate(timeout=900)
    assert first.returncode == 0 and second.returncode == 0, (out1[-3000:], out2[-3000:])
    assert any("jupyterhub_config.py" in op for op in changed_operations(out1))
    assert_no_changes(out2)
    assert "--timeout=5400" in hub.sh(f"cat {HUB_CONFIG}")
    hub.spec = spec
    assert hub.healthy() == []
