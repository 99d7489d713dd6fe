"""TLS on a real lab host against a real ACME server (Pebble) in the lab namespace.

Pebble validates HTTP-01 by connecting to the host's port 80 through its firewall, and
DNS-01 through pebble-challtestsrv's DNS, fed by a fake DuckDNS API. The served
certificate is checked from the probe namespace against Pebble's root.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.lab.deploy_helpers import assert_no_changes, failure_excerpt, run_deploy
from tests.pebble_support import PEBBLE_ENV, make_ca, pebble_config

pytestmark = [
    pytest.mark.lab,
]

DOMAIN = "hub.lab.test"
DUCK = "family.duckdns.org"
DUCK_TOKEN = "duck-token-0123456789abcdef"
ACME_PORT, MGMT_PORT, DNS_PORT, CTS_PORT, DUCK_PORT = 14000, 15000, 8053, 8055, 8056


class Acme:
    """Pebble + challtestsrv (+ the fake DuckDNS) running in the lab namespace."""

    def __init__(self, lab, tmp: Path):
        self.lab, self.tmp = lab, tmp
        self.address = lab.lab_address
        self.ca, self.cert, self.key = make_ca(tmp, addresses=(self.address,))
        self.cts = f"http://{self.address}:{CTS_PORT}"
        lab.run_service("challtestsrv", [
            "pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-defaultIPv6", "",
            "-dns01", f"{self.address}:{DNS_PORT}", "-management", f"{self.address}:{CTS_PORT}",
        ], wait_port=CTS_PORT)
        token = tmp / "duck.token"
        self.duck_answer = tmp / "duck.answer"  # while it exists, DuckDNS answers with it
        token.write_text(DUCK_TOKEN)
        lab.run_service("duckdns", [
            sys.executable, str(Path(__file__).with_name("fake_duckdns.py")),
            "--listen", f"{self.address}:{DUCK_PORT}", "--challtestsrv", self.cts,
            "--token-file", str(token), "--answer-file", str(self.duck_answer),
        ], wait_port=DUCK_PORT)

    def point(self, name: str, address: str) -> None:
        """Make challtestsrv's DNS answer `name` with `address` (called in the lab namespace:
        the machine's own namespace has no route to the lab bridge)."""
        body = json.dumps({"host": name, "addresses": [address]})
        self.lab.lab.lab_exec(
            f"curl -sf --noproxy '*' -X POST -d '{body}' {self.cts}/add-a", check=True
        )

    def start(self, validity: int | None = None) -> None:
        config = pebble_config(
            self.tmp / "pebble.json", listen=f"{self.address}:{ACME_PORT}",
            management=f"{self.address}:{MGMT_PORT}", cert=self.cert, key=self.key,
            http_port=80, tls_port=443, validity=validity,
        )
        self.lab.run_service(
            "pebble", ["pebble", "-config", str(config), "-dnsserver",
                       f"{self.address}:{DNS_PORT}"],
            env={**os.environ, **PEBBLE_ENV}, wait_port=ACME_PORT,
        )
        # Pebble makes a new root at each start: what the served chain must verify against.
        root = self.lab.lab.lab_exec(
            f"curl -sf --noproxy '*' --cacert {self.ca} https://{self.address}:{MGMT_PORT}/roots/0",
            check=True,
        ).stdout
        (self.tmp / "root.pem").write_text(root)

    def stop(self) -> None:
        self.lab.lab.stop_service("pebble")

    @property
    def directory(self) -> str:
        return f"https://{self.address}:{ACME_PORT}/dir"

    @property
    def root(self) -> Path:
        return self.tmp / "root.pem"


@pytest.fixture(scope="module")
def host(lab):
    return lab.new_host()


@pytest.fixture(scope="module")
def acme(lab, host, tmp_path_factory):
    # After `host`: the lab's bridge (where Pebble listens) exists once a host is up.
    return Acme(lab, tmp_path_factory.mktemp("acme"))


def network(lab, acme) -> dict:
    # The ACME server and the fake DNS API are on the lab bridge, not behind the proxy
    # (urllib matches no_proxy by name, so the address itself, not only the subnet).
    return lab.network(acme.address)


def site(lab, acme, host, tmp_path, ddns: dict | None = None, **tls) -> Path:
    # preflight off: Pebble resolves names with challtestsrv, which lab hosts cannot ask.
    tls_spec = {"type": "acme", "email": "admin@lab.test", "domains": [DOMAIN],
                "directory": acme.directory, "directory_ca": acme.ca.read_text(),
                "preflight": False, **tls}
    data = {"network": network(lab, acme), "tls": tls_spec,
            "users": {"allow_all": True}, "hub": {"auth": {"type": "pam"}}}
    if tls.get("challenge") == "dns-01":
        # The updater publishes the host's lab address (no "what is my IP" service here;
        # discovery is covered by tests/unit/agent/test_ddns.py).
        data["ddns"] = {"provider": "duckdns", "domain": DUCK, "token": DUCK_TOKEN,
                        "api_url": f"http://{acme.address}:{DUCK_PORT}",
                        "address": host.address, "interval_minutes": 2}
    if ddns:
        data["ddns"] = ddns
    return lab.write_inventory(tmp_path / "inventory.py", [host], host_data=data)


def served(lab, host, name: str, root: Path, *options: str) -> str:
    """What `openssl s_client` sees on the host's public port, from the probe namespace."""
    result = lab.probe(
        f"echo | timeout 20 openssl s_client -connect {host.address}:443 -servername {name} "
        f"-CAfile {root} -verify_return_error {' '.join(options)} 2>&1"
    )
    return result.stdout


def serial(lab, host, name: str, root: Path) -> str:
    result = lab.probe(
        f"echo | timeout 20 openssl s_client -connect {host.address}:443 -servername {name} "
        f"-CAfile {root} 2>/dev/null | openssl x509 -noout -serial -ext subjectAltName"
    )
    return result.stdout.strip()


def test_http01_issue_serve_and_converge(lab, acme, host, tmp_path):
    acme.point(DOMAIN, host.address)
    acme.start()
    inventory = site(lab, acme, host, tmp_path)
    run_deploy(inventory)
    assert_no_changes(run_deploy(inventory).stdout)

    out = served(lab, host, DOMAIN, acme.root)
    assert "Verify return code: 0 (ok)" in out, out
    assert f"DNS:{DOMAIN}" in serial(lab, host, DOMAIN, acme.root)
    # TLS 1.2+ only on the public port.
    assert "Verify return code: 0 (ok)" in served(lab, host, DOMAIN, acme.root, "-tls1_2")
    old = served(lab, host, DOMAIN, acme.root, "-tls1_1")
    assert "Verify return code: 0 (ok)" not in old and "Cipher is (NONE)" in old or \
        "alert" in old.lower(), old
    # Port 80 redirects to HTTPS (and served the challenge Pebble validated).
    redirect = lab.probe(f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' "
                         f"-H 'Host: {DOMAIN}' http://{host.address}/hub/")
    assert redirect.stdout == f"301 https://{DOMAIN}/hub/"
    # The account key and the private key are root's only; the proxy reads its own copy.
    modes = host.run("stat -L -c '%a %U %G' /etc/pyinfra-jupyter/tls/account.key "
                     "/etc/pyinfra-jupyter/tls/privkey.pem "
                     "/etc/pyinfra-jupyter/tls/for/jupyter-proxy/privkey.pem").stdout.split("\n")
    assert modes[:3] == ["600 root root", "600 root root", "400 jupyter-proxy root"], modes


def test_failed_issuance_keeps_the_old_certificate_and_says_why(lab, acme, host, tmp_path):
    before = serial(lab, host, DOMAIN, acme.root)
    # A new name that points elsewhere: Pebble cannot validate it on this host.
    acme.point("other.lab.test", acme.address)
    inventory = site(lab, acme, host, tmp_path, domains=[DOMAIN, "other.lab.test"])
    result = run_deploy(inventory, check=False)
    assert result.returncode != 0, failure_excerpt(result.stdout)
    assert "other.lab.test" in result.stdout and "port 80" in result.stdout, result.stdout[-3000:]
    assert serial(lab, host, DOMAIN, acme.root) == before

    # The ACME server down: the run fails naming it; HTTPS keeps serving the old certificate.
    acme.stop()
    result = run_deploy(inventory, check=False)
    assert result.returncode != 0
    assert "cannot reach ACME directory" in result.stdout, result.stdout[-3000:]
    assert serial(lab, host, DOMAIN, acme.root) == before
    assert "Verify return code: 0 (ok)" in served(lab, host, DOMAIN, acme.root)


def test_the_timer_renews_without_a_deploy(lab, acme, host, tmp_path):
    acme.start(validity=30)  # certificates valid 30 s: renewal due after 20 s
    inventory = site(lab, acme, host, tmp_path, domains=[DOMAIN, f"www.{DOMAIN}"])
    acme.point(f"www.{DOMAIN}", host.address)
    run_deploy(inventory)
    first = serial(lab, host, DOMAIN, acme.root)
    assert f"DNS:www.{DOMAIN}" in first

    timer = host.run("systemctl show -p ActiveState -p UnitFileState "
                     "pyinfra-jupyter-tls-renew.timer").stdout
    assert "ActiveState=active" in timer and "UnitFileState=enabled" in timer
    time.sleep(21)
    # What the timer starts; nothing from the deploy side.
    host.run("systemctl start pyinfra-jupyter-tls-renew.service", timeout=120)
    # The proxy restarts to load the new certificate: wait until it serves again.
    deadline = time.monotonic() + 60
    now = serial(lab, host, DOMAIN, acme.root)
    while now in ("", first) and time.monotonic() < deadline:
        time.sleep(1)
        now = serial(lab, host, DOMAIN, acme.root)
    assert now not in ("", first)
    assert "Verify return code: 0 (ok)" in served(lab, host, DOMAIN, acme.root)
    journal = host.run("journalctl -u pyinfra-jupyter-tls-renew.service --no-pager").stdout
    assert "issued" in journal or "renewed" in journal, journal[-2000:]


def test_dns01_with_port_80_closed(lab, acme, host, tmp_path):
    acme.start()
    inventory = site(lab, acme, host, tmp_path, domains=[DUCK], challenge="dns-01",
                     http_port=None, dns_propagation_seconds=0)
    run_deploy(inventory)
    assert f"DNS:{DUCK}" in serial(lab, host, DUCK, acme.root)
    assert "Verify return code: 0 (ok)" in served(lab, host, DUCK, acme.root)
    # Port 80 is closed: nothing answers there from outside.
    closed = lab.probe(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{host.address}/")
    assert closed.stdout in ("000", "")
    assert_no_changes(run_deploy(inventory).stdout)
    log = lab.lab.service_log("duckdns").read_text()
    assert "ok=True" in log and DUCK_TOKEN not in log
    # The DDNS updater, from the same provider settings: its own user alone reads the token,
    # the address went out once, and a provider refusal fails the unit readably.
    sh = lambda cmd: host.run(cmd, check=False).stdout.strip()  # noqa: E731
    assert f"update domains=family ip={host.address} ipv6= UPDATED" in log
    assert log.count(f"ip={host.address}") == 1, "the unchanged address was sent again"
    assert sh("stat -c '%U %a' /etc/pyinfra-jupyter/ddns/token") == "pj-ddns 600"
    assert DUCK_TOKEN not in sh("cat /etc/pyinfra-jupyter/ddns/ddns.json")
    assert sh("systemctl is-enabled pyinfra-jupyter-ddns.timer") == "enabled"
    assert sh("systemctl is-active pyinfra-jupyter-ddns.timer") == "active"
    assert sh("runuser -u nobody -- cat /etc/pyinfra-jupyter/ddns/token 2>&1; true") != DUCK_TOKEN
    state = json.loads(sh("cat /var/lib/pyinfra-jupyter/ddns/state.json"))
    assert state["sent_ipv4"] == host.address and not state.get("last_error")
    sh("systemctl start pyinfra-jupyter-ddns.service")  # the timer's run: nothing to send
    assert "unchanged: family.duckdns.org" in sh(
        "journalctl -u pyinfra-jupyter-ddns.service -o cat --no-pager")
    acme.duck_answer.write_text("KO")
    try:
        sh("rm /var/lib/pyinfra-jupyter/ddns/state.json")  # as if the address had changed
        assert sh("systemctl start pyinfra-jupyter-ddns.service; echo rc=$?").endswith("rc=1")
    finally:
        acme.duck_answer.unlink()
    journal = sh("journalctl -u pyinfra-jupyter-ddns.service -o cat --no-pager")
    assert "DuckDNS refused the update (answer: KO)" in journal
    assert DUCK_TOKEN not in journal
    # Not asked again with the same settings (dyndns2's rule, kept for all providers) ...
    assert sh("systemctl start pyinfra-jupyter-ddns.service; echo rc=$?").endswith("rc=1")
    assert "not asking duckdns again" in sh(
        "journalctl -u pyinfra-jupyter-ddns.service -o cat --no-pager")
    # ... until the sysadmin says the account is fixed.
    assert "family.duckdns.org -> " in sh(
        "set -a; . /etc/pyinfra-jupyter/network.env; set +a; "  # as the unit's environment
        "runuser -u pj-ddns -- /opt/pyinfra-jupyter/agent/bin/python "
        "/opt/pyinfra-jupyter/agent/agent.pyz ddns --config /etc/pyinfra-jupyter/ddns/ddns.json "
        "update --retry 2>&1")
    assert sh("systemctl start pyinfra-jupyter-ddns.service; echo rc=$?").endswith("rc=0")
    assert json.loads(sh("cat /var/lib/pyinfra-jupyter/ddns/state.json"))["sent_ipv4"] == host.address
    assert_no_changes(run_deploy(inventory).stdout)
    # The site drops DDNS (and DNS-01 with it): nothing of the updater is left behind.
    plain = site(lab, acme, host, tmp_path)
    run_deploy(plain)
    for path in ("/etc/pyinfra-jupyter/ddns", "/var/lib/pyinfra-jupyter/ddns",
                 "/etc/systemd/system/pyinfra-jupyter-ddns.service",
                 "/etc/systemd/system/pyinfra-jupyter-ddns.timer"):
        assert sh(f"test -e {path} && echo left || echo gone") == "gone", path
    assert sh("getent passwd pj-ddns; getent group pj-ddns; true") == ""
    assert sh("systemctl is-active pyinfra-jupyter-ddns.timer") != "active"
    assert_no_changes(run_deploy(plain).stdout)


PROVIDER_TOKEN = "provider-token-0123456789abcdef"
PROVIDERS_PORT = 8057


def test_ddns_updater_speaks_each_providers_format(lab, acme, host, tmp_path):
    """dyndns2, dynv6 and Cloudflare against stand-ins of their real APIs (fake_providers.py)
    on the lab bridge, reached through the host's firewall: one update on the deploy, none
    when the address is the same, one when it changed, a refusal fails the unit readably,
    and the token never reaches the journal or the provider's log."""
    acme.point(DOMAIN, host.address)  # the site's certificate: from Pebble over HTTP-01,
    acme.start()  # whichever test ran before (or none)
    refuse = tmp_path / "refuse"
    lab.run_service("providers", [
        sys.executable, str(Path(__file__).with_name("fake_providers.py")),
        "--listen", f"{acme.address}:{PROVIDERS_PORT}", "--token", PROVIDER_TOKEN,
        "--refuse-file", str(refuse)], wait_port=PROVIDERS_PORT)
    base = f"http://{acme.address}:{PROVIDERS_PORT}"
    name = "hub.lab.example"
    cases = [
        ("dyndns2", {"provider": "dyndns2", "server": "members.lab.example", "hostname": name,
                     "username": "lab-user", "password": PROVIDER_TOKEN,
                     "api_url": f"{base}/dyn"},
         "dyndns2 " + base + "/dyn: badauth: the user name or password is wrong"),
        ("dynv6", {"provider": "dynv6", "zone": name, "token": PROVIDER_TOKEN,
                   "api_url": f"{base}/dynv6/api/v2"}, "HTTP 401"),
        ("cloudflare", {"provider": "cloudflare", "zone": "lab.example", "record": name,
                        "api_token": PROVIDER_TOKEN, "api_url": f"{base}/cf/client/v4"},
         "HTTP 403"),
    ]
    sh = lambda cmd: host.run(cmd, check=False).stdout.strip()  # noqa: E731
    log = lambda: lab.lab.service_log("providers").read_text()  # noqa: E731
    start = "systemctl start pyinfra-jupyter-ddns.service; echo rc=$?"
    units_journal = lambda: sh("journalctl -u pyinfra-jupyter-ddns.service "  # noqa: E731
                               "-u pyinfra-jupyter-ddns.timer -o short-precise --no-pager "
                               "| tail -n 40")
    for provider, ddns, refused in cases:
        ddns = {**ddns, "address": host.address, "interval_minutes": 5}
        inventory = site(lab, acme, host, tmp_path, ddns=ddns)
        run_deploy(inventory)  # the settings changed: one update, now
        sent = f"{provider} {name} ip={host.address} "
        assert log().count(sent) == 1, log()
        assert sh(start).endswith("rc=0"), units_journal()  # the timer's run: nothing sent
        assert log().count(sent) == 1, log()
        if provider == "dyndns2":
            # No start rate limit: seven starts in a row (systemd's default refuses the
            # sixth in 10 s, as this test once met: deploy, timer and sysadmin all start it).
            many = sh(f"for i in 1 2 3 4 5 6 7; do {start}; done")
            assert many.split() == ["rc=0"] * 7, units_journal()
        moved = {**ddns, "address": "192.0.2.55"}  # the home's address changed
        run_deploy(site(lab, acme, host, tmp_path, ddns=moved))
        assert log().count(f"{provider} {name} ip=192.0.2.55 ") == 1, log()
        refuse.touch()  # the provider now refuses this token
        try:
            sh("rm -f /var/lib/pyinfra-jupyter/ddns/state.json")
            assert sh(start).endswith("rc=1")
        finally:
            refuse.unlink()
        journal = sh("journalctl -u pyinfra-jupyter-ddns.service -o cat --no-pager")
        assert refused in journal, journal[-1500:]
        assert PROVIDER_TOKEN not in journal
        assert_no_changes(run_deploy(site(lab, acme, host, tmp_path, ddns=moved)).stdout)
    assert PROVIDER_TOKEN not in log()
