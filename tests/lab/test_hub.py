"""Hub mode on a real lab host: deploy twice, services, a real login over HTTPS, restarts.

One host is deployed with the default hub site (then again: no changes); every later step
changes the same host. Clients run in the lab's probe namespace, outside the host, and
reach it over the lab bridge on the public port only: this file is also the client script
there (`python test_hub.py kernel|session|browser URL USER PASSWORD_FILE ...`), needing
requests + websocket-client (and Playwright with Debian's chromium for `browser`).
"""

from __future__ import annotations

import json
import sys
import time

# -- the client (runs in the probe namespace) -----------------------------------------------


def _hub_login(base: str, user: str, password: str):
    """Log in at /hub/login; return the session (cookies) or raise SystemExit."""
    import requests
    import urllib3

    urllib3.disable_warnings()
    session = requests.Session()
    session.verify = False  # the lab's self-signed certificate; TLS is checked separately
    page = session.get(f"{base}hub/login", verify=False, timeout=120)
    page.raise_for_status()
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    answer = session.post(
        f"{base}hub/login",
        data={"username": user, "password": password, "_xsrf": xsrf},
        verify=False, allow_redirects=False, timeout=120,
    )
    if answer.status_code not in (302, 303):
        raise SystemExit(f"login as {user} refused: HTTP {answer.status_code}")
    return session


def _start_server(base: str, session, user: str) -> None:
    """Start the user's server the way the hub's home page does, and wait for it."""
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    started = session.post(f"{base}hub/api/users/{user}/server", headers={"X-XSRFToken": xsrf},
                           verify=False, timeout=300)
    if started.status_code not in (201, 202, 400):  # 400: already running
        raise SystemExit(f"starting the server failed: HTTP {started.status_code} {started.text}")
    while True:  # no deadline here: the hub's own start_timeout bounds it
        model = session.get(f"{base}hub/api/users/{user}", headers={"X-XSRFToken": xsrf},
                            verify=False, timeout=120).json()
        server = model.get("servers", {}).get("", {})
        if server.get("ready"):
            return
        if not server.get("pending") and not server.get("ready"):
            raise SystemExit(f"the server of {user} did not start: {model}")
        time.sleep(1)


def _kernel(base: str, session, user: str):
    """A kernel of the user's server, through the proxy (jupyter_client.Kernel)."""
    from jupyter_client_lab import Kernel

    server = f"{base}user/{user}/"
    page = session.get(f"{server}lab", verify=False, timeout=120)  # sets the server's _xsrf
    page.raise_for_status()
    xsrf = session.cookies.get("_xsrf", path=f"/user/{user}/")
    return Kernel(server, session, xsrf, origin=base.rstrip("/"))


def _browser(base: str, user: str, password: str, screenshot: str) -> dict:
    """Log in with headless Chromium, land in JupyterLab, run a cell; save a screenshot."""
    import tempfile

    from browser_support import chromium, run_one_plus_one
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = chromium(p, profile)
        page = browser.new_page()
        page.set_default_timeout(300_000)
        page.goto(f"{base}hub/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("[type=submit]")
        page.wait_for_url(f"**/user/{user}/lab**")
        page.wait_for_selector(".jp-Launcher")
        try:
            result = run_one_plus_one(page)
        except Exception:
            page.screenshot(path=screenshot.replace(".png", "-failed.png"), full_page=True)
            raise
        page.screenshot(path=screenshot, full_page=True)
        url = page.url
        browser.close()
    return {"result": result, "url": url}


def client(argv: list[str]) -> int:
    """`kernel URL USER PWFILE CODE` prints {"result"}; `session URL USER PWFILE` keeps a
    kernel open: prints "ready" after `x = 41`, then `x + 1`'s result once a line arrives on
    stdin; `browser URL USER PWFILE PNG` prints {"result", "url"}."""
    what, base, user, password_file = argv[:4]
    with open(password_file) as handle:
        password = handle.read().strip()
    if what == "browser":
        print(json.dumps(_browser(base, user, password, argv[4])))
        return 0
    session = _hub_login(base, user, password)
    _start_server(base, session, user)
    kernel = _kernel(base, session, user)
    try:
        if what == "kernel":
            print(json.dumps({"result": kernel.run(argv[4])}))
        else:
            kernel.run("x = 41")
            print("ready", flush=True)
            sys.stdin.readline()
            print(json.dumps({"result": kernel.run("x + 1")}), flush=True)
    finally:
        kernel.close()
    return 0


# -- the tests (controller side) -------------------------------------------------------------

try:
    import pytest
except ImportError:  # in the probe namespace, this file is only the client
    pytest = None

if pytest is not None:
    import copy
    import os
    import subprocess
    from pathlib import Path

    from deploy_helpers import (
        PYINFRA,
        assert_no_changes,
        changed_operations,
        detected_changes,
        results,
        run_deploy,
    )

    pytestmark = pytest.mark.lab

    CLIENT = Path(__file__).resolve()
    ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

    class Site:
        """The lab host, its spec as the user edits it, and the last deploy's output."""

        def __init__(self, lab, tmp_path, distro: str | None = None):
            self.lab = lab
            self.host = lab.new_host(distro)
            self.password_file = tmp_path / "admin.password"
            # The default site (group_data/all.py), with the admin's password file here.
            self.spec = {
                "mode": "hub",
                "tls": {"type": "self-signed"},
                "users": {"accounts": [{
                    "name": "admin", "admin": True, "password_file": str(self.password_file),
                    "generate_password": True,
                }]},
                "hub": {"auth": {"type": "pam"}, "idle_culler": {"timeout": 3600}},
            }
            self.inventory = tmp_path / "inventory.py"
            self.figures: dict[str, float] = {}

        @property
        def url(self) -> str:
            return f"https://{self.host.address}/"

        def deploy(self, label: str) -> str:
            network = self.lab.network()
            self.lab.write_inventory(self.inventory, [self.host],
                                     {**copy.deepcopy(self.spec), "network": network})
            start = time.monotonic()
            output = run_deploy(self.inventory).stdout
            self.figures[label] = time.monotonic() - start
            if self.password_file.exists():
                assert self.password_file.read_text().strip() not in output
            return output

        def sh(self, command: str) -> str:
            return self.host.run(command).stdout.strip()

        def main_pid(self, unit: str) -> int:
            return int(self.sh(f"systemctl show -p MainPID --value {unit}"))

        def probe_argv(self, *args: str) -> list[str]:
            status = self.lab.status()
            return ["ip", "netns", "exec", status["probe_netns"], sys.executable, str(CLIENT),
                    args[0], self.url, "admin", str(self.password_file), *args[1:]]

        def client(self, *args: str) -> dict:
            result = subprocess.run(self.probe_argv(*args), capture_output=True, text=True,
                                    env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})
            assert result.returncode == 0, result.stderr[-3000:]
            return json.loads(result.stdout.strip().splitlines()[-1])

    @pytest.fixture(scope="module")
    def site(lab, tmp_path_factory):
        site = Site(lab, tmp_path_factory.mktemp("hub"))
        yield site
        print("\nhub deploy figures (s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in site.figures.items()))

    @pytest.fixture(scope="module")
    def testinfra_host(site):
        import testinfra

        return testinfra.get_host(site.host.ssh_url)

    def test_default_hub_deploys_then_nothing_changes(site):
        site.deploy("first run")
        assert site.password_file.stat().st_mode & 0o777 == 0o600
        assert_no_changes(site.deploy("second run"))

    def test_a_no_op_rerun_costs_two_remote_commands(site):
        # Deterministic (unlike its time, which bench/bench_noop.py reports): the facts are
        # asked once per run in two batches — what the host is (with the deploy lock and
        # the SSH connection), then the state of everything the items and the firewall
        # read — and no operation runs a command to find out.
        output = run_deploy(site.inventory, ("--debug",)).stdout
        assert_no_changes(output)
        operations = [name for name in results(output) if not name.startswith("Grand total")]
        commands = [line.split("(pty=False) ", 1)[-1][:100] for line in output.splitlines()
                    if "Running command on" in line]
        assert len(operations) >= 40
        assert len(commands) == 2, commands

    def test_services_ports_and_secret_files(site, testinfra_host):
        host = testinfra_host
        for unit in ("jupyterhub", "configurable-http-proxy"):
            assert host.service(unit).is_running and host.service(unit).is_enabled
        listening = host.run("ss -Hltn").stdout
        assert any(f":{443} " in line and "127.0.0.1" not in line for line in listening.splitlines())
        # Hub API and proxy API on loopback only.
        for port in (8081, 8001):
            assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
            assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
            assert not host.socket(f"tcp://:::{port}").is_listening
        for path in ("/var/lib/jupyterhub/jupyterhub_cookie_secret",
                     "/etc/pyinfra-jupyter/proxy-auth.env"):
            secret = host.file(path)
            assert secret.mode == 0o600 and secret.user == "root" and secret.size > 0, path
        assert host.file("/var/lib/jupyterhub").mode == 0o700
        # The proxy runs unprivileged, binds 443 with one capability and reads its own copy of
        # the TLS key; the original is root's only, and no hub user can read either.
        proxy_pid = site.main_pid("configurable-http-proxy")
        assert host.run(f"ps -o user= -p {proxy_pid}").stdout.strip() == "jupyter-proxy"
        assert host.user("jupyter-proxy").groups == ["jupyter-proxy"]
        copy = host.file("/etc/pyinfra-jupyter/tls/for/jupyter-proxy/privkey.pem")
        assert (copy.user, copy.mode) == ("jupyter-proxy", 0o400)
        original = host.file("/etc/pyinfra-jupyter/tls/privkey.pem")
        assert original.user == "root" and original.mode & 0o077 == 0
        for path in ("/etc/pyinfra-jupyter/tls/privkey.pem", copy.path):
            assert host.run(f"runuser -u admin -- cat {path}").rc != 0, path
        assert host.run(f"ps -o user= -p {site.main_pid('jupyterhub')}").stdout.strip() == "root"
        # From outside, only the public ports answer.
        probe = site.lab.probe(
            "python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(5); "
            f"sys.exit(s.connect_ex((\"{site.host.address}\", 8001)) == 0)'"
        )
        assert probe.returncode == 0, "the proxy API answers from outside the host"
        # The admin's password is nowhere on the host in clear.
        password = site.password_file.read_text().strip()
        found = host.run(f"grep -rlF '{password}' /etc /opt /var/lib/jupyterhub /root || true")
        assert found.stdout.strip() == ""

    def test_pam_user_runs_code_over_https_through_the_proxy(site):
        assert site.client("kernel", "1+1") == {"result": "2"}
        # Port 80 redirects to HTTPS; TLS 1.2 is the floor (tls.min_version).
        redirect = site.lab.probe(
            f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' http://{site.host.address}/hub/"
        ).stdout
        assert redirect.startswith("301 https://"), redirect
        old = site.lab.probe(
            f"echo | openssl s_client -tls1_1 -connect {site.host.address}:443 2>&1"
        ).stdout
        assert "alert protocol version" in old or "no protocols available" in old, old

    def test_browser_login_lands_in_jupyterlab_and_runs_a_cell(site):
        # `make test` installs Debian's chromium (tests/install_tools.py); never skipped.
        assert Path("/usr/bin/chromium").exists(), "Debian's chromium is missing"
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "hub-jupyterlab.png"
        ran = site.client("browser", str(screenshot))
        assert ran["result"] == "2" and "/user/admin/lab" in ran["url"]
        assert screenshot.stat().st_size > 10_000

    def test_spec_change_restarts_only_the_hub_and_sessions_survive(site):
        proxy_pid, hub_pid = (site.main_pid(u) for u in ("configurable-http-proxy", "jupyterhub"))
        session = subprocess.Popen(
            site.probe_argv("session"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "no_proxy": "*"},
        )
        try:
            assert session.stdout.readline().strip() == "ready", session.stderr.read()
            site.spec["hub"]["idle_culler"]["timeout"] = 7200
            output = site.deploy("idle timeout change")
            changed = changed_operations(output)
            assert any("jupyterhub_config.py" in op for op in changed), changed
            assert not any("configurable-http-proxy" in op for op in changed), changed
            assert site.main_pid("configurable-http-proxy") == proxy_pid
            assert site.main_pid("jupyterhub") != hub_pid
            out, err = session.communicate("go\n")
            assert json.loads(out.strip().splitlines()[-1]) == {"result": "42"}, err[-2000:]
        finally:
            if session.poll() is None:
                session.kill()
        assert "--timeout=7200" in site.sh("cat /etc/jupyterhub/jupyterhub_config.py")
        assert_no_changes(site.deploy("rerun after change"))

    def test_dry_run_lists_exactly_what_the_real_run_then_changes(site):
        site.spec["hub"]["idle_culler"]["timeout"] = 5400
        site.spec["firewall"] = {"allow": [{"port": 9100, "sources": ["10.0.0.0/8"],
                                            "comment": "metrics"}]}
        dry = _preview(site)
        planned = detected_changes(dry)
        assert site.password_file.read_text().strip() not in dry
        # The config's diff is shown; the dry run changed nothing on the host.
        assert "--timeout=5400" in dry
        assert "--timeout=5400" not in site.sh("cat /etc/jupyterhub/jupyterhub_config.py")
        real = changed_operations(site.deploy("after the dry run"))
        assert sorted(planned) == sorted(real), (planned, real)
        assert_no_changes(site.deploy("rerun after the dry run"))

    def _preview(site) -> str:
        """`pyinfra --dry --diff` of the spec as it is now (without -y: pyinfra prints its
        "Detected changes" table only then)."""
        site.lab.write_inventory(site.inventory, [site.host],
                                 {**copy.deepcopy(site.spec), "network": site.lab.network()})
        dry = subprocess.run([str(PYINFRA), "--dry", "--diff", str(site.inventory), "deploy.py"],
                             cwd=CLIENT.parents[2], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        assert dry.returncode == 0, dry.stdout[-3000:]
        return dry.stdout

    def _self_signed_pair(tmp: Path, address: str) -> tuple[str, str]:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=hub.lab.test", "-addext", f"subjectAltName=IP:{address}",
                        "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                       check=True, capture_output=True)
        return (tmp / "cert.pem").read_text(), (tmp / "key.pem").read_text()

    def test_preview_of_port_auth_and_tls_changes_is_what_the_real_run_changes(
            site, tmp_path):
        """Each edit alone: the dry run names exactly the operations the real run then
        changes, shows the diffs of what it rewrites, and shows no secret; then the site goes
        back (itself previewed), and a converged host previews no change at all."""
        original = copy.deepcopy(site.spec)
        cert, key = _self_signed_pair(tmp_path, site.host.address)
        edits = {
            "public port": (lambda s: s.update(proxy={"port": 8443}), "8443"),
            "auth type": (lambda s: s["hub"].update(auth={"type": "native"}),
                          "NativeAuthenticator"),
            "TLS type": (lambda s: s.update(tls={"type": "provided", "cert_pem": cert,
                                                 "key_pem": key}), "provided"),
            "back to the original site": (lambda s: (s.clear(), s.update(original)), None),
        }
        secrets = [site.password_file.read_text().strip(),
                   "".join(key.strip().splitlines()[1:-1])[:64]]
        for label, (edit, shown) in edits.items():
            edit(site.spec)
            dry = _preview(site)
            planned = detected_changes(dry)
            assert planned, f"{label}: the preview shows no change"
            if shown:
                assert shown in dry, f"{label}: the preview does not show {shown!r}"
            for secret in secrets:
                assert secret not in dry, f"{label}: a secret shows in the preview"
            real = changed_operations(site.deploy(f"after previewing the {label}"))
            assert sorted(planned) == sorted(real), (label, planned, real)
        assert site.spec == original
        assert detected_changes(_preview(site)) == []

    def _verify(site) -> tuple[int, dict]:
        """`pyinfra-jupyter verify --json`, run from the probe namespace (outside the host,
        SSH to the host's address through its firewall), as a monitoring box would."""
        inventory = site.inventory.with_name("verify-inventory.py")
        site.lab.write_inventory(
            inventory, [site.host], {**copy.deepcopy(site.spec), "network": site.lab.network()},
            per_host={site.host.name: {"ssh_hostname": site.host.address, "ssh_port": 22}})
        result = subprocess.run(
            ["ip", "netns", "exec", site.lab.status()["probe_netns"], sys.executable, "-m",
             "pyinfra_jupyter.cli", "verify", str(inventory), "--json"],
            capture_output=True, text=True, cwd=CLIENT.parents[2],
            env={**os.environ, "no_proxy": "*", "NO_PROXY": "*"})
        report = json.loads(result.stdout[result.stdout.index("{"):])
        return result.returncode, {r["check"]: r for r in report["hosts"][site.host.name]}

    def _users(site) -> list[str]:
        return json.loads(site.sh(
            "/opt/jupyterhub/bin/python -c \"import json, sqlite3; print(json.dumps(sorted(r[0] "
            "for r in sqlite3.connect('/var/lib/jupyterhub/jupyterhub.sqlite')"
            ".execute('select name from users'))))\""))

    def _cli(site, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pyinfra_jupyter.cli", *args],
                              capture_output=True, text=True, cwd=CLIENT.parents[2])

    def test_backup_then_restore_brings_the_hub_database_back(site, tmp_path):
        # A row the hub's config would not make again: what only the database knows.
        site.sh("/opt/jupyterhub/bin/python -c \"import sqlite3; c = sqlite3.connect("
                "'/var/lib/jupyterhub/jupyterhub.sqlite'); c.execute(\\\"insert into users "
                "(name, admin, cookie_id) values ('restore-marker', 0, 'f00dcafe')\\\"); "
                "c.commit()\"")
        assert "restore-marker" in _users(site)
        secret = site.sh("sha256sum /var/lib/jupyterhub/jupyterhub_cookie_secret")
        made = _cli(site, "backup", str(site.inventory), "--pull", str(tmp_path / "pulled"))
        assert made.returncode == 0, made.stdout + made.stderr
        stamp = made.stdout.split(" backup ", 1)[1].split()[0]
        # A copy on this machine too, root's alone, with the row only the database knew.
        copy_dir = tmp_path / "pulled" / site.host.name / stamp
        assert f"copied to {copy_dir}" in made.stdout
        assert copy_dir.stat().st_mode & 0o777 == 0o700
        for name in ("jupyterhub.sqlite", "files.tar"):
            assert (copy_dir / name).stat().st_mode & 0o777 == 0o600, name
        import sqlite3

        rows = sqlite3.connect(copy_dir / "jupyterhub.sqlite").execute(
            "select name from users").fetchall()
        assert ("restore-marker",) in rows
        assert site.password_file.read_text().strip() not in made.stdout + made.stderr
        assert site.sh(f"stat -c '%U %a' /var/backups/pyinfra-jupyter/{stamp}") == "root 700"
        assert site.sh(f"ls /var/backups/pyinfra-jupyter/{stamp}") == "files.tar\njupyterhub.sqlite"
        # The database lost by hand: the hub starts over with an empty one.
        site.sh("systemctl stop jupyterhub && rm /var/lib/jupyterhub/jupyterhub.sqlite && "
                "systemctl start jupyterhub && for i in $(seq 120); do "
                "ss -Hltn 'sport = :8081' | grep -q . && break; sleep 1; done")
        assert "restore-marker" not in _users(site)
        back = _cli(site, "restore", str(site.inventory), "--from", stamp)
        assert back.returncode == 0, back.stdout + back.stderr
        assert f"restored {stamp}" in back.stdout
        assert "restore-marker" in _users(site)
        assert site.sh("sha256sum /var/lib/jupyterhub/jupyterhub_cookie_secret") == secret
        assert site.client("kernel", "1+1") == {"result": "2"}  # the hub serves again
        bad = _cli(site, "restore", str(site.inventory), "--from", "yesterday")
        assert bad.returncode == 1 and "is not a backup stamp" in bad.stdout
        assert_no_changes(site.deploy("rerun after the restore"))

    def _testinfra(site) -> subprocess.CompletedProcess:
        """tests/verify (verify's checks as a testinfra module) against the host, from the
        probe namespace, as a sysadmin's `pytest --hosts=...` would run it."""
        status = site.lab.status()
        return subprocess.run(
            ["ip", "netns", "exec", status["probe_netns"], sys.executable, "-m", "pytest", "-q",
             "-p", "no:cacheprovider", "tests/verify",
             f"--hosts=paramiko://root@{site.host.address}?ssh_identity_file={site.host.ssh_key}"],
            capture_output=True, text=True, cwd=CLIENT.parents[2],
            env={**os.environ, "no_proxy": "*", "NO_PROXY": "*"})

    def test_the_testinfra_module_runs_verifys_checks(site):
        passed = _testinfra(site)
        assert passed.returncode == 0, passed.stdout[-3000:]
        assert "3 passed" in passed.stdout
        site.sh("systemctl stop configurable-http-proxy")
        try:
            failed = _testinfra(site)
            assert failed.returncode == 1, failed.stdout[-3000:]
            assert "configurable-http-proxy.service" in failed.stdout
        finally:
            # Back as the deploy leaves it (the verify test next starts from a passing host;
            # a deploy repairing damage is proven there): the proxy, and the hub's routes.
            site.sh("systemctl start configurable-http-proxy && systemctl restart jupyterhub "
                    "&& for i in $(seq 90); do ss -Hltn 'sport = :8081' | grep -q . && break; "
                    "sleep 1; done")

    def test_verify_passes_then_names_each_damage_then_passes_again(site):
        password = site.password_file.read_text().strip()
        code, checks = _verify(site)
        failed = {k: v["detail"] for k, v in checks.items() if v["status"] == "fail"}
        assert code == 0 and not failed, failed
        assert len(checks) >= 30
        assert any(k.startswith("https") for k in checks), sorted(checks)
        # Damage a sysadmin (or a bad night) could do; verify must name every one.
        site.sh("systemctl stop configurable-http-proxy; "
                "chmod 644 /etc/pyinfra-jupyter/tls/for/jupyter-proxy/privkey.pem; "
                "echo '# edited' >> /etc/jupyterhub/jupyterhub_config.py; "
                # The certificate deleted; a kernel-range port open to the world; a pin
                # downgraded in the hub's venv (through the lab's package proxy).
                "rm /etc/pyinfra-jupyter/tls/fullchain.pem; "
                "nft insert rule inet pyinfra_jupyter input tcp dport 50000 accept; "
                "systemd-run -q --unit=pj-open-50000 python3 -m http.server 50000 "
                "--bind 0.0.0.0 --directory /tmp; "
                "set -a; . /etc/pyinfra-jupyter/network.env; set +a; "
                "/opt/jupyterhub/bin/pip install -q --no-deps jupyterhub-idle-culler==1.4.0")
        code, checks = _verify(site)
        failed = {k: v["detail"] for k, v in checks.items() if v["status"] == "fail"}
        assert code == 1
        assert any("configurable-http-proxy" in k for k in failed), failed
        assert any("for/jupyter-proxy/privkey.pem" in k for k in failed), failed
        assert any("jupyterhub_config.py" in k for k in failed), failed
        assert any(k.startswith("https") for k in failed), failed
        assert "0.0.0.0:50000" in failed.get("kernel ports 49152-65535 on loopback only", ""), failed
        assert any("tls/fullchain.pem" in k for k in failed), failed
        assert "jupyterhub-idle-culler" in failed.get("venv /opt/jupyterhub", ""), failed
        site.sh("systemctl stop pj-open-50000")
        assert password not in json.dumps(checks)
        # One deploy repairs all of it; verify agrees.
        site.deploy("repair after damage")
        code, checks = _verify(site)
        failed = {k: v["detail"] for k, v in checks.items() if v["status"] == "fail"}
        assert code == 0 and not failed, failed


    # Paths, units and accounts of ours that an uninstall must leave nowhere.
    OURS = ("/etc/pyinfra-jupyter /etc/jupyterhub /etc/jupyter/instances /opt/jupyterhub "
            "/opt/configurable-http-proxy /opt/pyinfra-jupyter /var/lib/jupyterhub "
            "/var/lib/pyinfra-jupyter /var/log/pyinfra-jupyter /etc/motd.d/pyinfra-jupyter "
            "/etc/apt/apt.conf.d/90pyinfra-jupyter-proxy "
            "/usr/local/share/ca-certificates/pyinfra-jupyter.crt "
            "/etc/systemd/system/*jupyter* /etc/systemd/system/pj-*")

    def _port_open_from_probe(site, port: int) -> bool:
        probe = site.lab.probe(
            "python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(5); "
            f"sys.exit(s.connect_ex((\"{site.host.address}\", {port})))'")
        return probe.returncode == 0

    def test_uninstall_leaves_nothing_of_ours_keeps_homes_then_a_fresh_deploy_works(site):
        # A user's server is running (still, from the login tests above) and their home
        # holds their work.
        if site.sh("pgrep -u admin -c || true") == "0":
            assert site.client("kernel", "1+1") == {"result": "2"}
        assert site.sh("pgrep -u admin -c || true") != "0"
        site.sh("runuser -u admin -- sh -c 'echo results > /home/admin/work.txt'")
        work = site.sh("sha256sum /home/admin/work.txt")
        password = site.password_file.read_text().strip()
        # --dry lists every removal first and removes nothing.
        dry = subprocess.run([str(PYINFRA), "--dry", str(site.inventory), "uninstall.py"],
                             cwd=CLIENT.parents[2], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        assert dry.returncode == 0, dry.stdout[-3000:]
        planned = detected_changes(dry.stdout)
        assert site.sh("systemctl is-active jupyterhub") == "active"
        real = run_deploy(site.inventory, deploy_file="uninstall.py").stdout
        assert sorted(planned) == sorted(changed_operations(real)), (planned, real[-3000:])
        assert any("Remove /opt/jupyterhub" in name for name in planned), planned
        assert password not in dry.stdout + real
        # Nothing of ours: files, units, processes, listening ports, firewall rules, accounts.
        assert site.sh(f"ls -d {OURS} 2>/dev/null; true") == ""
        assert site.sh("systemctl list-units --all --no-legend '*jupyter*' 'pj-*'") == ""
        assert site.sh("pgrep -u admin -c || true") == "0", "the user's server still runs"
        listening = {line.split()[3] for line in site.sh("ss -Hltn").splitlines()}
        assert {a.rsplit(":", 1)[1] for a in listening} <= {"22", "3128"}, listening
        assert "pyinfra_jupyter" not in site.sh("nft list tables")
        assert "pyinfra-jupyter" not in site.sh("cat /etc/nftables.conf")
        assert site.sh("getent passwd jupyter-proxy || true") == ""
        # SSH still answers from outside; the people's accounts and homes are intact.
        assert _port_open_from_probe(site, 22)
        assert site.sh("getent passwd admin").startswith("admin:")
        assert site.sh("sha256sum /home/admin/work.txt") == work
        # The last backup stays (root's, 0700), holding the hub's database.
        stamps = site.sh("ls /var/backups/pyinfra-jupyter").split()
        assert len(stamps) == 1, stamps
        backup = f"/var/backups/pyinfra-jupyter/{stamps[0]}"
        assert site.sh(f"stat -c '%U %a' {backup}") == "root 700"
        assert "jupyterhub.sqlite" in site.sh(f"ls {backup}")
        assert_no_changes(run_deploy(site.inventory, deploy_file="uninstall.py").stdout)
        # The host takes a fresh deploy, and the same person logs in again.
        site.deploy("fresh deploy after the uninstall")
        assert site.client("kernel", "1+1") == {"result": "2"}
        assert site.sh("sha256sum /home/admin/work.txt") == work


if __name__ == "__main__":
    sys.exit(client(sys.argv[1:]))
