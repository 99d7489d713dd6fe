"""Generic OAuth (OpenID Connect) login on a real lab host, against a real provider.

A real OpenID Connect provider (PyPI's oidc-provider-mock, tests/lab/oidc_provider.py) runs
in the lab namespace over HTTPS, with a certificate from a throwaway CA the host trusts
through the spec's `network.ca_certificates`. The hub is registered there as a client
(RFC 7591) and deployed with `hub.auth.type = generic-oauth`. Headless Chromium in the probe
namespace walks the whole redirect flow: hub login -> the provider's authorize endpoint and
login form -> the hub's callback (the hub fetches token_url and userdata_url from the host,
checking the provider's certificate) -> JupyterLab, where a cell runs `1+1`.

This file is also the client script in the probe namespace
(`python test_login_oidc.py browser HUB_URL SUB PNG`), needing Playwright with Debian's
chromium.
"""

from __future__ import annotations

import json
import sys

# -- the client (runs in the probe namespace) -----------------------------------------------


def _browser(base: str, sub: str, screenshot: str) -> dict:
    """Log in through the provider as `sub`; run a cell if the hub lets the user in.

    Returns {"callback": HTTP status of the hub's /hub/oauth_callback, "url", "text" (the
    page's text when refused), "result" (the cell's output when admitted)}.
    """
    import tempfile

    from browser_support import chromium, run_one_plus_one
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = chromium(p, profile)
        page = browser.new_page()
        page.set_default_timeout(300_000)
        visited: list[str] = []
        page.on("framenavigated",
                lambda frame: visited.append(frame.url) if frame == page.main_frame else None)
        page.on("response", lambda r: out.__setitem__("callback", r.status)
                if "/hub/oauth_callback" in r.url else None)
        try:
            page.goto(f"{base}hub/login")
            page.click("a[href*='oauth_login']")  # "Sign in with ..."
            page.wait_for_url("**/oauth2/authorize**")  # the provider's login form
            page.fill("input[name=sub]", sub)
            page.click("button[type=submit]:has-text('Authorize')")
            # Back at the hub: refused at its callback, or on the way to the user's server.
            page.wait_for_function(
                "() => !location.pathname.startsWith('/oauth2/') "
                "&& !location.pathname.startsWith('/hub/oauth_login')")
            page.wait_for_load_state()
            if out.get("callback") == 403 or "/hub/oauth_callback" in page.url:
                out["text"] = page.inner_text("body")
            else:
                page.wait_for_url("**/user/*/lab**")
                page.wait_for_selector(".jp-Launcher")
                # The Lab extensions the page loads (python.packages may bring some).
                out["extensions"] = page.evaluate(
                    "() => JSON.parse(document.getElementById('jupyter-config-data')"
                    ".textContent).federated_extensions.map(e => e.name).sort()")
                out["result"] = run_one_plus_one(page)
                try:  # jupyter-resource-usage's memory figure in the status bar
                    page.locator("#jp-main-statusbar", has_text="Mem:").wait_for(timeout=60_000)
                finally:
                    out["status_bar"] = page.locator("#jp-main-statusbar").inner_text()
        except Exception:
            page.screenshot(path=screenshot.replace(".png", "-failed.png"), full_page=True)
            raise
        page.screenshot(path=screenshot, full_page=True)
        out["url"] = page.url
        out["visited"] = visited
        browser.close()
    return out


def client(argv: list[str]) -> int:
    what, base, sub, screenshot = argv[:4]
    assert what == "browser", what
    print(json.dumps(_browser(base, sub, screenshot)))
    return 0


# -- the tests (controller side) -------------------------------------------------------------

try:
    import pytest
except ImportError:  # in the probe namespace, this file is only the client
    pytest = None

if pytest is not None:
    import os
    import subprocess
    import time
    from pathlib import Path

    from deploy_helpers import assert_no_changes
    from login_support import LoginSite

    pytestmark = pytest.mark.lab

    CLIENT = Path(__file__).resolve()
    PROVIDER = CLIENT.with_name("oidc_provider.py")
    ARTIFACTS = CLIENT.parents[1] / "artifacts"
    PORT = 9443
    # The provider's users: an opaque `sub`, and the claim the hub names its user by.
    # jupyter-resource-usage: a Lab extension with a server part, its memory figure in the
    # status bar; pinned, as a spec's packages are.
    EXTENSION = "jupyter-resource-usage==1.3.0"
    ALICE = {"sub": "u-1001", "preferred_username": "alice", "name": "Alice Smith",
             "email": "alice.smith@lab.test"}
    MALLORY = {"sub": "u-1002", "preferred_username": "mallory", "name": "Mallory",
               "email": "mallory@lab.test"}
    # A provider's user whose name is a system account of the host (UID 1).
    DAEMON = {"sub": "u-1003", "preferred_username": "daemon", "name": "Daemon",
              "email": "daemon@lab.test"}

    class Site(LoginSite):
        """The provider, the hub host, the hub's spec, and every deploy's output."""

        def __init__(self, lab, tmp: Path):
            from tests.pebble_support import make_ca  # here: the probe's client has no `tests`

            super().__init__(lab, tmp)
            self.address = lab.lab_address
            self.issuer = f"https://{self.address}:{PORT}"
            self.ca, cert, key = make_ca(tmp, addresses=(self.address,))
            users = tmp / "users.json"
            users.write_text(json.dumps([ALICE, MALLORY, DAEMON]))
            lab.run_service("oidc", [sys.executable, str(PROVIDER), "--listen",
                                     f"{self.address}:{PORT}", "--cert", str(cert),
                                     "--key", str(key), "--users", str(users)],
                            wait_port=PORT, timeout=60)
            # The hub registers as a client: the provider makes its id and secret. The secret
            # goes in the token request's body: oauthenticator's default (basic_auth False).
            registration = json.dumps({"redirect_uris": [self.callback],
                                       "token_endpoint_auth_method": "client_secret_post"})
            answer = lab.lab.lab_exec(
                f"curl -sSf --noproxy '*' --cacert {self.ca} -H 'Content-Type: application/json'"
                f" -d '{registration}' {self.issuer}/oauth2/clients", check=True).stdout
            client = json.loads(answer)
            self.client_id, self.client_secret = client["client_id"], client["client_secret"]
            self.spec = {
                "mode": "hub",
                "tls": {"type": "self-signed"},
                # An account the deploy makes (a PAM-style login) besides the OAuth users.
                # daemon allowed, as a careless spec could have it: only the hub's
                # system-account guard stands between it and a server run as `daemon`.
                "users": {"allowed": ["alice", "daemon"], "admins": ["alice"],
                          "accounts": [{"name": "teacher"}]},
                "hub": {"auth": {
                    "type": "generic-oauth",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "callback_url": self.callback,
                    "authorize_url": f"{self.issuer}/oauth2/authorize",
                    "token_url": f"{self.issuer}/oauth2/token",
                    "userdata_url": f"{self.issuer}/userinfo",
                    "username_claim": "preferred_username",
                    "scope": ["openid", "profile", "email"],
                }},
                # A JupyterLab extension from PyPI, as a lecturer adds one: in every user's
                # Lab page.
                "python": {"packages": [EXTENSION]},
            }
            self.runs: dict[str, dict] = {}  # subject -> what its browser login saw

        @property
        def callback(self) -> str:
            return f"https://{self.host.address}/hub/oauth_callback"

        def network(self) -> dict:
            network = self.lab.network(self.address)
            network["ca_certificates"].append(self.ca.read_text())
            return network

        def browser(self, sub: str, screenshot: Path) -> dict:
            status = self.lab.status()
            start = time.monotonic()
            result = subprocess.run(
                ["ip", "netns", "exec", status["probe_netns"], sys.executable, str(CLIENT),
                 "browser", self.url, sub, str(screenshot)],
                capture_output=True, text=True,
                env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})
            self.figures[f"browser login as {sub}"] = time.monotonic() - start
            assert result.returncode == 0, result.stderr[-3000:] + self.logs()
            self.runs[sub] = json.loads(result.stdout.strip().splitlines()[-1])
            return self.runs[sub]

        def logs(self) -> str:
            """The hub's and the provider's recent log lines, for a failure's message."""
            hub = self.host.run("journalctl --no-pager -u jupyterhub -n 40 -o cat",
                                check=False).stdout
            provider = self.lab.lab.service_log("oidc")
            tail = provider.read_text()[-3000:] if provider.exists() else ""
            return f"\n-- hub --\n{hub}\n-- provider --\n{tail}"

        def hub_users(self) -> list[str]:
            return json.loads(self.sh(
                "/opt/jupyterhub/bin/python -c \"import json, sqlite3; print(json.dumps(sorted("
                "r[0] for r in sqlite3.connect('/var/lib/jupyterhub/jupyterhub.sqlite')"
                ".execute('select name from users'))))\""))

    @pytest.fixture(scope="module")
    def site(lab, tmp_path_factory):
        site = Site(lab, tmp_path_factory.mktemp("oidc"))
        yield site
        site.report("oidc figures")

    def test_generic_oauth_hub_deploys_then_nothing_changes(site):
        site.deploy("first run")
        assert_no_changes(site.deploy("second run"))
        # The provider's certificate is trusted system-wide on the host, and the secret sits
        # only in the hub's 0600 secrets file.
        site.sh(f"curl -sSf --noproxy '*' {site.issuer}/.well-known/openid-configuration")
        assert site.sh("stat -c '%U %a' /etc/jupyterhub/secrets.json") == "root 600"
        assert site.client_secret not in site.sh("cat /etc/jupyterhub/jupyterhub_config.py")
        # The deploy's own accounts get private homes too (useradd alone gives 0755 here).
        assert site.sh("stat -c '%U %a' /home/teacher") == "teacher 700"

    def test_the_full_redirect_flow_lands_in_jupyterlab_as_the_claimed_name(site):
        assert Path("/usr/bin/chromium").exists(), "Debian's chromium is missing"
        ARTIFACTS.mkdir(exist_ok=True)
        ran = site.browser(ALICE["sub"], ARTIFACTS / "oidc-jupyterlab.png")
        # hub login -> the provider's authorize form -> the hub's callback -> JupyterLab
        visited = ran["visited"]
        assert any(u.startswith(f"{site.issuer}/oauth2/authorize") for u in visited), visited
        assert ran["callback"] in (301, 302, 303), f"{ran}{site.logs()}"
        assert ran["result"] == "2" and "/user/alice/lab" in ran["url"], ran
        # username_claim named the hub user (not the subject, not the e-mail address) ...
        assert "alice" in site.hub_users() and "u-1001" not in site.hub_users()
        # ... and its Unix account, made at first login, has a private home.
        passwd = site.sh("getent passwd alice").split(":")
        assert passwd[5] == "/home/alice" and passwd[6] == "/bin/bash", passwd
        assert site.sh("stat -c '%U %a' /home/alice") == "alice 700"
        assert site.sh("pgrep -u alice -c || true") != "0", "alice's server does not run"

    def test_the_specs_lab_extension_shows_in_the_users_lab_page(site):
        ran = site.runs[ALICE["sub"]]  # her login, above, went through the Lab page
        assert "@jupyter-server/resource-usage" in ran["extensions"], ran
        assert "Mem:" in ran["status_bar"], ran
        assert site.sh("/opt/jupyterhub/bin/pip show jupyter-resource-usage | grep ^Version") \
            == "Version: " + EXTENSION.split("==")[1]

    def test_a_user_the_allow_rule_does_not_name_is_refused(site):
        ran = site.browser(MALLORY["sub"], ARTIFACTS / "oidc-refused.png")
        assert ran["callback"] == 403, f"{ran}{site.logs()}"
        assert "not currently authorized" in ran["text"], ran["text"]
        assert "result" not in ran
        assert "mallory" not in site.hub_users()
        assert site.sh("getent passwd mallory || echo none") == "none"

    def test_a_provider_user_named_after_a_system_account_is_refused(site):
        ran = site.browser(DAEMON["sub"], ARTIFACTS / "oidc-system-account.png")
        assert ran["callback"] == 403, f"{ran}{site.logs()}"
        assert "result" not in ran
        # (daemon is a hub user all the same: the hub adds the allow list's names at start.)
        assert "Refused daemon: a system account of this host" in site.sh(
            "journalctl --no-pager -u jupyterhub -o cat")
        assert site.sh("pgrep -u daemon -c || true") == "0"

    def test_the_client_secret_is_in_no_output_and_no_journal(site):
        assert len(site.client_secret) >= 16
        outputs = "\n".join(site.outputs)
        assert site.client_secret not in outputs
        journal = site.host.run(
            f"journalctl --no-pager -o verbose | grep -cF '{site.client_secret}'", check=False)
        assert journal.stdout.strip() == "0", "the client secret is in the host's journal"
        hub_log = site.sh("journalctl --no-pager -u jupyterhub -o cat")
        assert "alice" in hub_log  # the journal does hold the hub's log of the logins
        found = site.sh(f"grep -rlF '{site.client_secret}' /etc /opt /var/lib /var/log /root "
                        "/home 2>/dev/null || true")
        assert found == "/etc/jupyterhub/secrets.json", found


if __name__ == "__main__":
    sys.exit(client(sys.argv[1:]))
