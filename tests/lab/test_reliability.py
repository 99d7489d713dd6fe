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

from tests.support import self_signed_pem

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
    mode: str = "hub"  # the site it damages: "hub" or "notebook"


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

NB_NAME = "alice"
NB_CONFIG = f"/etc/jupyter/instances/{NB_NAME}/jupyter_server_config.py"
NB_UNIT = f"jupyter-notebook@{NB_NAME}"
NB_TEMPLATE = "/etc/systemd/system/jupyter-notebook@.service"
NB_VENV = f"/opt/jupyter/{NB_NAME}"
NB_PORT = 8100
NB_FILE = f"/home/{NB_NAME}/notebooks/keep.ipynb"
NB_KEY = f"/etc/pyinfra-jupyter/tls/for/{NB_NAME}/privkey.pem"
CERT = "/etc/pyinfra-jupyter/tls/fullchain.pem"
# The pin the venv drift scenario moves away from (and the deploy moves back to).
SIX = "1.17.0"


NOTEBOOK_SCENARIOS = [
    Scenario("an instance's config edited",
             f"echo 'c.ServerApp.shutdown_no_activity_timeout = 1' >> {NB_CONFIG}",
             _same_file(NB_CONFIG), quick=True, mode="notebook"),
    Scenario("an instance's config (it holds the password hash) made world-readable",
             f"chmod 644 {NB_CONFIG}",
             f"test \"$(stat -c '%U %a' {NB_CONFIG})\" = '{NB_NAME} 400' && echo ok",
             mode="notebook"),
    Scenario("a stray instance added by hand",
             "mkdir -p /etc/systemd/system/jupyter-notebook@stray.service.d && "
             "printf '[Service]\\nUser=nobody\\n' > "
             "/etc/systemd/system/jupyter-notebook@stray.service.d/x.conf && "
             "systemctl daemon-reload",
             "test ! -e /etc/systemd/system/jupyter-notebook@stray.service.d && echo ok",
             mode="notebook"),
    Scenario("the instances' unit template deleted",
             f"rm {NB_TEMPLATE} && systemctl daemon-reload", _same_file(NB_TEMPLATE),
             mode="notebook"),
    Scenario("an instance stopped", f"systemctl stop {NB_UNIT}",
             f"systemctl is-active -q {NB_UNIT} && echo ok", mode="notebook"),
    Scenario("an instance masked (and stopped)", f"systemctl mask --now {NB_UNIT}",
             f"test \"$(systemctl is-enabled {NB_UNIT})\" = enabled && "
             f"systemctl is-active -q {NB_UNIT} && echo ok", mode="notebook"),
    Scenario("an instance's venv deleted", f"rm -rf {NB_VENV}",
             f"{NB_VENV}/bin/python -c 'import jupyterlab, six' && "
             f"systemctl is-active -q {NB_UNIT} && echo ok", mode="notebook"),
    Scenario("a venv package downgraded",
             f"set -a && . /etc/pyinfra-jupyter/network.env && set +a && "
             f"{NB_VENV}/bin/pip install -q --disable-pip-version-check 'six==1.16.0'",
             f"test \"$({NB_VENV}/bin/python -c 'import six; print(six.__version__)')\" "
             f"= {SIX} && echo ok", mode="notebook"),
    # (nftables.service only loads the rules at boot: the deploy loads our table itself and
    # never starts the service, whose start and stop flush every table of the host.)
    Scenario("the whole firewall ruleset flushed", "nft flush ruleset",
             "nft list table inet pyinfra_jupyter >/dev/null && echo ok", mode="notebook"),
    Scenario("the certificate replaced by an expired one",
             f"cp /root/pj-expired/fullchain.pem {CERT} && "
             "cp /root/pj-expired/privkey.pem /etc/pyinfra-jupyter/tls/privkey.pem",
             f"openssl x509 -checkend 86400 -noout -in {CERT} >/dev/null && "
             f"echo | openssl s_client -connect 127.0.0.1:{NB_PORT} 2>/dev/null "
             "| openssl x509 -checkend 86400 -noout >/dev/null && echo ok",
             quick=True, mode="notebook"),
    Scenario("the instance's key copy re-owned to root", f"chown root:root {NB_KEY}",
             f"test \"$(stat -c '%U %a' {NB_KEY})\" = '{NB_NAME} 400' && echo ok",
             mode="notebook"),
]
SCENARIOS += NOTEBOOK_SCENARIOS


@dataclass(frozen=True)
class Fault:
    name: str
    expected: str
    quick: bool = False  # part of the default `make test`


FAULTS = [
    Fault("the hub killed with SIGKILL", "systemd restarts it; no deploy needed", quick=True),
    Fault("two deploys at once on the same host", "the second waits for the host's deploy "
          "lock, then finds nothing to do", quick=True),
    Fault("the host rebooted", "everything comes back enabled and serving (the firewall's "
          "rules too), nothing lost; the next run changes nothing", quick=True),
    Fault("the SSH connection killed in the middle of a run", "the run fails; the hub keeps "
          "serving; the next run gets the host's lock at once and converges", quick=True),
    Fault("the disk holding the hub's config full", "the run fails naming the file and "
          "`No space left on device`; the live config untouched, the hub serving; once "
          "there is space the next run converges"),
    Fault("the package proxy unreachable", "the run fails naming the proxy; the running "
          "service untouched; once the proxy is back the next run converges"),
]


def selected(items: list) -> list:
    return items if os.environ.get("PJ_RELIABILITY") == "all" else [
        s for s in items if s.quick]


def fault(name: str):
    """The fault test of that name: in `make test` only if FAULTS marks it quick (the others
    are deselected there, by tests/lab/conftest.py, and run in `make test-reliability`)."""
    entry = next(f for f in FAULTS if f.name == name)
    return pytest.mark.reliability_all if not entry.quick else pytest.mark.reliability_quick


class Site:
    """One converged lab host and what must survive every scenario."""

    services: tuple[str, ...] = ()
    url = ""  # HTTPS, asked from outside the host

    def __init__(self, lab, tmp_path):
        self.lab, self.tmp = lab, tmp_path
        self.host = lab.new_host()
        self.inventory = tmp_path / "inventory.py"
        self.spec: dict = {}

    def write_inventory(self, spec: dict | None = None, path=None):
        data = {**copy.deepcopy(spec or self.spec), "network": self.lab.network()}
        return self.lab.write_inventory(path or self.inventory, [self.host], data)

    def deploy(self, spec: dict | None = None, check: bool = True) -> str:
        self.write_inventory(spec)
        return run_deploy(self.inventory, check=check).stdout

    def sh(self, command: str, check: bool = False) -> str:
        return (self.host.run(command, check=check).stdout or "").strip()

    def keepsakes(self) -> dict[str, str]:
        raise NotImplementedError

    def healthy(self) -> list[str]:
        problems = [u for u in self.services if self.sh(f"systemctl is-active {u}") != "active"]
        if self.sh("nft list table inet pyinfra_jupyter >/dev/null && echo ok") != "ok":
            problems.append("our firewall table is missing")
        # A readiness poll (a restarted server takes a few seconds), not a timing assertion.
        url = self.url.format(address=self.host.address)
        for _ in range(30):
            answer = self.lab.probe(
                f"curl -sk -o /dev/null -w '%{{http_code}}' {url}").stdout.strip()
            if answer == "200":
                break
            time.sleep(1)
        if answer != "200":
            problems.append(f"HTTPS from outside answered {answer!r}")
        return problems


class Hub(Site):
    services = SERVICES
    url = "https://{address}/hub/login"

    def __init__(self, lab, tmp_path):
        super().__init__(lab, tmp_path)
        self.password_file = tmp_path / "admin.password"
        self.spec = {
            "mode": "hub", "tls": {"type": "self-signed"},
            "users": {"accounts": [{"name": "admin", "admin": True, "generate_password": True,
                                    "password_file": str(self.password_file)}]},
            "hub": {"auth": {"type": "pam"}},
        }

    def keepsakes(self) -> dict[str, str]:
        """What no scenario may lose or regenerate."""
        return {
            "home": _lines(self.sh("cd /home/admin && find . -type f -exec sha256sum {} + "
                                   "| sort; stat -c '%U %a' . notebooks")),
            "notebook": self.sh(f"sha256sum {NB}"),
            "db file": self.sh(f"stat -c %i {DB}"),
            "db users": self.sh(
                "python3 -c \"import sqlite3; print(sqlite3.connect('file:" + DB
                + "?mode=ro', uri=True).execute('select id, name from users order by id')"
                ".fetchall())\""),
            "cookie secret": self.sh(f"sha256sum {COOKIE}"),
        }


class Notebook(Site):
    services = (NB_UNIT,)
    url = f"https://{{address}}:{NB_PORT}/login"

    def __init__(self, lab, tmp_path):
        super().__init__(lab, tmp_path)
        self.spec = {
            "mode": "notebook", "tls": {"type": "self-signed", "http_port": None},
            "notebook": {"instances": [
                {"name": NB_NAME, "user": NB_NAME, "port": NB_PORT, "ip": "*",
                 "password": "alice-Pw-reliable", "packages": [f"six=={SIX}"]}]},
        }

    def keepsakes(self) -> dict[str, str]:
        return {
            "home": _lines(self.sh(f"cd /home/{NB_NAME} && find . -type f -exec sha256sum "
                                   "{} + | sort; stat -c '%U %a' . notebooks")),
            "notebook": self.sh(f"sha256sum {NB_FILE}"),
            # The password's hash is kept while it still verifies: never re-hashed.
            "password hash": self.sh(f"grep hashed_password {NB_CONFIG}"),
        }


def _lines(text: str) -> frozenset[str]:
    """A home as the set of its files' digests (and modes): what a server adds on its own
    (~/.jupyter/migrated at a first start) is no loss; a file changed or gone is."""
    return frozenset(text.splitlines())


def lost(before: dict, after: dict) -> dict:
    """What of `before` is not in `after`: a home's files gone or changed, any other value
    different."""
    out = {}
    for key, value in before.items():
        if isinstance(value, frozenset):
            if value - after[key]:
                out[key] = sorted(value - after[key])
        elif after[key] != value:
            out[key] = (value, after[key])
    return out


def _baseline(site: Site) -> None:
    site.sh("mkdir -p /root/pj-baseline && cp -a --parents /etc/systemd/system "
            "/etc/pyinfra-jupyter /root/pj-baseline/ && if [ -d /etc/jupyterhub ]; then "
            "cp -a --parents /etc/jupyterhub /root/pj-baseline/; fi && if [ -d /etc/jupyter ]; "
            "then cp -a --parents /etc/jupyter /root/pj-baseline/; fi", check=True)


@pytest.fixture(scope="module")
def hub(lab, tmp_path_factory):
    hub = Hub(lab, tmp_path_factory.mktemp("reliability"))
    hub.deploy()
    hub.sh(f"mkdir -p /home/admin/notebooks && printf '{{\"cells\": []}}\\n' > {NB} && "
           "chown -R admin:admin /home/admin/notebooks", check=True)
    # The hub has made its database: put a user in it the way a login would.
    hub.sh("until [ -s " + DB + " ]; do sleep 0.5; done")
    _baseline(hub)
    return hub


@pytest.fixture(scope="module")
def notebook(lab, tmp_path_factory):
    site = Notebook(lab, tmp_path_factory.mktemp("reliability-notebook"))
    site.deploy()
    site.sh(f"printf '{{\"cells\": []}}\\n' > {NB_FILE} && "
            f"chown {NB_NAME}:{NB_NAME} {NB_FILE}", check=True)
    _baseline(site)
    cert, key = self_signed_pem("expired.invalid", expired=True)
    site.sh(f"mkdir -p -m 700 /root/pj-expired && printf %s '{cert}' > "
            f"/root/pj-expired/fullchain.pem && printf %s '{key}' > /root/pj-expired/privkey.pem",
            check=True)
    assert site.healthy() == []
    return site


@pytest.mark.parametrize("scenario", selected(SCENARIOS),
                         ids=lambda s: s.name.replace(" ", "-"))
def test_drift_is_repaired_and_nothing_is_lost(request, scenario):
    site = request.getfixturevalue(scenario.mode)
    before = site.keepsakes()
    site.sh(scenario.damage, check=True)
    assert site.sh(scenario.check) != "ok", f"{scenario.name}: the damage did not take"
    output = site.deploy()
    assert changed_operations(output), f"{scenario.name}: the deploy saw nothing to repair"
    assert site.sh(scenario.check) == "ok", f"{scenario.name}: not repaired"
    assert site.healthy() == [], f"{scenario.name}: not serving after the repair"
    assert lost(before, site.keepsakes()) == {}, f"{scenario.name}: lost or regenerated"
    assert_no_changes(site.deploy())


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


@fault("the host rebooted")
def test_fault_host_rebooted_comes_back_enabled_and_serving(hub):
    before = hub.keepsakes()
    hub.sh("touch /run/pj-before-reboot", check=True)  # /run is a tmpfs: a boot empties it
    hub.lab.lab.reboot(hub.host.name)
    assert hub.sh("test -e /run/pj-before-reboot || echo rebooted") == "rebooted"
    assert hub.healthy() == []
    assert lost(before, hub.keepsakes()) == {}
    assert_no_changes(hub.deploy())


def _deploy_in_background(inventory) -> subprocess.Popen:
    from deploy_helpers import PYINFRA, REPO

    return subprocess.Popen([str(PYINFRA), "-y", str(inventory), "deploy.py"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _lock_is_free(site: Site, seconds: int = 20) -> bool:
    """The host's deploy lock can be taken (a readiness poll, bounded)."""
    return site.sh(f"timeout {seconds} flock /run/pyinfra-jupyter.lock true && echo free") == (
        "free")


@fault("the SSH connection killed in the middle of a run")
def test_fault_ssh_killed_in_the_middle_of_a_run(hub):
    before = hub.keepsakes()
    spec = copy.deepcopy(hub.spec)
    spec["hub"]["idle_culler"] = {"timeout": 4800}
    hub.write_inventory(spec, hub.tmp / "killed.py")
    run = _deploy_in_background(hub.tmp / "killed.py")
    seen, started = [], 0
    for line in run.stdout:  # the operations phase: cut the connection at its second step
        seen.append(line)
        if "Starting operation" in line:
            started += 1
            if started == 2:
                hub.sh("pkill -KILL -f '^sshd: root@'")
                break
    rest, _ = run.communicate(timeout=600)
    output = "".join(seen) + rest
    assert started == 2, output[-3000:]
    assert run.returncode != 0, "the run survived its connection being killed:\n" + output[-3000:]
    assert hub.healthy() == []
    # The killed run's lock goes with its connection, not after the lease.
    assert _lock_is_free(hub)
    assert any("jupyterhub_config.py" in op for op in changed_operations(hub.deploy(spec)))
    hub.spec = spec
    assert hub.healthy() == []
    assert lost(before, hub.keepsakes()) == {}
    assert_no_changes(hub.deploy())


@fault("the disk holding the hub's config full")
def test_fault_disk_full_leaves_the_live_config(hub):
    before = hub.keepsakes()
    live = hub.sh(f"sha256sum {HUB_CONFIG}")
    pid = hub.sh("systemctl show -p MainPID --value jupyterhub")
    # /etc/jupyterhub moved onto a file system of its own, then filled up.
    hub.sh("d=$(mktemp -d) && cp -a /etc/jupyterhub/. $d/ && "
           "mount -t tmpfs -o size=512k pj-full /etc/jupyterhub && cp -a $d/. /etc/jupyterhub/ && "
           "rm -rf $d && { dd if=/dev/zero of=/etc/jupyterhub/.filler bs=4k 2>/dev/null; true; }",
           check=True)
    try:
        spec = copy.deepcopy(hub.spec)
        spec["hub"]["idle_culler"] = {"timeout": 4200}
        output = hub.deploy(spec, check=False)
        assert "No space left on device" in output and HUB_CONFIG in output, output[-3000:]
        assert hub.sh(f"sha256sum {HUB_CONFIG}") == live, "the live config was touched"
        assert hub.sh("ls -A /etc/jupyterhub | grep pyinfra-new || echo none") == "none"
        assert hub.sh("systemctl show -p MainPID --value jupyterhub") == pid
        assert hub.healthy() == []

        hub.sh("rm /etc/jupyterhub/.filler", check=True)
        assert any("jupyterhub_config.py" in op for op in changed_operations(hub.deploy(spec)))
        hub.spec = spec
        assert_no_changes(hub.deploy())
    finally:
        # Back onto the host's own file system, with what the last run wrote.
        hub.sh("d=$(mktemp -d) && rm -f /etc/jupyterhub/.filler && cp -a /etc/jupyterhub/. $d/ "
               "&& umount /etc/jupyterhub && cp -a $d/. /etc/jupyterhub/ && rm -rf $d",
               check=True)
    assert hub.healthy() == []
    assert lost(before, hub.keepsakes()) == {}
    assert_no_changes(hub.deploy())


# Connections from the host to its package proxy (the lab's, on 127.0.0.1:3128) refused.
_BLOCK_PROXY = ("nft add table inet pj_fault && nft add chain inet pj_fault out "
                "'{ type filter hook output priority 0; }' && "
                "nft add rule inet pj_fault out ip daddr 127.0.0.1 tcp dport 3128 "
                "reject with tcp reset")


@fault("the package proxy unreachable")
def test_fault_package_proxy_unreachable(hub):
    before = hub.keepsakes()
    pid = hub.sh("systemctl show -p MainPID --value jupyterhub")
    spec = copy.deepcopy(hub.spec)
    spec["python"] = {**spec.get("python", {}), "packages": ["six==1.16.0"]}
    hub.sh(_BLOCK_PROXY, check=True)
    try:
        output = hub.deploy(spec, check=False)
        assert "package proxy http://127.0.0.1:3128" in output, output[-3000:]
        assert hub.sh("systemctl show -p MainPID --value jupyterhub") == pid
        assert hub.healthy() == []
    finally:
        hub.sh("nft delete table inet pj_fault")
    hub.deploy(spec)
    hub.spec = spec
    assert hub.sh("/opt/jupyterhub/bin/python -c 'import six; print(six.__version__)'") == (
        "1.16.0")
    assert hub.healthy() == []
    assert lost(before, hub.keepsakes()) == {}
    assert_no_changes(hub.deploy())
