"""Security proofs on real hosts: no root from a user, no secret in any output.

- The symlink race: while the deploy re-runs (a password change rewrites configs and
  restarts servers), an unprivileged user loops swapping every path of theirs the deploy
  might touch — and every staged name they can reach — for symlinks to a root-only canary.
  Root never touches the canary. Notebook mode (the user's notebook directory, the config
  and key copies) and hub mode (the account's home, a server start as that user).
- Secrets: a deploy at `-vvv`, a `--dry --diff` preview and a re-run after a change print no
  password, password hash, token, cookie secret, private key or proxy credential, and the
  host's journal holds none either. Also when logging in as a non-root user with sudo (the
  uploads then pass through a directory only that user can enter).
"""

from __future__ import annotations

import copy
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from tests.lab.deploy_helpers import assert_no_changes, run_deploy

pytestmark = pytest.mark.lab

CANARY = "/etc/pj-canary"
CANARY_TEXT = "root-only canary\n"
RACE_SECONDS = 45


def _canary(host) -> str:
    return host.run(f"stat -c '%U %G %a %s %Y' {CANARY}; sha256sum {CANARY}").stdout


def _race(host, user: str, targets: list[str]) -> None:
    """Start, as `user`, a loop that keeps replacing each target with a symlink to the canary
    (bounded: it ends by itself after RACE_SECONDS)."""
    body = "; ".join(f"rm -rf {shlex.quote(t)} 2>/dev/null; ln -sfn {CANARY} {shlex.quote(t)}"
                     " 2>/dev/null" for t in targets)
    script = (f"end=$(( $(date +%s) + {RACE_SECONDS} )); "
              f"while [ $(date +%s) -lt $end ]; do {body}; done")
    host.run(f"systemd-run --unit=pj-race-{user} --uid={user} --collect "
             f"/bin/sh -c {shlex.quote(script)}")


def _stop_race(host, user: str) -> None:
    host.run(f"systemctl stop pj-race-{user} 2>/dev/null; true")


def _write_inventory(lab, host, path, spec, **data):
    return lab.write_inventory(path, [host], {**copy.deepcopy(spec), "network": lab.network(),
                                              **data})


NOTEBOOK = {
    "mode": "notebook",
    "tls": {"type": "self-signed", "http_port": None},
    "firewall": {"backend": "none"},
    "notebook": {"instances": [
        {"name": "eve", "user": "eve", "port": 8200, "password": "Eve-pw-one"},
        {"name": "eve2", "user": "eve", "port": 8201, "root_dir": "/srv/nb/eve2",
         "password": "Eve-pw-two"},
    ]},
}


@pytest.fixture(scope="module")
def host(lab):
    host = lab.new_host()
    host.run(f"printf %s {shlex.quote(CANARY_TEXT)} > {CANARY} && chmod 600 {CANARY}")
    return host


def test_notebook_user_cannot_make_root_touch_a_file(lab, host, tmp_path):
    inventory = _write_inventory(lab, host, tmp_path / "inv.py", NOTEBOOK)
    run_deploy(inventory)
    before = _canary(host)
    # Everything of the user's the deploy reads or writes, and every name a staged copy
    # takes (those in root's directories fail: the loop keeps trying anyway).
    targets = ["/home/eve/notebooks", "/srv/nb/eve2/x",
               "/etc/jupyter/instances/eve/.pyinfra-new.jupyter_server_config.py",
               "/etc/jupyter/instances/eve/jupyter_server_config.py",
               "/etc/pyinfra-jupyter/tls/for/eve/privkey.pem",
               "/etc/pyinfra-jupyter/tls/for/eve/.privkey.pem",
               "/home/eve/.local", "/home/eve/.jupyter"]
    _race(host, "eve", targets)
    try:
        changed = copy.deepcopy(NOTEBOOK)
        for instance in changed["notebook"]["instances"]:
            instance["password"] += "-changed"
        inventory = _write_inventory(lab, host, tmp_path / "inv.py", changed)
        deadline = time.monotonic() + RACE_SECONDS - 5
        runs = 0
        while time.monotonic() < deadline:
            # The user broke their own notebook directory: the run may fail on it, but root
            # must never have followed the link.
            run_deploy(inventory, check=False)
            runs += 1
            assert _canary(host) == before
    finally:
        _stop_race(host, "eve")
    assert runs >= 1
    assert host.run(f"cat {CANARY}").stdout == CANARY_TEXT
    # Once the user stops, the deploy repairs their directory and converges.
    host.run("rm -rf /home/eve/notebooks /home/eve/.local /home/eve/.jupyter /srv/nb/eve2/x")
    run_deploy(inventory)
    assert_no_changes(run_deploy(inventory).stdout)
    assert host.run("stat -c '%U %F' /home/eve/notebooks").stdout.strip() == "eve directory"


def test_hub_user_cannot_make_root_touch_a_file(lab, host, tmp_path):
    password_file = tmp_path / "admin.password"
    spec = {"mode": "hub", "tls": {"type": "self-signed"}, "firewall": {"backend": "none"},
            "users": {"accounts": [{"name": "mallory", "admin": True,
                                    "password_file": str(password_file),
                                    "generate_password": True}]},
            "hub": {"auth": {"type": "pam"}}}
    inventory = _write_inventory(lab, host, tmp_path / "inv.py", spec)
    run_deploy(inventory)
    before = _canary(host)
    targets = ["/home/mallory/.jupyter", "/home/mallory/.local", "/home/mallory/.cache",
               "/home/mallory/.bash_profile", "/home/mallory/notebooks",
               "/etc/jupyterhub/.pyinfra-new.jupyterhub_config.py",
               "/var/lib/jupyterhub/jupyterhub.sqlite"]
    _race(host, "mallory", targets)
    try:
        spec["hub"]["idle_culler"] = {"timeout": 7200}  # a config change: the hub restarts
        inventory = _write_inventory(lab, host, tmp_path / "inv.py", spec)
        run_deploy(inventory)
        # The hub (root) starts the user's server as that user, in the user's home (with
        # the user's links in it the server may well fail: that is the user's own mess).
        client = Path(__file__).with_name("test_hub.py")
        lab.probe(f"{sys.executable} {client} kernel https://{host.address}/ mallory "
                  f"{password_file} 1+1", timeout=300)
        assert _canary(host) == before
    finally:
        _stop_race(host, "mallory")
    assert host.run(f"cat {CANARY}").stdout == CANARY_TEXT


# -- secrets -----------------------------------------------------------------------------------

PROXY_USER, PROXY_PASSWORD = "pjuser", "Proxy-Pass-42"


def _secrets_on_host(host) -> list[str]:
    """Secrets the deploy made on the host itself, read back for the grep."""
    found = []
    for command in ("cat /var/lib/jupyterhub/jupyterhub_cookie_secret",
                    "sed -n 's/^CONFIGPROXY_AUTH_TOKEN=//p' /etc/pyinfra-jupyter/proxy-auth.env",
                    "sed -n 2p /etc/pyinfra-jupyter/tls/privkey.pem",
                    "getent shadow admin | cut -d: -f2",
                    "sed -n 's/.*hashed_password = \"\\(.*\\)\"/\\1/p' "
                    "/etc/jupyter/instances/*/jupyter_server_config.py"):
        for line in host.run(command + " 2>/dev/null; true").stdout.split():
            if len(line) >= 16:
                found.append(line)
    return found


# Secret files the deploy writes (those a site of this test has): a printed sha256 of one
# would let a weak password in it be brute-forced offline, so their digests are secrets too.
SECRET_FILES = ("/etc/jupyterhub/secrets.json", "/var/lib/jupyterhub/jupyterhub_cookie_secret",
                "/etc/pyinfra-jupyter/proxy-auth.env", "/etc/pyinfra-jupyter/network.env",
                "/etc/apt/apt.conf.d/90pyinfra-jupyter-proxy",
                "/etc/pyinfra-jupyter/tls/privkey.pem",
                "/etc/pyinfra-jupyter/tls/for/*/privkey.pem",
                "/etc/jupyter/instances/*/jupyter_server_config.py")


def _secret_file_digests(host) -> list[str]:
    """The sha256 hex digest of each secret file's content on the host."""
    paths = " ".join(SECRET_FILES)
    out = host.run(f"sha256sum {paths} 2>/dev/null; true").stdout
    return [words[0] for words in map(str.split, out.splitlines())
            if words and len(words[0]) == 64]


def _network_with_credentials(lab) -> dict:
    network = lab.network()
    for key in ("http_proxy", "https_proxy"):
        network[key] = network[key].replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@")
    return network


# `make test` runs the sudo login (its output, diffs and journal are the root login's, plus
# the upload staging); `make test-security` runs both (PJ_SECURITY=all).
LOGINS = ["root", "sudo"] if os.environ.get("PJ_SECURITY") == "all" else ["sudo"]


@pytest.mark.parametrize("login", LOGINS)
def test_no_secret_in_output_diffs_or_journal(lab, tmp_path, login):
    host = lab.new_host()
    password_file = tmp_path / "admin.password"
    password_file.write_text("Admin-Pass-1234\n")
    password_file.chmod(0o600)
    extra = {}
    if login == "sudo":
        # A non-root login with sudo, as the example VPS inventories use.
        host.run("useradd -m -s /bin/bash deployer && mkdir -p ~deployer/.ssh && "
                 "cp /root/.ssh/authorized_keys ~deployer/.ssh/ && chown -R deployer "
                 "~deployer/.ssh && echo 'deployer ALL=(ALL) NOPASSWD: ALL' "
                 "> /etc/sudoers.d/deployer && chmod 440 /etc/sudoers.d/deployer")
        extra = {"ssh_user": "deployer", "_sudo": True}
    sites = [
        {"mode": "hub", "tls": {"type": "self-signed"}, "firewall": {"backend": "none"},
         "users": {"accounts": [{"name": "admin", "admin": True,
                                 "password_file": str(password_file)}]},
         "hub": {"auth": {"type": "pam"}}},
        {"mode": "hub", "tls": {"type": "self-signed"}, "firewall": {"backend": "none"},
         "users": {"allow_all": True},
         "hub": {"auth": {"type": "dummy", "password": "Shared-Dummy-Pass"}}},
        {"mode": "notebook", "tls": {"type": "self-signed", "http_port": None},
         "firewall": {"backend": "none"},
         "notebook": {"instances": [{"name": "nb", "user": "nbuser", "port": 8300,
                                     "password": "Notebook-Pass-99"}]}},
    ]
    given = ["Admin-Pass-1234", "Shared-Dummy-Pass", "Notebook-Pass-99", PROXY_PASSWORD,
             f"{PROXY_USER}:{PROXY_PASSWORD}"]
    # A non-root login may not read root's TLS files: a watcher (another user) copies what
    # it can of pyinfra's upload staging while the deploys run.
    host.run("useradd -m watcher")
    watch = ("end=$(( $(date +%s) + 900 )); while [ $(date +%s) -lt $end ]; do "
             "cat /tmp/pyinfra-* ~deployer/.cache/pyinfra-jupyter-upload/* 2>/dev/null "
             ">> /home/watcher/seen; done")
    host.run(f"systemd-run --unit=pj-watch --uid=watcher --collect /bin/sh -c {shlex.quote(watch)}")
    outputs = []
    try:
        for number, spec in enumerate(sites):
            inventory = lab.write_inventory(tmp_path / f"inv{number}.py", [host], {
                **copy.deepcopy(spec), "network": _network_with_credentials(lab), **extra})
            outputs.append(run_deploy(inventory, ["-vvv"]).stdout)
            changed = copy.deepcopy(spec)
            if spec["mode"] == "hub":
                changed["hub"]["idle_culler"] = {"timeout": 7200}
            else:
                changed["notebook"]["instances"][0]["password"] = "Notebook-Pass-100"
                given.append("Notebook-Pass-100")
            inventory = lab.write_inventory(tmp_path / f"inv{number}.py", [host], {
                **changed, "network": _network_with_credentials(lab), **extra})
            outputs.append(run_deploy(inventory, ["--dry", "--diff", "-vvv"]).stdout)
            outputs.append(run_deploy(inventory, ["-vvv"]).stdout)
            made = _secrets_on_host(host)
            assert made, "no secret read back from the host: the grep would prove nothing"
            digests = _secret_file_digests(host)
            assert digests, "no secret file's digest read back: the grep would prove nothing"
            given += made + digests
    finally:
        host.run("systemctl stop pj-watch 2>/dev/null; true")
    journal = host.run("journalctl --no-pager -o cat").stdout
    seen = host.run("cat /home/watcher/seen 2>/dev/null; true").stdout
    for secret in set(given):
        for number, text in enumerate(outputs):
            assert secret not in text, f"a secret shows in pyinfra's output (run {number})"
        assert secret not in journal, "a secret is in the host's journal"
        assert secret not in seen, "another user read a secret from pyinfra's upload staging"
    if login == "sudo":
        staging = host.run("stat -c '%U %a' ~deployer/.cache/pyinfra-jupyter-upload").stdout
        assert staging.strip() == "deployer 700"
