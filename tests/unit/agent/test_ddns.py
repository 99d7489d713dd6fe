"""The DDNS updater (operations/agent/ddns.py) and its providers (operations/agent/dns.py),
run in-process against fake provider APIs on 127.0.0.1 that speak each provider's real
protocol: DuckDNS's /update, dynv6's /api/update, Cloudflare's v4 API, a dyndns2 /nic/update
server and a custom update URL, plus "what is my address" echoes.

The fakes record every request (method, path, query, headers, JSON body) so the tests check
what the updater sends, not only what it concludes.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from operations.agent import ddns
from operations.agent.common import USER_AGENT, parse_iso, utcnow
from operations.agent.dns import Cloudflare
from tests.support import LocalServer

TOKEN = "s3cr3t-ddns-T0KEN-4f9c2e"
WRONG = "wr0ng-ddns-T0KEN-77aa01"
IP1, IP2 = "203.0.113.7", "198.51.100.23"
IP6 = "2001:db8:42::7"
HTML_503 = "<html><body><h1>503 Service Unavailable</h1></body></html>"


class Req(NamedTuple):
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: Any  # parsed JSON, the text, or None
    client: str


class FakeProvider(LocalServer):
    """A provider's API (subclasses answer in its real format) plus address echoes: /ip
    (IPv4), /ip6 (IPv6) and /cdn-cgi/trace (Cloudflare's `key=value` lines). API requests land
    in `requests`, echo requests in `echoes`; `force` = (status, body) overrides the API."""

    name = ""
    ECHOES = ("/ip", "/ip6", "/cdn-cgi/trace")

    def __init__(self):
        self.reset()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                url = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode() if n else ""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                req = Req(self.command, url.path,
                          dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                          {k.lower(): v for k, v in self.headers.items()}, body,
                          self.client_address[0])
                if url.path in outer.ECHOES:
                    outer.echoes.append(req)
                    status, answer = outer.echo(url.path)
                else:
                    outer.requests.append(req)
                    status, answer = outer.force or outer.answer(req)
                text = isinstance(answer, str)
                data = (answer if text else json.dumps(answer)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *a):
                pass

        self.serve(Handler)

    def reset(self) -> None:
        self.requests: list[Req] = []
        self.echoes: list[Req] = []
        self.force: tuple[int, Any] | None = None
        self.token = TOKEN
        self.ip4: str = IP1
        self.ip6: str | None = None
        self.records: dict[str, str] = {}  # "A"/"AAAA" -> what the provider now publishes

    def echo(self, path: str) -> tuple[int, str]:
        if path == "/ip":
            return 200, self.ip4 + "\n"
        if path == "/ip6":
            return (200, self.ip6 + "\n") if self.ip6 else (404, "no IPv6 here")
        return 200, f"fl=12f3\nh=cloudflare.com\nip={self.ip4}\nts=1700000000.123\nhttp=http/1.1\n"

    def published(self) -> dict[str, str]:
        return dict(self.records)

    def updates(self) -> list[Req]:
        """The requests that (try to) change a record."""
        return list(self.requests)

    def apply(self, a: str | None, aaaa: str | None) -> bool:
        new = dict(self.records)
        if a:
            new["A"] = a
        if aaaa:
            new["AAAA"] = aaaa
        changed, self.records = new != self.records, new
        return changed

    # subclasses: settings(), answer(req), check_updates(reqs, ipv4, ipv6)


def version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


class FakeDuckDns(FakeProvider):
    """www.duckdns.org/update?domains=&token=[&ip=][&ipv6=][&verbose=true]: `OK` (verbose:
    `OK\\nIP\\nIPV6\\nUPDATED|NOCHANGE`) or `KO` (https://www.duckdns.org/spec.jsp)."""

    name = "duckdns"

    def reset(self):
        super().reset()
        self.subdomains = {"ourfamily"}

    def settings(self) -> dict:
        return {"provider": "duckdns", "names": ["ourfamily.duckdns.org"],
                "subdomain": "ourfamily", "endpoint": self.url}

    def answer(self, req):
        q = req.query
        if req.path != "/update":
            return 404, "Not Found"
        subs = q.get("domains", "").split(",")
        if q.get("token") != self.token or not all(s in self.subdomains for s in subs):
            return 200, "KO"
        ip, ipv6 = q.get("ip", ""), q.get("ipv6", "")
        if not ip and not ipv6:
            ip = req.client  # "if left blank we detect IPv4 addresses"
        if (ip and version(ip) is None) or (ipv6 and version(ipv6) != 6):
            return 200, "KO"
        changed = self.apply(ip if version(ip) == 4 else None,
                             ipv6 or (ip if version(ip) == 6 else None))
        if q.get("verbose") == "true":
            return 200, f"OK\n{ip}\n{ipv6}\n{'UPDATED' if changed else 'NOCHANGE'}"
        return 200, "OK"

    def check_updates(self, reqs, ipv4, ipv6):
        (req,) = reqs
        want = {"domains": "ourfamily", "token": TOKEN, "verbose": "true", "ip": ipv4 or ""}
        if ipv6:
            want["ipv6"] = ipv6
        assert (req.method, req.path, req.query) == ("GET", "/update", want)
        assert "authorization" not in req.headers
        assert req.headers["user-agent"] == USER_AGENT


class FakeDynv6(FakeProvider):
    """dynv6's update API, https://dynv6.com/api/update?zone=&token=[&ipv4=][&ipv6=] (`hostname`
    is an accepted alias of `zone`): `addresses updated` / `addresses unchanged`, HTTP 401
    `invalid authentication token`, 404 `zone not found` (https://dynv6.com/docs/apis)."""

    name = "dynv6"

    def reset(self):
        super().reset()
        self.zones = {"ourfamily.dynv6.net"}

    def settings(self) -> dict:
        # The REST API's base, as configured for DNS-01; the update API sits beside it.
        return {"provider": "dynv6", "names": ["ourfamily.dynv6.net"],
                "zone": "ourfamily.dynv6.net", "endpoint": self.url + "/api/v2"}

    def answer(self, req):
        q = req.query
        if req.path != "/api/update":
            return 404, "404 page not found"
        if q.get("token") != self.token:
            return 401, "invalid authentication token"
        if (q.get("zone") or q.get("hostname") or q.get("Hostname")) not in self.zones:
            return 404, "zone not found"
        ipv4 = req.client if q.get("ipv4") == "auto" else q.get("ipv4")
        ipv6 = q.get("ipv6", "").split("/")[0]
        if (ipv4 and version(ipv4) != 4) or (ipv6 and version(ipv6) != 6):
            return 400, "invalid IP address"
        changed = self.apply(ipv4, ipv6)
        return 200, "addresses updated" if changed else "addresses unchanged"

    def check_updates(self, reqs, ipv4, ipv6):
        (req,) = reqs
        want = {"zone": "ourfamily.dynv6.net", "token": TOKEN}
        if ipv4:
            want["ipv4"] = ipv4
        if ipv6:
            want["ipv6"] = ipv6
        assert (req.method, req.path, req.query) == ("GET", "/api/update", want)
        assert "authorization" not in req.headers
        assert req.headers["user-agent"] == USER_AGENT


class FakeCloudflare(FakeProvider):
    """Cloudflare's v4 API under /client/v4: `Authorization: Bearer`, GET /zones?name=,
    GET/POST /zones/ID/dns_records, PUT/PATCH /zones/ID/dns_records/ID; JSON envelopes
    `{"success", "errors": [{"code", "message"}], "messages", "result"}`."""

    name = "cloudflare"
    BASE = "/client/v4"
    ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353"
    RECORD = "hub.example.org"

    def reset(self):
        super().reset()
        self.zones = {"example.org": self.ZONE_ID}
        self.dns: dict[str, dict] = {}
        self.read_only: str | None = None  # a token that may read but not edit
        self.force_writes: tuple[int, Any] | None = None

    def settings(self) -> dict:
        return {"provider": "cloudflare", "names": [self.RECORD], "zone": "example.org",
                "record": self.RECORD, "proxied": False, "endpoint": self.url + self.BASE}

    def published(self):
        mine = [r for r in self.dns.values() if r["name"] == self.RECORD]
        out = {r["type"]: r["content"] for r in mine}
        assert len(out) == len(mine), f"duplicate records: {mine}"
        return out

    def updates(self):
        return [r for r in self.requests if r.method != "GET"]

    @staticmethod
    def ok(result):
        return 200, {"success": True, "errors": [], "messages": [], "result": result}

    @staticmethod
    def refuse(status, code, message):
        return status, {"success": False, "errors": [{"code": code, "message": message}],
                        "messages": [], "result": None}

    def _invalid(self, req):
        body = req.body if isinstance(req.body, dict) else {}
        if req.headers.get("content-type") != "application/json":
            return self.refuse(400, 6003, "Invalid request headers")
        kind, content = body.get("type"), str(body.get("content", ""))
        if kind not in ("A", "AAAA") or version(content) != (4 if kind == "A" else 6):
            return self.refuse(400, 9005, f"Content for {kind} record is invalid.")
        if not str(body.get("name", "")).endswith("example.org"):
            return self.refuse(400, 9007, "Name is not in the zone.")
        return None

    def answer(self, req):
        auth = req.headers.get("authorization", "")
        if auth not in (f"Bearer {self.token}", f"Bearer {self.read_only}"):
            return self.refuse(403, 9109, "Invalid access token")
        if req.method != "GET":
            if auth != f"Bearer {self.token}":
                return self.refuse(403, 10000, "Authentication error")
            if self.force_writes:
                return self.force_writes
        parts = req.path.removeprefix(self.BASE).strip("/").split("/")
        if parts == ["zones"] and req.method == "GET":
            name = req.query.get("name")
            return self.ok([{"id": zid, "name": zone, "status": "active"}
                            for zone, zid in self.zones.items() if name in (None, zone)])
        if len(parts) in (3, 4) and parts[:1] == ["zones"] and parts[2] == "dns_records" \
                and parts[1] in self.zones.values():
            zid = parts[1]
            if len(parts) == 3 and req.method == "GET":
                wanted = {k: v for k, v in req.query.items() if k in ("type", "name", "content")}
                return self.ok([r for r in self.dns.values() if r["zone_id"] == zid
                                and all(r[k] == v for k, v in wanted.items())])
            if len(parts) == 3 and req.method == "POST":
                problem = self._invalid(req)
                if problem:
                    return problem
                if any(r["type"] == req.body["type"] and r["name"] == req.body["name"]
                       and r["content"] == req.body["content"] for r in self.dns.values()):
                    return self.refuse(400, 81058, "An identical record already exists.")
                rid = f"372e67954025e0ba6aaa6d586b9e0b{len(self.dns) + 1:02d}"
                self.dns[rid] = {"id": rid, "zone_id": zid, "ttl": 1, "proxied": False,
                                 **req.body}
                return self.ok(self.dns[rid])
            if len(parts) == 4 and req.method in ("PUT", "PATCH"):
                if parts[3] not in self.dns:
                    return self.refuse(404, 81044, "Record does not exist.")
                problem = self._invalid(req)
                if problem:
                    return problem
                self.dns[parts[3]].update(req.body)
                return self.ok(self.dns[parts[3]])
        return self.refuse(404, 7003, f"Could not route to {req.path}, perhaps your object "
                                      "identifier is invalid?")

    def check_updates(self, reqs, ipv4, ipv6):
        kinds = [k for k, a in (("A", ipv4), ("AAAA", ipv6)) if a]
        assert len(reqs) == len(kinds), reqs
        prefix = f"{self.BASE}/zones/{self.ZONE_ID}/dns_records"
        for req, kind in zip(reqs, kinds, strict=True):
            assert req.method in ("POST", "PUT", "PATCH") and req.path.startswith(prefix), req
            assert req.headers["authorization"] == f"Bearer {TOKEN}"
            assert req.headers["content-type"] == "application/json"
            assert req.headers["user-agent"] == USER_AGENT
            assert {k: req.body[k] for k in ("type", "name", "content", "proxied")} == {
                "type": kind, "name": self.RECORD, "content": ipv4 if kind == "A" else ipv6,
                "proxied": False}
        # The look-ups before the writes: the zone by name, each record by type and name.
        assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in self.requests)
        lookups = [(r.path, r.query) for r in self.requests if r.method == "GET"]
        assert (f"{self.BASE}/zones", {"name": "example.org"}) in lookups
        for kind in kinds:
            assert (prefix, {"type": kind, "name": self.RECORD}) in lookups


class FakeDynDns2(FakeProvider):
    """A dyndns2 server: GET /nic/update?hostname=&myip= with HTTP basic auth and a User-Agent
    naming the client; plain-text return codes `good IP`, `nochg IP`, `badauth`, `badagent`,
    `nohost`, `notfqdn`, `abuse`, `911`, `dnserr` (Dyn's Remote Access API, No-IP)."""

    name = "dyndns2"

    def reset(self):
        super().reset()
        self.user = "hubuser"
        self.hosts = {"ourhub.ddns.example"}

    def settings(self) -> dict:
        return {"provider": "dyndns2", "names": ["ourhub.ddns.example"], "username": "hubuser",
                "endpoint": self.url}

    def answer(self, req):
        if req.path != "/nic/update":
            return 404, "Not Found"
        agent = req.headers.get("user-agent", "")
        if not agent or agent.startswith(("Python-urllib", "curl")):
            return 200, "badagent"
        basic = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        if req.headers.get("authorization") != f"Basic {basic}":
            return 401, "badauth"
        host = req.query.get("hostname", "")
        if "." not in host:
            return 200, "notfqdn"
        if host not in self.hosts:
            return 200, "nohost"
        myip = req.query.get("myip") or req.client
        addresses = myip.split(",")
        changed = self.apply(next((a for a in addresses if version(a) == 4), None),
                             next((a for a in addresses if version(a) == 6), None))
        return 200, f"{'good' if changed else 'nochg'} {myip}"

    def check_updates(self, reqs, ipv4, ipv6):
        (req,) = reqs
        want = {"hostname": "ourhub.ddns.example", "myip": ",".join(a for a in (ipv4, ipv6) if a)}
        assert (req.method, req.path, req.query) == ("GET", "/nic/update", want)
        scheme, _, creds = req.headers["authorization"].partition(" ")
        assert (scheme, base64.b64decode(creds).decode()) == ("Basic", f"hubuser:{TOKEN}")
        # The protocol wants a User-Agent naming the client (generic ones get `badagent`).
        assert req.headers["user-agent"] == USER_AGENT
        assert USER_AGENT.startswith("pyinfra-jupyter") and "/" in USER_AGENT


class FakeCustom(FakeProvider):
    """An update URL of the user's own provider (`url_template`): 2xx is success."""

    name = "custom"

    def reset(self):
        super().reset()
        self.hosts = {"hub.example.net"}

    def settings(self) -> dict:
        return {"provider": "custom", "names": ["hub.example.net"],
                "url_template": self.url + "/dyn/update?host={hostname}&ip={ip}&ip6={ipv6}"
                                           "&key={token}"}

    def answer(self, req):
        q = req.query
        if req.path != "/dyn/update":
            return 404, "Not Found"
        if q.get("key") != self.token:
            return 403, "bad key"
        if q.get("host") not in self.hosts:
            return 404, "no such host"
        if (q.get("ip") and version(q["ip"]) != 4) or (q.get("ip6") and version(q["ip6"]) != 6):
            return 400, "bad address"
        self.apply(q.get("ip"), q.get("ip6"))
        return 200, "ok"

    def check_updates(self, reqs, ipv4, ipv6):
        (req,) = reqs
        want = {"host": "hub.example.net", "ip": ipv4 or "", "ip6": ipv6 or "", "key": TOKEN}
        assert (req.method, req.path, req.query) == ("GET", "/dyn/update", want)
        assert "authorization" not in req.headers
        assert req.headers["user-agent"] == USER_AGENT


FAKES = {c.name: c for c in (FakeDuckDns, FakeDynv6, FakeCloudflare, FakeDynDns2, FakeCustom)}


@pytest.fixture(scope="module")
def servers():
    started = {name: cls() for name, cls in FAKES.items()}
    try:
        yield started
    finally:
        for server in started.values():
            server.close()


@pytest.fixture(params=sorted(FAKES))
def fake(request, servers):
    server = servers[request.param]
    server.reset()
    return server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Loopback never goes through a proxy from the environment (urlopen caches its opener,
    built from the environment at its first use)."""
    for key in list(os.environ):
        if "proxy" in key.lower():
            monkeypatch.delenv(key)
    monkeypatch.setattr(urllib.request, "_opener", None)


def write_config(tmp_path: Path, fake: FakeProvider, token: str = TOKEN, drop=(), **changes):
    token_file = tmp_path / "ddns.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    cfg = {**fake.settings(), "ipv6": False, "ip_echo_url": fake.url + "/ip",
           "ip_echo_url6": fake.url + "/ip6", "token_file": str(token_file),
           "state_file": str(tmp_path / "state" / "state.json"), **changes}
    for key in drop:
        cfg.pop(key, None)
    path = tmp_path / "ddns.json"
    path.write_text(json.dumps(cfg))
    return path


def run(cfg: Path, command: str = "update") -> int:
    return ddns.main(["--config", str(cfg), command])


def state_text(tmp_path: Path) -> str:
    path = tmp_path / "state" / "state.json"
    return path.read_text() if path.exists() else ""


def state(tmp_path: Path) -> dict:
    return json.loads(state_text(tmp_path))


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def name_of(fake: FakeProvider) -> str:
    return fake.settings()["names"][0]


# ---------------------------------------------------------------------------------------------
# 1-3: first update, no-op, changed address


def test_first_update_sends_the_address(fake, tmp_path, capsys):
    cfg = write_config(tmp_path, fake)
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert err == ""
    fake.check_updates(fake.updates(), IP1, None)
    assert fake.published() == {"A": IP1}
    assert [e.path for e in fake.echoes] == ["/ip"]
    assert fake.echoes[0].headers["user-agent"] == USER_AGENT
    assert one_line(out).endswith(f": {name_of(fake)} -> {IP1} (address from {fake.url}/ip)")
    st = state(tmp_path)
    assert (st["sent_ipv4"], st["sent_ipv6"], st["address"]) == (IP1, None, IP1)
    assert (st["provider"], st["names"]) == (fake.name, [name_of(fake)])
    assert st["last_error"] is None and st["retry_after"] is None and st["cgnat"] is False
    assert parse_iso(st["updated"]) <= utcnow()
    assert TOKEN not in state_text(tmp_path)


def test_second_run_with_the_same_address_is_a_noop(fake, tmp_path, capsys):
    cfg = write_config(tmp_path, fake)
    assert run(cfg) == 0
    first = state(tmp_path)
    fake.requests.clear()
    fake.echoes.clear()
    capsys.readouterr()

    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert fake.requests == []  # the provider is not contacted at all
    assert [e.path for e in fake.echoes] == ["/ip"]  # the address is still checked
    assert one_line(out) == f"unchanged: {name_of(fake)} -> {IP1}" and err == ""
    second = state(tmp_path)
    assert second["updated"] == first["updated"] and second["sent_ipv4"] == IP1


def test_changed_address_sends_exactly_one_update(fake, tmp_path, capsys):
    cfg = write_config(tmp_path, fake)
    assert run(cfg) == 0
    fake.requests.clear()
    fake.ip4 = IP2

    assert run(cfg) == 0
    out, err = capsys.readouterr()
    fake.check_updates(fake.updates(), IP2, None)
    assert fake.published() == {"A": IP2}  # (Cloudflare: the record was edited, not doubled)
    assert out.splitlines()[-1].endswith(f"-> {IP2} (address from {fake.url}/ip)")
    assert state(tmp_path)["sent_ipv4"] == IP2


# ---------------------------------------------------------------------------------------------
# 4: refusals


REFUSALS = [
    ("duckdns", "wrong token", ["DuckDNS refused the update", "KO"]),
    ("dyndns2", "wrong token", ["dyndns2", "badauth", "user name or password is wrong"]),
    ("dyndns2", "unknown host", ["dyndns2", "nohost", "does not exist in this account"]),
    ("dyndns2", "not a FQDN", ["dyndns2", "notfqdn"]),
    ("dynv6", "wrong token", ["dynv6", "HTTP 401", "invalid authentication token"]),
    ("cloudflare", "wrong token", ["HTTP 403", "Invalid access token"]),
    ("cloudflare", "read-only token", ["HTTP 403", "Authentication error"]),
    ("cloudflare", "success false", ["Cloudflare did not set the A record", "DNS Validation"]),
    ("custom", "wrong token", ["custom", "HTTP 403", "bad key"]),
]


@pytest.mark.parametrize(("fake", "how", "words"), REFUSALS, indirect=["fake"],
                         ids=[f"{p}-{h.replace(' ', '-')}" for p, h, _ in REFUSALS])
def test_provider_refusal_is_one_line_without_the_token(fake, how, words, tmp_path, capsys):
    token, changes = TOKEN, {}
    if how == "wrong token":
        token = WRONG
    elif how == "unknown host":
        fake.hosts = {"someone-else.ddns.example"}
    elif how == "not a FQDN":
        fake.hosts = {"ourhub"}
        changes["names"] = ["ourhub"]
    elif how == "read-only token":
        fake.token, fake.read_only = "an-other-token", TOKEN
    elif how == "success false":
        fake.force_writes = (200, {"success": False, "result": None, "messages": [],
                                   "errors": [{"code": 1004, "message": "DNS Validation Error"}]})
    cfg = write_config(tmp_path, fake, token=token, **changes)

    assert run(cfg) == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line.startswith("error: ")
    for word in words:
        assert word in line, line
    assert fake.requests, "the provider was asked"
    assert fake.published() == {}
    st = state(tmp_path)
    assert st["last_error"] and "sent_ipv4" not in st and st.get("retry_after") is None
    basic = base64.b64encode(f"hubuser:{token}".encode()).decode()
    for secret in (token, basic):
        assert secret not in out + err + state_text(tmp_path)


REMEMBERED = [("duckdns", "wrong token"), ("dyndns2", "wrong token"), ("dyndns2", "unknown host"),
              ("dynv6", "wrong token"), ("cloudflare", "wrong token")]


@pytest.mark.parametrize(("fake", "how"), REMEMBERED, indirect=["fake"],
                         ids=[f"{p}-{h.replace(' ', '-')}" for p, h in REMEMBERED])
def test_a_refusal_is_not_repeated_until_the_settings_change(fake, how, tmp_path, capsys):
    # dyndns2: "the client must not repeat the update until the configuration is changed".
    if how == "unknown host":
        fake.hosts = {"someone-else.ddns.example"}
    cfg = write_config(tmp_path, fake, token=WRONG if how == "wrong token" else TOKEN)
    assert run(cfg) == 1
    fake.requests.clear()
    capsys.readouterr()
    assert run(cfg) == 1
    line = one_line(capsys.readouterr().err)
    assert "not asking" in line and "fix the token or the name" in line, line
    assert fake.requests == [], "a refused update was sent again"
    if how == "unknown host":
        # Fixed at the provider (the name made in the account): the same settings, so the
        # sysadmin says so once.
        fake.hosts = {name_of(fake)}
        assert run(cfg) == 1 and fake.requests == []
        assert ddns.main(["--config", str(cfg), "update", "--retry"]) == 0
    else:
        # New settings (the deploy writes the new token): asked again.
        cfg = write_config(tmp_path, fake, token=TOKEN)
        assert run(cfg) == 0
    assert fake.updates()


# ---------------------------------------------------------------------------------------------
# 5: back-off


BACKOFFS = [
    ("dyndns2", (200, "abuse"), "abuse"),
    ("dyndns2", (200, "911"), "911"),
    ("dyndns2", (200, "dnserr"), "dnserr"),
    ("dyndns2", (503, HTML_503), "HTTP 503"),
    ("dyndns2", (429, "Too Many Requests"), "HTTP 429"),
    ("duckdns", (503, HTML_503), "HTTP 503"),
    ("dynv6", (502, "Bad Gateway"), "HTTP 502"),
    ("cloudflare", (429, {"success": False, "errors": [{"code": 971, "message": "Please wait "
                    "and consider throttling your request speed"}], "messages": [],
                          "result": None}), "HTTP 429"),
    ("custom", (500, "Internal Server Error"), "HTTP 500"),
]


@pytest.mark.parametrize(("fake", "answer", "word"), BACKOFFS, indirect=["fake"],
                         ids=[f"{p}-{a[0]}-{w.split()[-1]}" for p, a, w in BACKOFFS])
def test_slow_down_answers_record_a_backoff(fake, answer, word, tmp_path, capsys):
    cfg = write_config(tmp_path, fake)
    fake.force = answer
    before = utcnow().replace(microsecond=0)
    assert run(cfg) == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert word in line and "backing off for 30 minutes" in line, line
    assert TOKEN not in out + err + state_text(tmp_path)
    st = state(tmp_path)
    retry = parse_iso(st["retry_after"])
    assert before + ddns.BACKOFF <= retry <= utcnow() + ddns.BACKOFF
    assert word in st["last_error"] and "sent_ipv4" not in st

    # Right away: nothing contacted (neither the provider nor the echo), exit 0.
    fake.requests.clear()
    fake.echoes.clear()
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert one_line(out).startswith(f"backing off until {st['retry_after']}") and err == ""
    assert fake.requests == [] and fake.echoes == []
    cfg_dict = ddns.load(str(cfg))
    assert ddns.update(cfg_dict, now=retry - dt.timedelta(seconds=1)) == 0
    assert fake.requests == [] and fake.echoes == []

    # Once the back-off is over (and the provider well again): contacted again.
    fake.force = None
    assert ddns.update(cfg_dict, now=retry + dt.timedelta(minutes=1)) == 0
    fake.check_updates(fake.updates(), IP1, None)
    assert fake.published() == {"A": IP1}
    st = state(tmp_path)
    assert (st["retry_after"], st["last_error"], st["sent_ipv4"]) == (None, None, IP1)


# ---------------------------------------------------------------------------------------------
# 6: IPv6


def test_ipv6_is_sent_too(fake, tmp_path, capsys):
    fake.ip6 = IP6
    cfg = write_config(tmp_path, fake, ipv6=True)
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert err == ""
    fake.check_updates(fake.updates(), IP1, IP6)
    assert fake.published() == {"A": IP1, "AAAA": IP6}
    assert [e.path for e in fake.echoes] == ["/ip", "/ip6"]
    assert one_line(out).endswith(f"-> {IP1} {IP6} (address from {fake.url}/ip)")
    st = state(tmp_path)
    assert (st["sent_ipv4"], st["sent_ipv6"]) == (IP1, IP6)

    # Only the IPv6 address changes: that is a change too (Cloudflare edits only the AAAA
    # record; the others' APIs take both addresses in one request).
    fake.requests.clear()
    fake.ip6 = "2001:db8:42::8"
    assert run(cfg) == 0
    fake.check_updates(fake.updates(), None if fake.name == "cloudflare" else IP1,
                       "2001:db8:42::8")
    assert fake.published() == {"A": IP1, "AAAA": "2001:db8:42::8"}


@pytest.mark.parametrize("fake", ["duckdns"], indirect=True)
def test_ipv6_without_an_ipv6_echo_updates_ipv4_only(fake, tmp_path, capsys):
    cfg = write_config(tmp_path, fake, ipv6=True)  # the /ip6 echo answers 404
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert one_line(err).startswith("warning: no IPv6 address found")
    assert "updating IPv4 only" in err
    fake.check_updates(fake.updates(), IP1, None)
    assert state(tmp_path)["sent_ipv6"] is None


@pytest.mark.parametrize("fake", ["duckdns"], indirect=True)
def test_an_ipv6_echo_answering_ipv4_is_not_published_as_aaaa(fake, tmp_path, capsys):
    fake.ip6 = IP2  # e.g. a dual-stack echo reached over IPv4
    cfg = write_config(tmp_path, fake, ipv6=True)
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert one_line(err).startswith("warning: no IPv6 address found")
    fake.check_updates(fake.updates(), IP1, None)
    assert fake.published() == {"A": IP1}


@pytest.mark.parametrize("fake", ["cloudflare"], indirect=True)
def test_an_ipv4_echo_answering_ipv6_is_refused(fake, tmp_path, capsys):
    """Cloudflare's own echo (cloudflare.com is dual-stack) answers the IPv6 address on a host
    with IPv6: never send that as the A record."""
    fake.ip4 = IP6
    cfg = write_config(tmp_path, fake)
    assert run(cfg) == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line.startswith("error: the address echo at ") and "IPv6" in line, line
    assert fake.requests == [] and fake.published() == {}


# ---------------------------------------------------------------------------------------------
# 7: configured address; the provider's own echo


@pytest.mark.parametrize(("fake", "address"), [("cloudflare", IP2), ("duckdns", IP2),
                                               ("dynv6", IP6)], indirect=["fake"])
def test_configured_address_is_published_without_any_echo(fake, address, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setattr(Cloudflare, "echo_url", fake.url + "/cdn-cgi/trace")
    cfg = write_config(tmp_path, fake, address=address)
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    assert fake.echoes == [] and err == ""
    v4, v6 = (address, None) if version(address) == 4 else (None, address)
    fake.check_updates(fake.updates(), v4, v6)
    assert fake.published() == {"A" if v4 else "AAAA": address}
    assert one_line(out).endswith(f"-> {address} (address from the spec)")
    st = state(tmp_path)
    assert (st["source"], st["sent_ipv4"], st["sent_ipv6"]) == ("the spec", v4, v6)


@pytest.mark.parametrize("fake", ["cloudflare"], indirect=True)
def test_cloudflare_uses_its_own_trace_echo(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Cloudflare, "echo_url", fake.url + "/cdn-cgi/trace")
    cfg = write_config(tmp_path, fake, drop=("ip_echo_url",))
    assert run(cfg) == 0
    assert [e.path for e in fake.echoes] == ["/cdn-cgi/trace"]
    fake.check_updates(fake.updates(), IP1, None)
    assert state(tmp_path)["source"] == fake.url + "/cdn-cgi/trace"


# ---------------------------------------------------------------------------------------------
# 8: CGNAT and double NAT: a warning; the name is still updated (ddns.update warns, then sends)


@pytest.mark.parametrize(
    ("echoed", "router_wan", "warning"),
    [
        ("100.64.12.34", None, "100.64.12.34 is in 100.64.0.0/10 (carrier-grade NAT)"),
        ("100.127.255.254", IP1, "100.127.255.254 is in 100.64.0.0/10 (carrier-grade NAT)"),
        (IP1, "192.0.2.1", f"the internet sees {IP1}, your router's WAN address is 192.0.2.1"),
        (IP1, IP1, None),
        ("100.128.0.1", None, None),  # just outside 100.64.0.0/10
    ],
    ids=["cgnat", "cgnat-top", "router-wan-differs", "router-wan-same", "outside-cgnat"],
)
@pytest.mark.parametrize("fake", ["duckdns"], indirect=True)
def test_cgnat_warns_and_still_updates(fake, echoed, router_wan, warning, tmp_path, capsys):
    fake.ip4 = echoed
    cfg = write_config(tmp_path, fake, **({"router_wan": router_wan} if router_wan else {}))
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    if warning:
        assert one_line(err).startswith("warning: " + warning), err
    else:
        assert err == ""
    fake.check_updates(fake.updates(), echoed, None)
    st = state(tmp_path)
    assert st["sent_ipv4"] == echoed and st["cgnat"] is bool(warning)


# ---------------------------------------------------------------------------------------------
# 9: status


@pytest.mark.parametrize("fake", ["dyndns2"], indirect=True)
def test_status_prints_the_state_as_json_without_the_token(fake, tmp_path, capsys):
    cfg = write_config(tmp_path, fake)
    assert run(cfg, "status") == 0
    assert json.loads(capsys.readouterr().out) == {}  # nothing sent yet

    assert run(cfg) == 0
    capsys.readouterr()
    fake.requests.clear()
    fake.echoes.clear()
    assert run(cfg, "status") == 0
    out, err = capsys.readouterr()
    assert err == "" and fake.requests == [] and fake.echoes == []  # status contacts nobody
    shown = json.loads(out)
    assert shown == state(tmp_path)
    assert shown["sent_ipv4"] == IP1 and shown["provider"] == "dyndns2"
    assert TOKEN not in out and base64.b64encode(f"hubuser:{TOKEN}".encode()).decode() not in out


# ---------------------------------------------------------------------------------------------
# 10: bad configs


def bad(case: str, change: dict, message: str, **kw):
    return pytest.param(case, change, message, id=case.replace(" ", "-"), **kw)


BAD_CONFIGS = [
    bad("unknown provider", {"provider": "nsupdate"},
        "config: provider must be one of cloudflare, custom, duckdns, dyndns2, dynv6"),
    bad("no test-only provider", {"provider": "fake"}, "config: provider must be one of"),
    bad("no names", {"drop": ("names",)}, "config: names is empty"),
    bad("empty names", {"names": []}, "config: names is empty"),
    bad("blank name", {"names": [""]}, "config: names"),
    bad("names not a list", {"names": "ourfamily.duckdns.org"}, "config: names"),
    bad("no token_file", {"drop": ("token_file",)}, "token_file is required"),
    bad("missing token file", {"token_file": "MISSING"},
        "cannot read DNS API token file MISSING: No such file or directory"),
    bad("token file is a directory", {"token_file": "DIR"},
        "cannot read DNS API token file DIR: Is a directory"),
    bad("empty token file", {"token": ""}, "is empty"),
    bad("dyndns2 without endpoint", {"provider": "dyndns2", "drop": ("endpoint",)},
        "config: the dyndns2 server (endpoint) is missing"),
    bad("address not an address", {"address": "hub.example.org"}, "config: address"),
    bad("not JSON", {"text": '{"provider": '}, "is not valid JSON"),
    bad("no config file", {"text": None}, "cannot read config"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_CONFIGS)
@pytest.mark.parametrize("fake", ["duckdns"], indirect=True)
def test_bad_config_exits_2_with_one_line(fake, case, change, message, tmp_path, capsys):
    change = dict(change)
    cfg = write_config(tmp_path, fake, token=change.pop("token", TOKEN),
                       drop=change.pop("drop", ()))
    conf = json.loads(cfg.read_text())
    if change.get("token_file") == "MISSING":
        change["token_file"] = str(tmp_path / "no-such-token")
    elif change.get("token_file") == "DIR":
        change["token_file"] = str(tmp_path)
    if "token_mode" in change:
        Path(conf["token_file"]).chmod(change.pop("token_mode"))
    if "text" in change:
        text = change.pop("text")
        if text is None:
            cfg.unlink()
        else:
            cfg.write_text(text)
    else:
        cfg.write_text(json.dumps({**conf, **change}))
    message = message.replace("MISSING", str(tmp_path / "no-such-token")).replace(
        "DIR", str(tmp_path))

    assert run(cfg) == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line.startswith("error: ") and message in line, line
    assert out == "" and fake.requests == [] and fake.echoes == []
    assert TOKEN not in err


# ---------------------------------------------------------------------------------------------
# the provider changes, the address does not


def test_a_new_provider_gets_the_address_even_when_it_is_unchanged(servers, tmp_path, capsys):
    """Moving the name from one provider to another: the new one has never been sent the
    address, so the state's `sent_ipv4` (sent to the old one) is no reason to skip it."""
    old, new = servers["custom"], servers["dyndns2"]
    old.reset()
    new.reset()
    new.hosts = {"hub.example.net"}
    cfg = write_config(tmp_path, old)
    assert run(cfg) == 0
    assert old.published() == {"A": IP1}

    cfg = write_config(tmp_path, new, names=["hub.example.net"], ip_echo_url=old.url + "/ip")
    assert run(cfg) == 0
    out, err = capsys.readouterr()
    (req,) = new.updates()
    assert req.query == {"hostname": "hub.example.net", "myip": IP1}
    assert new.published() == {"A": IP1}
    assert state(tmp_path)["provider"] == "dyndns2"
