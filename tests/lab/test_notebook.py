"""Notebook mode on a real lab host: two instances, idempotence, HTTPS logins, kernels, changes.

One host is deployed once (then again: no changes) and every later step changes the same
host, as a user editing their spec would. Clients run from the lab's probe namespace: this
file is also the client script there (`python test_notebook.py login|kernel URL ...`).
"""

from __future__ import annotations

import json
import sys

# -- the client (runs in the probe namespace; needs only requests + websocket-client) --------


def _login(base: str, password: str, verify):
    import requests

    session = requests.Session()
    page = session.get(f"{base}login", verify=verify, timeout=60)
    page.raise_for_status()
    if 'name="password"' not in page.text:
        raise SystemExit(f"no password field on {base}login")
    xsrf = session.cookies.get("_xsrf")
    answer = session.post(
        f"{base}login?next={base}api/status",
        data={"password": password, "_xsrf": xsrf},
        verify=verify,
        allow_redirects=False,
        timeout=60,
    )
    logged_in = answer.status_code in (301, 302) and session.get(
        f"{base}api/status", verify=verify, timeout=60
    ).status_code == 200
    return session, xsrf, logged_in, answer.status_code


def _run_code(base: str, session, xsrf: str, code: str) -> str:
    from jupyter_client_lab import Kernel

    kernel = Kernel(base, session, xsrf)
    try:
        return kernel.run(code)
    finally:
        kernel.close()


def client(argv: list[str]) -> int:
    """`login URL PASSWORD` prints {"logged_in", "status"}; `kernel URL PASSWORD CODE` the result."""
    what, base, password = argv[:3]
    verify = False  # the lab's self-signed certificate; the test checks TLS separately
    import urllib3

    urllib3.disable_warnings()
    session, xsrf, logged_in, status = _login(base, password, verify)
    result = {"logged_in": logged_in, "status": status}
    if what == "kernel" and logged_in:
        result["result"] = _run_code(base, session, xsrf, argv[3])
    print(json.dumps(result))
    return 0



# -- the tests (controller side) -------------------------------------------------------------

try:
    import pytest
except ImportError:  # in the probe namespace, this file is only the client
    pytest = None

if pytest is not None:
    import copy
    import re
    import subprocess
    import time
    from pathlib import Path

    from deploy_helpers import (
        PYINFRA,
        REPO,
        assert_no_changes,
        changed_operations,
        detected_changes,
        run_deploy,
    )

    pytestmark = pytest.mark.lab

    PASSWORD_A, PASSWORD_A2, PASSWORD_B = "alice-Pw-one", "alice-Pw-two", "bob-Pw-three"
    SITE = {
        "mode": "notebook",
        "tls": {"type": "self-signed", "http_port": None},
        # This test is about the notebook servers; the firewall has its own lab tests.
        "firewall": {"backend": "none"},
        "notebook": {
            "instances": [
                {"name": "alice", "user": "alice", "port": 8100, "ip": "*",
                 "password": PASSWORD_A},
                {"name": "lab-b", "user": "bob", "port": 9999,
                 "root_dir": "/srv/notebooks/bob", "base_url": "/bob/",
                 "password": PASSWORD_B, "packages": ["six"]},
            ],
        },
    }
    URL = {"alice": "https://{address}:8100/", "lab-b": "https://{address}:9999/bob/"}
    CLIENT = Path(__file__).resolve()
    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    class Site:
        """The lab host, its spec as the user edits it, and the last deploy's output."""

        def __init__(self, lab, tmp_path, distro: str | None = None, arch: str | None = None):
            self.lab = lab
            self.host = lab.new_host(distro, arch)
            self.spec = copy.deepcopy(SITE)
            self.inventory = tmp_path / "inventory.py"
            self.figures: dict[str, float] = {}

        def deploy(self, label: str) -> str:
            network = self.lab.network()
            self.lab.write_inventory(self.inventory, [self.host], {**self.spec, "network": network})
            start = time.monotonic()
            output = run_deploy(self.inventory).stdout
            self.figures[label] = time.monotonic() - start
            for secret in (PASSWORD_A, PASSWORD_A2, PASSWORD_B):
                assert secret not in output, "a password shows in pyinfra's output"
            return output

        def preview(self) -> str:
            """`pyinfra --dry --diff` of the current spec: what a sysadmin reviews first."""
            self.lab.write_inventory(self.inventory, [self.host],
                                     {**self.spec, "network": self.lab.network()})
            # Without -y: pyinfra prints its "Detected changes" table only then.
            dry = subprocess.run([str(PYINFRA), "--dry", "--diff", str(self.inventory),
                                  "deploy.py"], cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
            assert dry.returncode == 0, dry.stdout[-3000:]
            return _ANSI.sub("", dry.stdout)

        def sh(self, command: str) -> str:
            return self.host.run(command).stdout.strip()

        def main_pid(self, name: str) -> int:
            return int(self.sh(f"systemctl show -p MainPID --value jupyter-notebook@{name}"))

        def client(self, *args: str) -> dict:
            url = URL[args[1]].format(address=self.host.address)
            command = " ".join(
                [sys.executable, str(CLIENT), args[0], url, *(f"'{a}'" for a in args[2:])]
            )
            result = self.lab.probe(command)
            assert result.returncode == 0, result.stderr[-2000:]
            return json.loads(result.stdout.strip().splitlines()[-1])

    @pytest.fixture(scope="module")
    def site(lab, tmp_path_factory):
        site = Site(lab, tmp_path_factory.mktemp("notebook"))
        yield site
        print("\nnotebook deploy figures (s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in site.figures.items()))

    @pytest.fixture(scope="module")
    def testinfra_host(site):
        import testinfra

        return testinfra.get_host(site.host.ssh_url)

    def test_two_instances_deploy_then_nothing_changes(site):
        site.deploy("first run")
        assert_no_changes(site.deploy("second run"))

    def test_instances_run_hardened_as_their_users(site, testinfra_host):
        host = testinfra_host
        for name, user, port in (("alice", "alice", 8100), ("lab-b", "bob", 9999)):
            unit = host.service(f"jupyter-notebook@{name}")
            assert unit.is_running and unit.is_enabled
            assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
            # The config (it holds the hash) is readable by its user only, in a directory
            # only root can change; the user reads its own copy of the TLS key.
            config = host.file(f"/etc/jupyter/instances/{name}/jupyter_server_config.py")
            assert config.mode == 0o400 and config.user == user
            assert config.contains("argon2:")
            folder = host.file(f"/etc/jupyter/instances/{name}")
            assert (folder.user, folder.mode) == ("root", 0o755)
            assert host.run(f"ps -o user= -p {site.main_pid(name)}").stdout.strip() == user
            key = host.file(f"/etc/pyinfra-jupyter/tls/for/{user}/privkey.pem")
            assert (key.user, key.mode) == (user, 0o400)
        # Neither reads the other's config or key, nor the root-only original.
        for reader, other in (("alice", "bob"), ("bob", "alice")):
            for path in (f"/etc/pyinfra-jupyter/tls/for/{other}/privkey.pem",
                         "/etc/pyinfra-jupyter/tls/privkey.pem",
                         "/etc/jupyter/instances/" + ("lab-b" if other == "bob" else "alice")
                         + "/jupyter_server_config.py"):
                assert host.run(f"runuser -u {reader} -- cat {path}").rc != 0, (reader, path)
        assert host.file("/srv/notebooks/bob").user == "bob"
        assert host.file("/srv/notebooks").user == "root"
        assert host.run("/opt/jupyter/lab-b/bin/python -c 'import six'").rc == 0
        for secret in (PASSWORD_A, PASSWORD_B):
            found = host.run(f"grep -rlF '{secret}' /etc /opt/jupyter /home /srv || true")
            assert found.stdout.strip() == "", f"a plaintext password is on the host: {found}"
        # The units are hardened and log to the journal (seed 002's nohup is gone).
        show = host.run("systemctl show jupyter-notebook@alice -p ProtectSystem "
                        "-p NoNewPrivileges -p PrivateTmp -p Restart").stdout
        for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "Restart=on-failure"):
            assert line in show
        assert "is running at" in host.run("journalctl -u jupyter-notebook@alice").stdout

    def test_https_login_and_a_kernel(site):
        for name, password in (("alice", PASSWORD_A), ("lab-b", PASSWORD_B)):
            refused = site.client("login", name, "not-the-password")
            assert refused == {"logged_in": False, "status": 401}
            ran = site.client("kernel", name, password, "1+1")
            assert ran["logged_in"] and ran["result"] == "2"
        # TLS 1.2 is the floor: a TLS 1.1 handshake is refused.
        old = site.lab.probe(
            f"echo | openssl s_client -tls1_1 -connect {site.host.address}:8100 2>&1"
        ).stdout
        assert "alert protocol version" in old or "no protocols available" in old, old

    def test_password_change_restarts_only_that_instance(site):
        before = {name: site.main_pid(name) for name in ("alice", "lab-b")}
        site.spec["notebook"]["instances"][0]["password"] = PASSWORD_A2
        # The dry-run diff names the config that will change, but never its password hash.
        preview = site.preview()
        assert "jupyter_server_config.py" in preview
        assert "contents not shown" in preview
        for secret in (PASSWORD_A, PASSWORD_A2, "argon2:$argon2"):
            assert secret not in preview, "a secret shows in `pyinfra --dry --diff`"
        output = site.deploy("password change")
        changed = changed_operations(output)
        assert changed and all("lab-b" not in op and "bob" not in op for op in changed), changed
        assert site.main_pid("lab-b") == before["lab-b"]
        assert site.main_pid("alice") != before["alice"]
        assert not site.client("login", "alice", PASSWORD_A)["logged_in"]
        assert site.client("login", "alice", PASSWORD_A2)["logged_in"]
        assert_no_changes(site.deploy("rerun after password change"))

    def test_removed_instance_is_gone_and_the_other_untouched(site, testinfra_host):
        host = testinfra_host
        host.run("runuser -u bob -- touch /srv/notebooks/bob/keep-me.ipynb")
        alice_pid = site.main_pid("alice")
        site.spec["notebook"]["instances"] = site.spec["notebook"]["instances"][:1]
        # The preview of a removal names exactly what the real run then changes.
        planned = detected_changes(site.preview())
        assert site.sh("test -d /opt/jupyter/lab-b && echo kept; true") == "kept"  # dry run
        real = changed_operations(site.deploy("instance removed"))
        assert sorted(planned) == sorted(real), (planned, real)
        assert not host.service("jupyter-notebook@lab-b").is_running
        assert not host.service("jupyter-notebook@lab-b").is_enabled
        assert not host.file("/etc/jupyter/instances/lab-b").exists
        assert not host.file("/etc/systemd/system/jupyter-notebook@lab-b.service.d").exists
        assert not host.file("/opt/jupyter/lab-b").exists
        assert not host.socket("tcp://0.0.0.0:9999").is_listening
        assert host.file("/srv/notebooks/bob/keep-me.ipynb").exists  # nothing lost
        assert site.main_pid("alice") == alice_pid
        assert site.client("login", "alice", PASSWORD_A2)["logged_in"]
        assert_no_changes(site.deploy("rerun after removal"))


    def test_an_added_instance_is_previewed_exactly_then_serves(site):
        """Adding an instance (lab-b again, as the spec first had it): the preview names
        exactly what the real run changes, shows its config, and no password."""
        site.spec["notebook"]["instances"] = copy.deepcopy(SITE["notebook"]["instances"])
        dry = site.preview()
        planned = detected_changes(dry)
        assert any("/opt/jupyter/lab-b" in name for name in planned), planned
        assert "/srv/notebooks/bob" in dry  # the new instance's config, as a diff
        assert PASSWORD_B not in dry
        assert site.sh("test -e /opt/jupyter/lab-b && echo made; true") == ""  # dry run
        real = changed_operations(site.deploy("instance added"))
        assert sorted(planned) == sorted(real), (planned, real)
        assert site.client("login", "lab-b", PASSWORD_B)["logged_in"]
        assert_no_changes(site.deploy("rerun after adding"))


if __name__ == "__main__":
    sys.exit(client(sys.argv[1:]))
