"""LDAP logins for real: Debian's slapd in the lab namespace, the hub's LDAPAuthenticator.

slapd (OpenLDAP) serves a small directory the test loads (ou=people with alice, bob and
carol; cn=jupyter-users with alice and carol) over LDAPS on the lab's bridge address, with a
certificate from a CA made here, which the hub host trusts only through the spec's
`network.ca_certificates`. A hub is deployed with `hub.auth.type = ldap` (twice: the second
run changes nothing); from the probe namespace, alice logs in over HTTPS and runs `1+1` in a
kernel, in a Unix account with a private home made at her first login; a wrong password and
bob (not in the allowed group) are refused. The hub's own authenticator refuses a server
whose certificate is from an untrusted CA or for another name. No user's LDAP password shows
in pyinfra's output, the host's journal or slapd's log.

Needs Debian's `slapd` on the controller (tests/install_tools.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import assert_no_changes
from login_support import LoginSite

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.ldap_support import BIND_DN_TEMPLATE, CA, Directory, slapd_conf  # noqa: E402

pytestmark = pytest.mark.lab

CLIENT = Path(__file__).resolve().with_name("test_hub.py")  # the hub login + kernel client
GROUP = "jupyter-users"
SLAPD = shutil.which("slapd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
SLAPADD = shutil.which("slapadd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

# The hub's authenticator, built from the deployed config as the hub builds it, against
# another port: refused (None) or an error name, never a login.
CHECK_AUTH = """
import asyncio, sys
from traitlets.config.loader import PyFileConfigLoader
config = PyFileConfigLoader("jupyterhub_config.py", "/etc/jupyterhub").load_config()
config.LDAPAuthenticator.server_port = int(sys.argv[1])
auth = config.JupyterHub.authenticator_class(config=config)
user, password = sys.stdin.read().split("\\n", 1)
try:
    print(asyncio.run(auth.get_authenticated_user(None, {"username": user,
                                                         "password": password.strip()})))
except Exception as exc:
    print("refused:", type(exc).__name__, exc)
"""


class LdapSite(LoginSite):
    def __init__(self, lab, tmp: Path):
        super().__init__(lab, tmp)
        self.address = lab.lab_address
        self.passwords = {u: f"{u}-{secrets.token_urlsafe(12)}" for u in ("alice", "bob", "carol", "daemon")}
        # daemon: a directory entry named after a system account of the host (UID 1).
        self.directory = Directory(self.passwords, {GROUP: ["alice", "carol", "daemon"]})
        self.ca = CA("pyinfra-jupyter lab LDAP CA")
        self.spec = {
            "mode": "hub",
            "tls": {"type": "self-signed"},
            "hub": {"auth": {
                "type": "ldap", "server_address": self.address, "server_port": 636,
                "use_ssl": True, "bind_dn_template": [BIND_DN_TEMPLATE],
                "allowed_groups": [Directory.group_dn(GROUP)],
            }},
        }

    def start_slapd(self) -> None:
        work = self.tmp / "slapd"
        cert, key = self.ca.server(work / "tls", [self.address])
        conf = slapd_conf(work, cert, key)
        (work / "people.ldif").write_text(self.directory.ldif())
        subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(work / "people.ldif")],
                       check=True, capture_output=True, text=True)
        # -d 256: in the foreground, logging connections, binds and results (never passwords).
        self.lab.run_service("slapd", [SLAPD, "-d", "256", "-f", str(conf),
                                       "-h", f"ldaps://{self.address}:636/"], wait_port=636)

    def network(self) -> dict:
        network = self.lab.network()
        network["ca_certificates"] = [*network["ca_certificates"], self.ca.pem]
        return network

    def login(self, user: str, password: str, *args: str) -> subprocess.CompletedProcess:
        """The hub client in the probe namespace: log in over HTTPS, start the server, run
        `args` (kernel CODE)."""
        secret = self.tmp / f"{user}.password"
        secret.write_text(password)
        secret.chmod(0o600)
        status = self.lab.status()
        return subprocess.run(
            ["ip", "netns", "exec", status["probe_netns"], sys.executable, str(CLIENT),
             "kernel", f"https://{self.host.address}/", user, str(secret), *args],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})

    def authenticate_on_host(self, port: int, user: str) -> str:
        """The hub's authenticator (its deployed config and class) against `port`."""
        self.host.run("cat > /tmp/check_ldap_auth.py <<'EOF'\n" + CHECK_AUTH + "EOF")
        result = subprocess.run(
            ["nsenter", "-t", str(self.host.pid), "-a", "--", "env",
             # As the hub's unit sets it (templates/hub/jupyterhub.service.j2).
             "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
             "/opt/jupyterhub/bin/python", "/tmp/check_ldap_auth.py", str(port)],
            input=f"{user}\n{self.passwords[user]}\n", capture_output=True, text=True,
            timeout=120)
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    assert SLAPD and SLAPADD, "Debian's slapd is missing (tests/install_tools.py installs it)"
    site = LdapSite(lab, tmp_path_factory.mktemp("ldap"))
    site.start_slapd()
    yield site
    site.report("LDAP hub deploy figures")
    lab.lab.stop_service("slapd")


def test_ldap_hub_deploys_then_nothing_changes(site):
    site.deploy("first run")
    assert_no_changes(site.deploy("second run"))
    # The LDAP CA is trusted through the spec (the lab's base does not know it).
    anchor = site.sh("cat /usr/local/share/ca-certificates/pyinfra-jupyter.crt")
    assert site.ca.pem.strip() in anchor
    assert site.sh("systemctl is-active jupyterhub") == "active"


def test_a_user_of_the_allowed_group_logs_in_and_runs_code(site):
    assert site.sh("getent passwd alice || true") == ""  # no account before her first login
    ran = site.login("alice", site.passwords["alice"], "1+1")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == {"result": "2"}
    # Her first login made her Unix account, with a home only she can read; her server
    # runs as her.
    assert site.sh("getent passwd alice").split(":")[5:] == ["/home/alice", "/bin/bash"]
    assert site.sh("stat -c '%U %G %a' /home/alice") == "alice alice 700"
    assert site.sh("pgrep -u alice -c || true") != "0"
    # Her bind went over LDAPS to the lab's slapd.
    log = site.lab.lab.service_log("slapd").read_text()
    assert 'BIND dn="uid=alice,ou=people,dc=lab,dc=test"' in log and "TLS established" in log


def test_a_wrong_password_is_refused(site):
    refused = site.login("carol", site.passwords["alice"])
    assert refused.returncode != 0
    assert "login as carol refused: HTTP 403" in refused.stderr, refused.stderr[-2000:]
    assert site.sh("getent passwd carol || true") == ""


def test_a_user_outside_the_allowed_group_is_refused(site):
    refused = site.login("bob", site.passwords["bob"])
    assert refused.returncode != 0
    assert "login as bob refused: HTTP 403" in refused.stderr, refused.stderr[-2000:]
    assert site.sh("getent passwd bob || true") == ""  # no account for someone refused
    log = site.lab.lab.service_log("slapd").read_text()
    assert 'BIND dn="uid=bob,ou=people,dc=lab,dc=test"' in log  # his password was right


def test_a_directory_user_named_after_a_system_account_is_refused(site):
    """daemon's password is right and it is in the allowed group: the spawner would run its
    server as the host's `daemon`. Refused by the hub's system-account guard."""
    refused = site.login("daemon", site.passwords["daemon"])
    assert refused.returncode != 0
    assert "login as daemon refused: HTTP 403" in refused.stderr, refused.stderr[-2000:]
    log = site.lab.lab.service_log("slapd").read_text()
    assert 'BIND dn="uid=daemon,ou=people,dc=lab,dc=test"' in log  # LDAP said yes
    assert "Refused daemon: a system account of this host" in site.sh(
        "journalctl --no-pager -u jupyterhub -o cat")
    assert site.sh("pgrep -u daemon -c || true") == "0"


def test_a_server_with_an_untrusted_or_misnamed_certificate_is_refused(site):
    """The hub's own authenticator (config and class as deployed) against TLS listeners on
    the lab address: one with a certificate from a CA the host does not trust, one from the
    trusted lab CA but for another name. Both refused at the handshake, before any bind."""
    work = site.tmp / "bad-tls"
    untrusted = CA("an untrusted CA").server(work / "untrusted", [site.address])
    misnamed = site.ca.server(work / "misnamed", ["ldap.elsewhere.test"])
    for port, (cert, key) in ((6361, untrusted), (6362, misnamed)):
        site.lab.run_service(f"tls-{port}", [
            "openssl", "s_server", "-quiet", "-accept", f"{site.address}:{port}",
            "-cert", str(cert), "-key", str(key)], wait_port=port)
    try:
        chain = site.authenticate_on_host(6361, "alice")
        assert chain.startswith("refused:") and "CERTIFICATE_VERIFY_FAILED" in chain, chain
        name = site.authenticate_on_host(6362, "alice")
        assert name.startswith("refused:") and "doesn't match" in name, name
        for port in (6361, 6362):  # nothing of the password reached either listener
            log = site.lab.lab.service_log(f"tls-{port}").read_text(errors="replace")
            assert site.passwords["alice"] not in log
        # The real directory, same code: alice gets in.
        assert "'name': 'alice'" in site.authenticate_on_host(636, "alice")
    finally:
        for port in (6361, 6362):
            site.lab.lab.stop_service(f"tls-{port}")


def test_no_ldap_password_shows_in_pyinfra_output_the_journal_or_slapds_log(site):
    journal = site.sh("journalctl --no-pager -o cat")
    slapd_log = site.lab.lab.service_log("slapd").read_text(errors="replace")
    assert "BIND dn=" in slapd_log and "RESULT tag=97 err=49" in slapd_log  # refused binds
    for user, password in site.passwords.items():
        for where, text in (("pyinfra output", "\n".join(site.outputs)),
                            ("the host's journal", journal), ("slapd's log", slapd_log)):
            assert password not in text, f"{user}'s password in {where}"
