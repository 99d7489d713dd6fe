"""The host agent's TLS commands (operations/agent) against a real ACME server (Pebble) on
loopback, run as the zipapp the deploy ships.

Pebble validates HTTP-01 by really connecting to the agent's `serve-http`, and DNS-01 by really
querying pebble-challtestsrv, which the fake DuckDNS endpoint below feeds. Nothing here leaves
127.0.0.0/8.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from tests.pebble_support import make_ca, post_json  # noqa: E402
from tests.support import LocalServer, self_signed_pem  # noqa: E402


def _zipapp() -> Path:
    """The agent exactly as hosts get it (operations/agent/build.py)."""
    import tempfile

    from operations.agent.build import zipapp_bytes

    path = Path(tempfile.mkdtemp(prefix="pj-agent-")) / "agent.pyz"
    path.write_bytes(zipapp_bytes())
    return path


AGENT = _zipapp()

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
# `make test` installs Debian's pebble (`make tools`, tests/install_tools.py): a test that
# needs it fails without it, never skips.

# Loopback must not go through any proxy configured in the environment.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0, proc=None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port}")


def run_agent(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, str(AGENT), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def load_leaf(cert_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates((cert_dir / "fullchain.pem").read_bytes())[0]


def sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)) | {
        str(i) for i in ext.get_values_for_type(x509.IPAddress)
    }


class Lab:
    """challtestsrv (DNS) + Pebble instances; each Pebble gets its own ports and config."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.ca, self.cert, self.key = make_ca(tmp)
        self.dns_port = free_port()
        self.cts_mgmt_port = free_port()
        self.http_port = free_port()  # where Pebble's VA connects for HTTP-01 (serve-http)
        self.cts_url = f"http://127.0.0.1:{self.cts_mgmt_port}"
        cts = self._start(
            [
                CHALLTESTSRV,
                "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", "",
                "-dns01", f"127.0.0.1:{self.dns_port}",
                "-management", f"127.0.0.1:{self.cts_mgmt_port}",
            ],
            "challtestsrv",
        )  # fmt: skip
        wait_port(self.cts_mgmt_port, proc=cts)
        # No default AAAA (::1), so the VA dials IPv4. test.example -> 127.0.0.1 (serve-http); down.example -> 127.0.0.2,
        # where nothing listens, for the "port 80 closed" failure.
        post_json(f"{self.cts_url}/add-a", {"host": "test.example", "addresses": ["127.0.0.1"]})
        post_json(f"{self.cts_url}/add-a", {"host": "www.test.example", "addresses": ["127.0.0.1"]})
        post_json(f"{self.cts_url}/add-a", {"host": "down.example", "addresses": ["127.0.0.2"]})
        self.directory = self.pebble()

    def _start(self, argv, name, env=None):
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def pebble(self, validity: int | None = None) -> str:
        """Start a Pebble; return its directory URL."""
        port, mgmt = free_port(), free_port()
        conf = {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": str(self.cert),
            "privateKey": str(self.key),
            "httpPort": self.http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
        if validity:
            conf["certificateValidityPeriod"] = validity
        path = write_json(self.tmp / f"pebble-{port}.json", {"pebble": conf})
        env = dict(
            os.environ,
            PEBBLE_VA_NOSLEEP="1",
            PEBBLE_VA_ALWAYS_VALID="0",
            PEBBLE_WFE_NONCEREJECT="0",  # no random badNonce retries: keeps timings stable
            PEBBLE_AUTHZREUSE="0",  # every order validates for real
        )
        p = self._start(
            [PEBBLE, "-config", str(path), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            f"pebble-{port}",
            env,
        )
        wait_port(port, proc=p)
        return f"https://127.0.0.1:{port}/dir"

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    assert PEBBLE and CHALLTESTSRV, ("pebble / pebble-challtestsrv are missing (Debian package "
                                     "pebble): `make tools` installs them")
    lab = Lab(tmp_path_factory.mktemp("pebble"))
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture()
def webroot(tmp_path):
    d = tmp_path / "webroot"
    d.mkdir()
    return d


@pytest.fixture()
def serve_http(lab, webroot, tmp_path):
    """The agent's port-80 responder on the port Pebble validates against."""
    cfg = write_json(
        tmp_path / "serve.json",
        {"type": "acme", "names": ["test.example"], "https_port": 8443,
         "acme": {"webroot": str(webroot)}},
    )  # fmt: skip
    p = subprocess.Popen(
        [sys.executable, str(AGENT), "--config", str(cfg), "serve-http",
         "--port", str(lab.http_port), "--bind", "127.0.0.1"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_port(lab.http_port)
        yield p
    finally:
        p.terminate()
        p.wait(5)


def acme_config(tmp_path: Path, lab: Lab, webroot: Path, names, directory=None, **extra) -> Path:
    conf = {
        "type": "acme",
        "cert_dir": str(tmp_path / "tls"),
        "names": names,
        "acme": {
            "directory": directory or lab.directory,
            "email": "admin@test.example",
            "challenge": "http-01",
            "webroot": str(webroot),
            "ca_bundle": str(lab.ca),
            "timeout": 30,
            # Pebble resolves names with challtestsrv, which this machine's resolver is not.
            "preflight": False,
        },
    }
    conf.update(extra)
    return write_json(tmp_path / "agent.json", conf)


# ---------------------------------------------------------------------------------------------
# ACME with Pebble


def test_http01_issue_noop_reissue_and_failure_keeps_old(lab, webroot, serve_http, tmp_path):
    cfg = acme_config(tmp_path, lab, webroot, ["test.example"])
    cert_dir = tmp_path / "tls"

    r = run_agent(cfg, "ensure")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("issued: test.example"), r.stdout
    leaf = load_leaf(cert_dir)
    assert sans(leaf) == {"test.example"}
    assert (cert_dir / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert (cert_dir / "account.key").stat().st_mode & 0o777 == 0o600
    # The challenge file was cleaned up.
    assert not list((webroot / ".well-known" / "acme-challenge").iterdir())
    state = json.loads((cert_dir / "state.json").read_text())
    assert state["serial"] == format(leaf.serial_number, "x")

    # Second run: nothing to do, same certificate, account reused.
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("unchanged: valid until "), r.stdout
    assert "renew after" in r.stdout
    assert load_leaf(cert_dir).serial_number == leaf.serial_number

    st = json.loads(run_agent(cfg, "status").stdout)
    assert st["names"] == ["test.example"] and st["serial"] == format(leaf.serial_number, "x")

    # Names change -> reissue (account already exists: ConflictError path); IP identifiers
    # (RFC 8738) are validated over HTTP-01 too.
    cfg = acme_config(tmp_path, lab, webroot, ["test.example", "www.test.example", "127.0.0.1"])
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0, r.stderr
    assert "names changed" in r.stdout
    leaf2 = load_leaf(cert_dir)
    assert sans(leaf2) == {"test.example", "www.test.example", "127.0.0.1"}
    assert leaf2.serial_number != leaf.serial_number

    # A name whose port 80 is closed: clear failure, old pair untouched.
    before = {p: (cert_dir / p).read_bytes() for p in ("fullchain.pem", "privkey.pem")}
    link = os.readlink(cert_dir / "current")
    cfg = acme_config(tmp_path, lab, webroot, ["test.example", "down.example"])
    r = run_agent(cfg, "ensure")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "HTTP-01 validation failed for down.example" in lines[0]
    assert "port 80" in lines[0] and "refused" in lines[0].lower()
    assert {p: (cert_dir / p).read_bytes() for p in before} == before
    assert os.readlink(cert_dir / "current") == link


def test_directory_unreachable(lab, webroot, tmp_path):
    cfg = acme_config(
        tmp_path, lab, webroot, ["test.example"], directory=f"https://127.0.0.1:{free_port()}/dir"
    )
    r = run_agent(cfg, "ensure")
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot reach ACME directory https://127.0.0.1:")
    assert "Connection refused" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tls" / "fullchain.pem").exists()
    r = run_agent(cfg, "status")
    assert r.returncode == 1 and r.stdout == ""

    # Untrusted TLS (no ca_bundle): says so and names the fix.
    conf = json.loads(cfg.read_text())
    conf["acme"]["directory"] = lab.directory
    del conf["acme"]["ca_bundle"]
    r = run_agent(write_json(cfg, conf), "ensure")
    assert r.returncode == 1 and "acme.ca_bundle" in r.stderr, r.stderr
    assert "_ssl.c" not in r.stderr

    # placeholder: the first deploy still gets a usable (self-signed) pair, exit 3.
    conf["acme"]["placeholder"] = True
    r = run_agent(write_json(cfg, conf), "ensure")
    assert r.returncode == 3 and "placeholder" in r.stderr, r.stderr
    assert sans(load_leaf(tmp_path / "tls")) == {"test.example"}
    assert json.loads(run_agent(cfg, "status").stdout)["type"] == "acme-placeholder"
    r = run_agent(cfg, "ensure")  # still failing: placeholder kept, still exit 3
    assert r.returncode == 3


def test_one_third_renewal_runs_post_renew(lab, webroot, serve_http, tmp_path):
    # A 9-second certificate: renewal is due once 6 s of it have passed.
    directory = lab.pebble(validity=9)
    marker = tmp_path / "post_renew.ran"
    cfg = acme_config(
        tmp_path, lab, webroot, ["test.example"], directory=directory,
        post_renew=[[sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"]],
    )  # fmt: skip
    r = run_agent(cfg, "renew")
    assert r.returncode == 0, r.stderr
    leaf = load_leaf(tmp_path / "tls")
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= dt.timedelta(seconds=10)
    assert marker.read_text() == "x"  # first issuance via renew counts as a change

    due = leaf.not_valid_after_utc - lifetime / 3
    if dt.datetime.now(dt.timezone.utc) < due - dt.timedelta(seconds=1):
        r = run_agent(cfg, "renew")
        assert r.stdout.startswith("unchanged:"), r.stdout + r.stderr
        assert marker.read_text() == "x"
    time.sleep(max(0.0, (due - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.2)
    r = run_agent(cfg, "renew")
    assert r.returncode == 0, r.stderr
    assert "renewal due (1/3 of lifetime left)" in r.stdout, r.stdout
    assert load_leaf(tmp_path / "tls").serial_number != leaf.serial_number
    assert marker.read_text() == "xx"


class AriDirectory(LocalServer):
    """Pebble's directory plus a renewalInfo endpoint whose window the test controls.

    The Debian Pebble (2.4) predates ARI, so the directory is served from here and every other
    ACME URL still points at the real Pebble.
    """

    def __init__(self, pebble_dir: str, ca: Path):
        ctx = ssl.create_default_context(cafile=str(ca))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
        )
        with opener.open(pebble_dir, timeout=5) as r:
            self.dir = json.load(r)
        self.window = None
        self.requests: list[str] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/dir":
                    body = dict(outer.dir, renewalInfo=f"{outer.url}/ari")
                elif self.path.startswith("/ari/"):
                    outer.requests.append(self.path[len("/ari/") :])
                    body = {"suggestedWindow": outer.window}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.serve(H)


def rfc3339(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_ari_window_drives_renewal(lab, webroot, serve_http, tmp_path):
    ari = AriDirectory(lab.directory, lab.ca)
    try:
        marker = tmp_path / "post_renew.ran"
        cfg = acme_config(
            tmp_path, lab, webroot, ["test.example"], directory=f"{ari.url}/dir",
            post_renew=[sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"],
        )  # fmt: skip
        assert run_agent(cfg, "ensure").returncode == 0
        assert not marker.exists()  # ensure never runs post_renew
        leaf = load_leaf(tmp_path / "tls")
        now = dt.datetime.now(dt.timezone.utc)

        # Window in the future: unchanged, and renew_after comes from the window.
        ari.window = {"start": rfc3339(now + dt.timedelta(days=10)),
                      "end": rfc3339(now + dt.timedelta(days=11))}  # fmt: skip
        r = run_agent(cfg, "renew")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("unchanged:") and "(ARI window)" in r.stdout, r.stdout
        # The certificate ID per RFC 9773: base64url(AKI keyIdentifier) "." base64url(serial).
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        serial = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
        b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
        assert ari.requests[-1] == f"{b64(aki.key_identifier)}.{b64(serial)}"
        status = json.loads(run_agent(cfg, "status").stdout)
        renew_after = dt.datetime.strptime(status["renew_after"], "%Y-%m-%dT%H:%M:%SZ")
        assert (
            now + dt.timedelta(days=10) - dt.timedelta(seconds=2)
            <= renew_after.replace(tzinfo=dt.timezone.utc)
            <= now + dt.timedelta(days=11)
        )
        assert not marker.exists()

        # The CA moves the window into the past (e.g. revocation): renew now, even though the
        # certificate is far from its last third.
        ari.window = {"start": rfc3339(now - dt.timedelta(days=2)),
                      "end": rfc3339(now - dt.timedelta(days=1))}  # fmt: skip
        r = run_agent(cfg, "renew")
        assert r.returncode == 0, r.stderr
        assert "renewal due (ARI window)" in r.stdout, r.stdout
        assert load_leaf(tmp_path / "tls").serial_number != leaf.serial_number
        assert marker.read_text() == "x"
    finally:
        ari.close()


class FakeDuckDns(LocalServer):
    """DuckDNS's /update API, turning TXT updates into challtestsrv DNS records."""

    def __init__(self, lab: Lab, token: str):
        self.calls: list[dict] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                outer.calls.append(q)
                ok = url.path == "/update" and q.get("token") == token and q.get("domains")
                if ok:
                    host = f"_acme-challenge.{q['domains']}.example."
                    if q.get("clear") == "true":
                        post_json(f"{lab.cts_url}/clear-txt", {"host": host})
                    else:
                        post_json(f"{lab.cts_url}/set-txt", {"host": host, "value": q["txt"]})
                data = b"OK\n" if ok else b"KO\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.serve(H)


def test_dns01_duckdns_style_with_wildcard(lab, webroot, tmp_path):
    # No serve-http here: only DNS can satisfy the CA.
    token = "s3cr3t-duck-token-0123456789"
    token_file = tmp_path / "duck.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    duck = FakeDuckDns(lab, token)
    try:
        conf = json.loads(acme_config(tmp_path, lab, webroot, ["test.example"]).read_text())
        conf["names"] = ["test.example", "*.test.example"]
        conf["acme"]["challenge"] = "dns-01"
        conf["acme"]["dns"] = {
            "provider": "duckdns",
            "endpoint": duck.url,
            "token_file": str(token_file),
            "subdomain": "test",
            "propagation_seconds": 0,
        }
        cfg = write_json(tmp_path / "agent.json", conf)
        r = run_agent(cfg, "ensure")
        assert r.returncode == 0, r.stderr
        assert sans(load_leaf(tmp_path / "tls")) == {"test.example", "*.test.example"}
        sets = [c for c in duck.calls if c.get("clear") != "true"]
        clears = [c for c in duck.calls if c.get("clear") == "true"]
        # Two authorizations, one TXT value at a time (DuckDNS keeps only one), each cleaned up.
        assert len(sets) == 2 and len(clears) == 2
        assert token not in r.stdout + r.stderr

        # A wrong token: DuckDNS says KO; the message names the fix and hides the token.
        token_file.write_text("wrong-" + token)
        conf["names"] = ["test.example"]
        r = run_agent(write_json(cfg, conf), "ensure")
        assert r.returncode == 1
        assert "DuckDNS refused the TXT update" in r.stderr and "token_file" in r.stderr
        assert token not in r.stdout + r.stderr
    finally:
        duck.close()


# ---------------------------------------------------------------------------------------------
# without a CA


def test_ari_cert_id_matches_rfc_example():
    """RFC 9773 section 4.1 example: AKI 69:88:5B:..., serial 00:87:65:43:21."""
    agent = _import_agent()

    class Ext:
        def __init__(self, v):
            self.value = v

    class Cert:
        serial_number = 0x0087654321
        extensions = type(
            "E",
            (),
            {
                "get_extension_for_class": staticmethod(
                    lambda cls: Ext(
                        x509.AuthorityKeyIdentifier(
                            bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"), None, None
                        )
                    )
                )
            },
        )()

    assert agent.ari_cert_id(Cert()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_self_signed_sans_and_regeneration(tmp_path):
    conf = {"type": "self-signed", "cert_dir": str(tmp_path / "tls"),
            "names": ["hub.example.org", "192.0.2.7", "2001:db8::1"]}  # fmt: skip
    cfg = write_json(tmp_path / "agent.json", conf)
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0 and r.stdout.startswith("generated: self-signed"), r.stderr
    leaf = load_leaf(tmp_path / "tls")
    assert sans(leaf) == {"hub.example.org", "192.0.2.7", "2001:db8::1"}
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "hub.example.org"
    key = serialization.load_pem_private_key((tmp_path / "tls/privkey.pem").read_bytes(), None)
    assert key.public_key() == leaf.public_key()

    r = run_agent(cfg, "ensure")
    assert r.stdout.startswith("unchanged:"), r.stdout
    assert load_leaf(tmp_path / "tls").serial_number == leaf.serial_number

    conf["names"] = ["hub.example.org"]
    r = run_agent(write_json(cfg, conf), "ensure")
    assert r.returncode == 0 and "names changed" in r.stdout
    assert sans(load_leaf(tmp_path / "tls")) == {"hub.example.org"}


def test_the_state_records_the_live_pairs_digest_and_an_expired_one_is_replaced(tmp_path):
    """The deploy compares `cat fullchain.pem privkey.pem | sha256sum` with the state's
    pair_sha256: the agent records it, also for a state written before it did."""
    import hashlib

    tls = tmp_path / "tls"
    cfg = write_json(tmp_path / "agent.json", {"type": "self-signed", "cert_dir": str(tls),
                                               "names": ["hub.example.org"]})

    def digest() -> str:
        return hashlib.sha256((tls / "fullchain.pem").read_bytes()
                              + (tls / "privkey.pem").read_bytes()).hexdigest()

    assert run_agent(cfg, "ensure").returncode == 0
    state = json.loads((tls / "state.json").read_text())
    assert state["pair_sha256"] == digest()
    # A state from before: the next ensure (unchanged) adds the digest.
    del state["pair_sha256"]
    (tls / "state.json").write_text(json.dumps(state))
    assert run_agent(cfg, "ensure").stdout.startswith("unchanged:")
    assert json.loads((tls / "state.json").read_text())["pair_sha256"] == digest()
    # An expired certificate (with its key) put in place by hand: replaced, recorded.
    old = digest()
    now = dt.datetime.now(dt.timezone.utc)
    cert, key = self_signed_pem("hub.example.org", expired=True)
    (tls / "fullchain.pem").write_text(cert)
    (tls / "privkey.pem").write_text(key)
    assert json.loads((tls / "state.json").read_text())["pair_sha256"] != digest()
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0 and "(expired)" in r.stdout, r.stdout + r.stderr
    assert load_leaf(tls).not_valid_after_utc > now
    assert json.loads((tls / "state.json").read_text())["pair_sha256"] == digest() != old


def test_each_consumer_gets_its_own_copy_and_nothing_else(tmp_path):
    """The original key stays root's only; each consumer's copy is its own (0400), written
    without following a link planted at its path, and dropped consumers lose theirs."""
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    tls_dir = tmp_path / "tls"
    conf = {"type": "self-signed", "cert_dir": str(tls_dir), "names": ["h.example"],
            "consumers": [{"name": "proxy", "user": me}, {"name": "nb", "user": "nobody"}]}
    cfg = write_json(tmp_path / "agent.json", conf)
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0, r.stderr
    assert (tls_dir / "privkey.pem").stat().st_mode & 0o777 == 0o600
    key = (tls_dir / "privkey.pem").read_bytes()
    for name, user in (("proxy", me), ("nb", "nobody")):
        copy = tls_dir / "for" / name / "privkey.pem"
        info = copy.stat()
        assert info.st_mode & 0o777 == 0o400 and info.st_uid == pwd.getpwnam(user).pw_uid
        assert copy.read_bytes() == key
        assert (tls_dir / "for" / name / "fullchain.pem").stat().st_mode & 0o777 == 0o444
    # A second run changes nothing; a link planted at a copy is replaced, not followed.
    assert run_agent(cfg, "ensure").stdout.startswith("unchanged")
    canary = tmp_path / "canary"
    canary.write_text("do not touch")
    (tls_dir / "for" / "nb" / "privkey.pem").unlink()
    (tls_dir / "for" / "nb" / "privkey.pem").symlink_to(canary)
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0 and "copies updated: nb/privkey.pem" in r.stdout, r.stdout
    assert canary.read_text() == "do not touch"
    assert not (tls_dir / "for" / "nb" / "privkey.pem").is_symlink()
    # A consumer dropped from the config loses its copy; status reports the others.
    conf["consumers"] = conf["consumers"][:1]
    write_json(cfg, conf)
    assert "nb removed" in run_agent(cfg, "ensure").stdout
    assert not (tls_dir / "for" / "nb").exists()
    status = json.loads(run_agent(cfg, "status").stdout)
    assert status["consumers"] == {"proxy": "current"}
    # A consumer whose user does not exist is a clear error.
    conf["consumers"] = [{"name": "x", "user": "no-such-user-here"}]
    write_json(cfg, conf)
    r = run_agent(cfg, "ensure")
    assert r.returncode == 1 and "no-such-user-here" in r.stderr and "does not exist" in r.stderr


def test_the_zipapp_is_reproducible():
    from operations.agent.build import _sources, zipapp_bytes

    zipapp_bytes.cache_clear()
    first = zipapp_bytes()
    zipapp_bytes.cache_clear()
    assert zipapp_bytes() == first
    assert all("build.py" not in p.name for p in _sources())


def _self_signed_pair(tmp_path: Path, name: str):
    conf = {"type": "self-signed", "cert_dir": str(tmp_path / name), "names": [f"{name}.example"]}
    assert run_agent(write_json(tmp_path / f"{name}.json", conf), "ensure").returncode == 0
    d = tmp_path / name
    return (d / "fullchain.pem").read_bytes(), (d / "privkey.pem").read_bytes()


def test_provided_checks(tmp_path):
    cert_a, key_a = _self_signed_pair(tmp_path, "a")
    _, key_b = _self_signed_pair(tmp_path, "b")
    pdir = tmp_path / "provided"
    pdir.mkdir()
    (pdir / "fullchain.pem").write_bytes(cert_a)
    (pdir / "privkey.pem").write_bytes(key_b)
    (pdir / "privkey.pem").chmod(0o600)
    conf = {"type": "provided", "cert_dir": str(pdir), "names": ["a.example", "other.example"]}
    cfg = write_json(tmp_path / "p.json", conf)
    r = run_agent(cfg, "ensure")
    assert r.returncode == 1
    assert "does not match the certificate" in r.stderr and len(r.stderr.splitlines()) == 1
    assert "PRIVATE KEY" not in r.stderr

    (pdir / "privkey.pem").write_bytes(key_a)
    r = run_agent(cfg, "ensure")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("provided: valid until")
    assert "does not cover other.example" in r.stderr  # a warning, not a failure


def test_serve_http_redirect_challenge_and_traversal(tmp_path):
    webroot = tmp_path / "webroot"
    chal = webroot / ".well-known" / "acme-challenge"
    chal.mkdir(parents=True)
    (chal / "tok_EN-123").write_text("tok_EN-123.keyauth")
    (webroot / "secret").write_text("do not serve")
    port = free_port()
    cfg = write_json(
        tmp_path / "serve.json",
        {"names": ["hub.example"], "https_port": 8443, "acme": {"webroot": str(webroot)}},
    )
    p = subprocess.Popen(
        [sys.executable, str(AGENT), "--config", str(cfg), "serve-http",
         "--port", str(port), "--bind", "127.0.0.1"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_port(port)

        def req(method, path, host="hub.example:80"):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.putrequest(method, path, skip_host=True)
            c.putheader("Host", host)
            c.endheaders()
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, dict(r.getheaders()), body

        s, h, b = req("GET", "/.well-known/acme-challenge/tok_EN-123")
        assert (s, b) == (200, b"tok_EN-123.keyauth")
        s, h, b = req("HEAD", "/.well-known/acme-challenge/tok_EN-123")
        assert s == 200 and b == b"" and h["Content-Length"] == "18"
        s, h, b = req("GET", "/hub/login?next=%2Fhub")
        assert s == 301 and h["Location"] == "https://hub.example:8443/hub/login?next=%2Fhub"
        s, h, _ = req("GET", "/", host="[2001:db8::1]:80")
        assert h["Location"] == "https://[2001:db8::1]:8443/"
        s, h, _ = req("GET", "/x", host="evil/host@x")  # garbage Host: fall back
        assert h["Location"] == "https://hub.example:8443/x"
        for bad in ("/.well-known/acme-challenge/../../secret",
                    "/.well-known/acme-challenge/..%2F..%2Fsecret",
                    "/.well-known/acme-challenge/", "/.well-known/acme-challenge/missing"):  # fmt: skip
            s, _, b = req("GET", bad)
            assert s == 404 and b"do not serve" not in b, bad
    finally:
        p.terminate()
        _, err = p.communicate(timeout=5)
    assert "GET /.well-known/acme-challenge/tok_EN-123" in err  # one log line per request


def _import_agent():
    """The agent's modules as one namespace (the tests predate the split into modules)."""
    import types

    from operations.agent import acme_client, certs, common, config, dns, store, tls

    merged = types.SimpleNamespace()
    for module in (common, certs, config, store, dns, acme_client, tls):
        vars(merged).update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return merged


class FakeApi(LocalServer):
    """Records requests and answers from a {(method, path): json} table (Cloudflare/dynv6)."""

    def __init__(self, routes: dict):
        self.calls: list[tuple[str, str, str, dict | None]] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                outer.calls.append(
                    (self.command, self.path, self.headers.get("Authorization", ""), body)
                )
                answer = routes.get((self.command, self.path))
                code = 200 if answer is not None else 404
                if self.headers.get("Authorization") != "Bearer T0KEN":
                    code, answer = 401, {"errors": [{"message": "Invalid API token"}]}
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *a):
                pass

        self.serve(H)


def test_cloudflare_and_dynv6_requests(tmp_path, monkeypatch):
    for k in list(os.environ):
        if "proxy" in k.lower():
            monkeypatch.delenv(k)
    agent = _import_agent()
    token_file = tmp_path / "token"
    token_file.write_text("T0KEN")
    token_file.chmod(0o600)

    cf = FakeApi(
        {
            ("GET", "/zones?name=hub.example.org"): {"success": True, "result": []},
            ("GET", "/zones?name=example.org"): {"success": True, "result": [{"id": "z1"}]},
            ("POST", "/zones/z1/dns_records"): {"success": True, "result": {"id": "r9"}},
            ("DELETE", "/zones/z1/dns_records/r9"): {"success": True, "result": {"id": "r9"}},
        }
    )
    try:
        p = agent.Cloudflare({"endpoint": cf.url, "token_file": str(token_file)})
        handle = p.set_txt("hub.example.org", "VALUE")
        p.clear_txt("hub.example.org", handle)
        assert [c[:2] for c in cf.calls] == [
            ("GET", "/zones?name=hub.example.org"),
            ("GET", "/zones?name=example.org"),
            ("POST", "/zones/z1/dns_records"),
            ("DELETE", "/zones/z1/dns_records/r9"),
        ]
        assert all(c[2] == "Bearer T0KEN" for c in cf.calls)
        assert cf.calls[2][3] == {
            "type": "TXT", "name": "_acme-challenge.hub.example.org", "content": "VALUE", "ttl": 60
        }  # fmt: skip
    finally:
        cf.close()

    dyn = FakeApi(
        {
            ("GET", "/zones/by-name/example.dynv6.net"): {"id": 42, "name": "example.dynv6.net"},
            ("POST", "/zones/42/records"): {"id": 7},
            ("DELETE", "/zones/42/records/7"): {},
        }
    )
    try:
        p = agent.Dynv6(
            {"endpoint": dyn.url, "token_file": str(token_file), "zone": "example.dynv6.net"}
        )
        handle = p.set_txt("hub.example.dynv6.net", "VALUE")
        p.clear_txt("hub.example.dynv6.net", handle)
        assert dyn.calls[1][3] == {"type": "TXT", "name": "_acme-challenge.hub", "data": "VALUE"}
        assert dyn.calls[2][:2] == ("DELETE", "/zones/42/records/7")
        # A refused token: one line that names the fix, and never the token.
        token_file.write_text("WRONG-T0KEN")
        p = agent.Dynv6(
            {"endpoint": dyn.url, "token_file": str(token_file), "zone": "example.dynv6.net"}
        )
        with pytest.raises(agent.AgentError) as e:
            p.set_txt("hub.example.dynv6.net", "V")
        msg = str(e.value)
        assert "HTTP 401" in msg and "Invalid API token" in msg and "token_file" in msg, msg
        assert "WRONG" not in msg
    finally:
        dyn.close()


def _preflight_config(tmp_path, names, email="admin@example.org"):
    agent = _import_agent()
    path = write_json(tmp_path / "agent.json", {
        "type": "acme", "cert_dir": str(tmp_path / "certs"), "names": names,
        "acme": {"directory": "https://127.0.0.1:1/dir", "email": email,
                 "webroot": str(tmp_path / "webroot")},
    })
    return agent, agent.Config(str(path))


def test_preflight_refuses_a_loopback_name_with_the_real_resolver(tmp_path):
    agent, cfg = _preflight_config(tmp_path, ["localhost"])
    with pytest.raises(agent.AgentError, match=r"localhost resolves to .*loopback"):
        agent.preflight(cfg)


def test_preflight_says_what_it_cannot_check(tmp_path, capsys):
    import socket as socket_module

    agent, cfg = _preflight_config(tmp_path, ["hub.example.org", "203.0.113.9"])

    def nxdomain(name, *args, **kwargs):
        raise socket_module.gaierror(socket_module.EAI_NONAME, "Name or service not known")

    with pytest.raises(agent.AgentError, match="hub.example.org does not resolve"):
        agent.preflight(cfg, resolve=nxdomain)

    def no_resolver(name, *args, **kwargs):
        raise socket_module.gaierror(socket_module.EAI_AGAIN, "Temporary failure")

    agent.preflight(cfg, resolve=no_resolver)  # a warning, not an error
    assert "cannot check the DNS of hub.example.org" in capsys.readouterr().err

    def elsewhere(name, *args, **kwargs):
        return [(None, None, None, "", ("198.51.100.7", 80))]

    agent.preflight(cfg, resolve=elsewhere, local=lambda: {"10.0.0.5"})
    assert "behind a NAT router" in capsys.readouterr().err
    agent.preflight(cfg, resolve=elsewhere, local=lambda: {"198.51.100.7"})
    assert capsys.readouterr().err == ""


def test_preflight_refuses_a_malformed_email(tmp_path):
    agent, cfg = _preflight_config(tmp_path, ["hub.example.org"], email="not-an-email")
    with pytest.raises(agent.ConfigError, match="not an e-mail address"):
        agent.preflight(cfg)
