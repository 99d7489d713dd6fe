"""Native sign-up logins and what users' servers get, for real, on one lab hub.

One host, changed step by step (each step deployed twice: the second run changes nothing):

1. `hub.auth.type = native` (open sign-up off, the spec's default), an `admin` account
   with admin rights. From the probe namespace, over HTTPS: the admin signs up (admins are
   pre-approved), dora signs up and cannot log in before approval, the admin approves her
   at /hub/authorize/dora (NativeAuthenticator 1.3's toggle), then she logs in, her first
   login makes her Unix account (private home) and she runs `1+1` in a kernel.
2. `hub.spawner = systemd` with `mem_limit` 512M and `cpu_limit` 0.5, plus
   `python.packages` numpy and `python.os_packages` libopenblas0: dora's and emil's servers
   run as transient units jupyter-NAME-singleuser whose MemoryMax / CPUQuotaPerSecUSec carry
   the limits (that the kernel enforces them cannot be shown here: the lab's hosts see the
   machine's cgroup v1 controllers read-only; docs/hub.md); a file dora writes in /tmp is not
   in emil's /tmp; emil cannot open dora's home; a kernel imports numpy, names the BLAS it
   links and multiplies matrices, and finds the OS's OpenBLAS.

No password shows in pyinfra's output. This file is also the client script run in the
probe namespace (`python test_login_native_and_servers.py COMMAND URL USER PWFILE ...`).
"""

from __future__ import annotations

import json
import sys
import time

# -- the client (runs in the probe namespace) -----------------------------------------------


def _session():
    import requests
    import urllib3

    urllib3.disable_warnings()
    session = requests.Session()
    session.verify = False  # the lab's self-signed certificate (TLS is checked elsewhere)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify; no proxy either
    return session


def signup(base: str, user: str, password: str) -> dict:
    """POST /hub/signup with the _xsrf cookie; the page's alert class and message."""
    import re

    session = _session()
    page = session.get(f"{base}hub/signup", timeout=120)
    page.raise_for_status()
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    answer = session.post(f"{base}hub/signup", timeout=120, data={
        "username": user, "signup_password": password,
        "signup_password_confirmation": password, "_xsrf": xsrf})
    alert = re.search(r'class="alert (alert-\w+)"[^>]*>(.*?)</div>', answer.text, re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", alert.group(2)).split()) if alert else ""
    return {"status": answer.status_code, "alert": alert.group(1) if alert else None,
            "message": text or answer.text[-500:]}


def login(base: str, user: str, password: str):
    """(session, None) once logged in, else (None, the page's error)."""
    import re

    session = _session()
    session.get(f"{base}hub/login", timeout=120).raise_for_status()
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    answer = session.post(f"{base}hub/login", allow_redirects=False, timeout=120,
                          data={"username": user, "password": password, "_xsrf": xsrf})
    if answer.status_code in (302, 303):
        return session, None
    error = re.search(r'login_error[^>]*>\s*(.*?)\s*<', answer.text, re.S)
    return None, f"HTTP {answer.status_code}: " + (error.group(1) if error else "?")


def client(argv: list[str]) -> dict:
    from test_hub import _kernel, _start_server

    what, base, user, password_file = argv[:4]
    with open(password_file) as handle:
        password = handle.read().strip()
    if what == "signup":
        return signup(base, user, password)
    session, error = login(base, user, password)
    if what == "login":
        return {"ok": session is not None, "error": error}
    if session is None:
        raise SystemExit(f"login as {user} refused: {error}")
    if what == "approve":  # ... argv[4]'s sign-up, as this (admin) user
        target = argv[4]
        toggled = session.get(f"{base}hub/authorize/{target}", allow_redirects=False,
                              timeout=120)
        area = session.get(f"{base}hub/authorize", timeout=120)
        return {"status": toggled.status_code, "location": toggled.headers.get("location"),
                "area": area.status_code}
    if what == "stop":
        xsrf = session.cookies.get("_xsrf", path="/hub/")
        stopped = session.delete(f"{base}hub/api/users/{user}/server", timeout=300,
                                 headers={"X-XSRFToken": xsrf})
        for _ in range(120):
            model = session.get(f"{base}hub/api/users/{user}", timeout=60,
                                headers={"X-XSRFToken": xsrf}).json()
            if not model.get("servers"):
                break
            time.sleep(1)
        return {"status": stopped.status_code, "servers": model.get("servers")}
    # kernel: run each of argv[4:] in one kernel, in order
    _start_server(base, session, user)
    kernel = _kernel(base, session, user)
    try:
        return {"results": [kernel.run(code) for code in argv[4:]]}
    finally:
        kernel.close()


# -- the tests (controller side) -------------------------------------------------------------

try:
    import pytest
except ImportError:  # in the probe namespace, this file is only the client
    pytest = None

if pytest is not None and __name__ != "__main__":
    import os
    import secrets
    import subprocess
    from pathlib import Path

    from deploy_helpers import assert_no_changes
    from login_support import LoginSite

    pytestmark = pytest.mark.lab

    CLIENT = Path(__file__).resolve()
    NUMPY = "numpy==2.2.6"  # cp311 manylinux wheels: Debian 12's Python 3.11

    class Site(LoginSite):
        def __init__(self, lab, tmp: Path):
            super().__init__(lab, tmp)
            self.password_file = tmp / "admin.password"
            self.passwords = {u: f"{u}-{secrets.token_urlsafe(12)}" for u in ("dora", "emil")}
            self.spec = {
                "mode": "hub",
                "tls": {"type": "self-signed"},
                "users": {"accounts": [{
                    "name": "admin", "admin": True, "password_file": str(self.password_file),
                    "generate_password": True}]},
                "hub": {"auth": {"type": "native"}},
            }

        def client(self, what: str, user: str, *args: str, check: bool = True) -> dict:
            if user == "admin":
                secret = self.password_file
            else:
                secret = self.tmp / f"{user}.password"
                secret.write_text(self.passwords[user])
                secret.chmod(0o600)
            status = self.lab.status()
            result = subprocess.run(
                ["ip", "netns", "exec", status["probe_netns"], sys.executable, str(CLIENT),
                 what, self.url, user, str(secret), *args],
                capture_output=True, text=True, timeout=900,
                env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})
            if check:
                assert result.returncode == 0, result.stderr[-3000:]
                return json.loads(result.stdout.strip().splitlines()[-1])
            return {"returncode": result.returncode, "stderr": result.stderr}

        def kernel(self, user: str, *code: str) -> list[str]:
            return self.client("kernel", user, *code)["results"]

    @pytest.fixture(scope="module")
    def site(lab, tmp_path_factory):
        site = Site(lab, tmp_path_factory.mktemp("native"))
        yield site
        site.report("native/servers hub deploy figures")

    def test_native_hub_deploys_then_nothing_changes(site):
        site.deploy("native, first run")
        assert_no_changes(site.deploy("native, second run"))
        config = site.sh("cat /etc/jupyterhub/jupyterhub_config.py")
        assert "c.JupyterHub.authenticator_class = refuse_system_accounts(LocalNativeAuthenticator)" in config
        assert "c.NativeAuthenticator.open_signup = False" in config

    def test_a_sign_up_waits_for_an_admins_approval_then_logs_in_and_runs_code(site):
        # The admin (a spec account with admin rights) signs up: pre-approved.
        admin = site.client("signup", "admin")
        assert admin["alert"] == "alert-success", admin
        assert admin["message"].startswith("The signup was successful!"), admin
        dora = site.client("signup", "dora")
        assert dora == {"status": 200, "alert": "alert-info",
                        "message": "Your information has been sent to the admin."}, dora
        # Not approved yet: no login, no Unix account.
        refused = site.client("login", "dora")
        assert not refused["ok"] and "has not been authorized" in refused["error"], refused
        assert site.sh("getent passwd dora || true") == ""
        # A non-admin cannot approve anyone (emil signs up, tries to approve himself: not
        # logged in, so he cannot even reach the page).
        site.client("signup", "emil")
        assert not site.client("login", "emil")["ok"]
        # The admin approves dora at /hub/authorize/dora.
        approved = site.client("approve", "admin", "dora")
        assert approved["status"] == 302 and approved["location"].endswith("/hub/authorize#dora")
        assert approved["area"] == 200
        assert site.client("login", "dora")["ok"]
        assert site.kernel("dora", "1+1") == ["2"]
        # Her first login made her Unix account, with a home only she can read; her server
        # runs as her.
        assert site.sh("getent passwd dora").split(":")[5:] == ["/home/dora", "/bin/bash"]
        assert site.sh("stat -c '%U %G %a' /home/dora") == "dora dora 700"
        assert site.sh("pgrep -u dora -c || true") != "0"
        # emil, still unapproved, has no account.
        assert site.sh("getent passwd emil || true") == ""

    def test_a_sign_up_named_after_a_system_account_cannot_log_in(site):
        site.passwords["daemon"] = f"daemon-{secrets.token_urlsafe(12)}"
        assert site.client("signup", "daemon")["alert"] == "alert-info"
        site.client("approve", "admin", "daemon")
        assert not site.client("login", "daemon")["ok"]
        assert "Refused daemon: a system account of this host" in site.sh(
            "journalctl --no-pager -u jupyterhub -o cat")
        assert site.sh("pgrep -u daemon -c || true") == "0"

    def test_systemd_spawner_and_packages_deploy_then_nothing_changes(site):
        site.client("approve", "admin", "emil")
        site.client("stop", "dora")  # her local-process server, before the spawner changes
        site.spec["hub"]["spawner"] = {"type": "systemd", "mem_limit": "512M", "cpu_limit": 0.5}
        site.spec["python"] = {"packages": [NUMPY], "os_packages": ["libopenblas0"]}
        site.deploy("systemd + packages, first run")
        assert_no_changes(site.deploy("systemd + packages, second run"))

    UNIT = "jupyter-dora-singleuser"

    def test_servers_run_as_transient_units_carrying_the_limits(site):
        assert site.kernel("dora", "1+1") == ["2"]
        shown = dict(line.split("=", 1) for line in site.sh(
            f"systemctl show {UNIT} -p ActiveState -p User -p MemoryMax -p CPUQuotaPerSecUSec "
            "-p ControlGroup -p PrivateTmp -p PrivateDevices -p NoNewPrivileges").splitlines())
        print("\nunit:", shown)
        assert shown["ActiveState"] == "active"
        assert shown["User"] in ("dora", site.sh("id -u dora"))  # systemdspawner: the UID
        assert shown["MemoryMax"] == str(512 * 1024 * 1024)
        assert shown["CPUQuotaPerSecUSec"] == "500ms"
        assert shown["PrivateTmp"] == shown["PrivateDevices"] == "yes"
        assert shown["NoNewPrivileges"] == "yes"  # disable_user_sudo
        assert shown["ControlGroup"] == f"/system.slice/{UNIT}.service"
        # Her server runs inside that unit, as her.
        server = site.sh(f"systemctl show -p MainPID --value {UNIT}")
        assert site.sh(f"stat -c %U /proc/{server}") == "dora"
        assert f"/system.slice/{UNIT}.service" in site.sh(f"cat /proc/{server}/cgroup")

    def test_private_tmp_and_homes_between_users(site):
        note = f"note-{secrets.token_hex(4)}"
        wrote = site.kernel("dora", f"open('/tmp/{note}', 'w').write('dora'); "
                                    f"import os; '{note}' in os.listdir('/tmp')")
        assert wrote == ["True"]
        seen = site.kernel("emil",
                           f"import os; os.path.exists('/tmp/{note}')",
                           "open('/home/dora/.bashrc').read()",
                           "os.listdir('/home/dora')",
                           "open('/home/emil/mine', 'w').write('x')")
        assert seen == ["False", "error: PermissionError", "error: PermissionError", "1"], seen
        # Both servers are units of their own.
        assert site.sh("systemctl is-active jupyter-emil-singleuser") == "active"
        # The host's /tmp holds neither user's file (each unit has its own).
        assert site.sh(f"ls /tmp/{note} 2>/dev/null || echo none") == "none"

    def test_a_kernel_gets_numpy_and_the_os_blas(site):
        results = site.kernel(
            "emil",
            "import numpy, io, contextlib; numpy.__version__",
            "buf = io.StringIO()\nwith contextlib.redirect_stdout(buf): numpy.show_config()\n"
            "[l.strip() for l in buf.getvalue().splitlines() if 'name' in l]",
            "int((numpy.arange(4).reshape(2, 2) @ numpy.eye(2, dtype=int) * 3).sum())",
            "import ctypes.util; ctypes.util.find_library('openblas')",
            "ctypes.CDLL(ctypes.util.find_library('openblas')).openblas_get_config().__class__"
            ".__name__",
        )
        print("\nnumpy:", results)
        version, blas, product, os_blas, loaded = results
        assert version == repr(NUMPY.split("==")[1])
        assert "openblas" in blas.lower(), blas
        assert product == "18"
        assert os_blas == "'libopenblas.so.0'"
        assert loaded == "'int'"
        assert site.sh("dpkg-query -W -f '${Status}' libopenblas0") == "install ok installed"

    def test_no_password_in_pyinfra_output(site):
        output = "\n".join(site.outputs)
        for password in [site.password_file.read_text().strip(), *site.passwords.values()]:
            assert password not in output


if __name__ == "__main__":
    print(json.dumps(client(sys.argv[1:])))
