"""DNS providers: TXT records for ACME DNS-01, and address updates for the DDNS updater.

One class per provider knows both APIs; standard library only (urllib)."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request

from .common import SECRETS, USER_AGENT, AgentError, ConfigError, redact, short_reason, warn


class DnsProvider:
    """A DNS provider's API. TXT records (ACME DNS-01): `set_txt`/`clear_txt`. Address
    records (the DDNS updater): `update_address`, and `echo_url`, the provider's own "what is
    my address" when it has one."""

    name = "dns"
    default_endpoint = ""
    default_propagation = 30
    echo_url: str | None = None

    def __init__(self, dns_cfg: dict):
        self.cfg = dns_cfg
        self.endpoint = (dns_cfg.get("endpoint") or self.default_endpoint).rstrip("/")
        self.token = self._read_token(dns_cfg.get("token_file"))
        self.propagation = float(dns_cfg.get("propagation_seconds", self.default_propagation))
        ca = dns_cfg.get("ca_bundle")
        self.ssl_ctx = ssl.create_default_context(cafile=ca) if ca else None

    needs_token = True

    def _read_token(self, path: str | None) -> str:
        if not self.needs_token:
            return ""
        if not path:
            raise ConfigError(f"config: acme.dns.token_file is required for {self.name}")
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise ConfigError(f"cannot read DNS API token file {path}: {e.strerror}") from None
        if st.st_mode & 0o077:
            warn(f"{path} is readable by group/others; chmod 600 it")
        if not token:
            raise ConfigError(f"DNS API token file {path} is empty")
        SECRETS.append(token)
        return token

    redact = staticmethod(redact)

    def request(self, method: str, path: str, body=None, query: dict | None = None, auth=True):
        url = self.endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        try:
            req = urllib.request.Request(url, data=data, method=method)
        except ValueError:
            raise ConfigError(f"config: acme.dns.endpoint {self.endpoint!r} is not a URL") from None
        req.add_header("User-Agent", USER_AGENT)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        # Only ever report the path: DuckDNS puts the token in the query string.
        where = f"{self.name} API {method} {self.endpoint}{path}"
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_ctx) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = ""
            with contextlib.suppress(Exception):
                detail = self._error_detail(e.read())
            hint = " — check the provider's API token (token_file)" if e.code in (401, 403) else ""
            error = AgentError(
                self.redact(f"DNS-01: {where} failed: HTTP {e.code} {e.reason}{detail}{hint}")
            )
            error.backoff = e.code >= 500 or e.code == 429  # the DDNS updater waits then
            error.refused = e.code in (401, 403)  # ... or does not ask again until fixed
            raise error from None
        except (urllib.error.URLError, OSError) as e:
            raise AgentError(
                self.redact(f"DNS-01: cannot reach {where}: {short_reason(e)}")
            ) from None
        return raw

    def fetch(self, url: str, headers: dict | None = None, refuse_http_errors: bool = True) -> bytes:
        """GET a full URL (never printed whole: tokens travel in query strings). With
        `refuse_http_errors` False, an HTTP error's body is returned like a success, except
        for 5xx/429 (the server asks clients to slow down: an error with `backoff` set)."""
        request = urllib.request.Request(url, method="GET")
        request.add_header("User-Agent", self.cfg.get("user_agent") or USER_AGENT)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        where = f"{self.name} {urllib.parse.urlsplit(url).netloc}"
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.ssl_ctx) as answer:
                return answer.read()
        except urllib.error.HTTPError as exc:
            body = b""
            with contextlib.suppress(Exception):
                body = exc.read()
            backoff = exc.code >= 500 or exc.code == 429
            if not refuse_http_errors and body and not backoff:
                return body
            error = AgentError(self.redact(f"{where} answered HTTP {exc.code} {exc.reason}"
                                           + (": " + body.decode("utf-8", "replace").strip()[:80]
                                              if body else "")))
            error.backoff = backoff
            error.refused = exc.code in (401, 403)
            raise error from None
        except (urllib.error.URLError, OSError) as exc:
            error = AgentError(self.redact(f"cannot reach {where}: {short_reason(exc)}"))
            error.backoff = False
            raise error from None

    @staticmethod
    def _error_detail(raw: bytes) -> str:
        try:
            j = json.loads(raw)
        except ValueError:
            return ""
        errs = j.get("errors") if isinstance(j, dict) else None
        if errs:
            return " (" + "; ".join(str(e.get("message", e)) for e in errs)[:200] + ")"
        return ""

    def json_request(self, *a, **kw):
        raw = self.request(*a, **kw)
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise AgentError(
                f"DNS-01: {self.name} API returned something that is not JSON"
            ) from None

    def set_txt(self, domain: str, value: str):
        raise ConfigError(f"{self.name} cannot set TXT records (ACME DNS-01)")

    def clear_txt(self, domain: str, handle) -> None:
        raise ConfigError(f"{self.name} cannot set TXT records (ACME DNS-01)")

    def update_address(self, ipv4: str | None, ipv6: str | None) -> str:
        """Point the configured name(s) at these addresses; returns the provider's word for
        what happened. Raises AgentError (with `backoff` set when the provider asks us to
        slow down) on a refusal."""
        raise ConfigError(f"{self.name} cannot update address records")

    def zone_for(self, domain: str, exists) -> str:
        zone = (self.cfg.get("zone") or "").rstrip(".").lower()
        if zone:
            if domain != zone and not domain.endswith("." + zone):
                raise ConfigError(f"config: {domain} is not inside acme.dns.zone {zone}")
            return zone
        labels = domain.split(".")
        for i in range(len(labels) - 1):
            cand = ".".join(labels[i:])
            if exists(cand):
                return cand
        raise AgentError(f"DNS-01: no {self.name} zone found for {domain} — set acme.dns.zone")

class DuckDns(DnsProvider):
    name = "duckdns"
    default_endpoint = "https://www.duckdns.org"
    default_propagation = 60  # DuckDNS answers OK before its name servers all have the record

    def subdomain(self, domain: str) -> str:
        if self.cfg.get("subdomain"):
            return str(self.cfg["subdomain"]).replace(".duckdns.org", "")
        if domain.endswith(".duckdns.org"):
            return domain[: -len(".duckdns.org")].rsplit(".", 1)[-1]
        raise ConfigError(
            f"config: {domain} is not a duckdns.org name — set acme.dns.subdomain to the DuckDNS "
            "subdomain its _acme-challenge record is CNAMEd to"
        )

    def _update(self, domain: str, query: dict) -> None:
        sub = self.subdomain(domain)
        q = {"domains": sub, "token": self.token, "verbose": "true"}
        q.update(query)
        answer = self.request("GET", "/update", query=q, auth=False).decode("utf-8", "replace")
        if not answer.startswith("OK"):
            raise AgentError(
                f"DNS-01: DuckDNS refused the TXT update for {sub} (answer: "
                f"{self.redact(answer.split()[0] if answer.split() else 'empty')}) — check that "
                "the token in acme.dns.token_file owns this subdomain"
            )

    def set_txt(self, domain: str, value: str):
        self._update(domain, {"txt": value})
        return None

    def clear_txt(self, domain: str, handle) -> None:
        self._update(domain, {"txt": "removed", "clear": "true"})

    def update_address(self, ipv4: str | None, ipv6: str | None) -> str:
        # www.duckdns.org/update?domains=&token=&ip=&ipv6=&verbose=true answers
        # "OK\n<ip>\n<ipv6>\nUPDATED|NOCHANGE", or "KO" (wrong token or subdomain).
        names = self.cfg.get("names") or []
        query = {"domains": self.subdomain(names[0] if names else ""), "token": self.token,
                 "verbose": "true", "ip": ipv4 or ""}
        if ipv6:
            query["ipv6"] = ipv6
        answer = self.request("GET", "/update", query=query, auth=False).decode("utf-8", "replace")
        words = answer.split()
        if not words or words[0] != "OK":
            said = self.redact(words[0][:20]) if words else "empty"
            error = AgentError(f"DuckDNS refused the update (answer: {said}): check that the "
                               f"token owns the subdomain {query['domains']}")
            error.refused = True
            raise error
        return words[-1].lower() if words[-1] in ("UPDATED", "NOCHANGE") else "ok"

class Dynv6(DnsProvider):
    name = "dynv6"
    default_endpoint = "https://dynv6.com/api/v2"
    default_propagation = 30

    def _zone(self, domain: str) -> tuple[str, object]:
        zones = self.json_request("GET", "/zones") if not self.cfg.get("zone") else None
        if zones is not None:
            by_name = {str(z.get("name", "")).lower(): z.get("id") for z in zones}
            zone = self.zone_for(domain, lambda c: c in by_name)
            return zone, by_name[zone]
        zone = self.zone_for(domain, lambda c: True)
        z = self.json_request("GET", "/zones/by-name/" + urllib.parse.quote(zone))
        return zone, z["id"]

    def set_txt(self, domain: str, value: str):
        zone, zid = self._zone(domain)
        rel = domain[: -len(zone)].rstrip(".") if domain != zone else ""
        name = "_acme-challenge" + ("." + rel if rel else "")
        rec = self.json_request(
            "POST", f"/zones/{zid}/records", {"type": "TXT", "name": name, "data": value}
        )
        return (zid, rec.get("id"))

    def clear_txt(self, domain: str, handle) -> None:
        zid, rid = handle
        if rid is not None:
            self.request("DELETE", f"/zones/{zid}/records/{rid}")

    def update_address(self, ipv4: str | None, ipv6: str | None) -> str:
        # The update API sits beside the REST API: https://dynv6.com/api/update?zone=&token=
        # &ipv4=&ipv6= answers "addresses updated" / "addresses unchanged" (HTTP 200), or an
        # error status ("invalid authentication token", "zone not found").
        base = self.endpoint.removesuffix("/v2")
        query = {"zone": self.cfg.get("zone") or (self.cfg.get("names") or [""])[0],
                 "token": self.token}
        if ipv4:
            query["ipv4"] = ipv4
        if ipv6:
            query["ipv6"] = ipv6
        url = base + "/update?" + urllib.parse.urlencode(query)
        answer = self.fetch(url).decode("utf-8", "replace").strip()
        return "unchanged" if "unchanged" in answer else "updated"

class Cloudflare(DnsProvider):
    name = "cloudflare"
    default_endpoint = "https://api.cloudflare.com/client/v4"
    default_propagation = 15

    def _zone_id(self, domain: str):
        if self.cfg.get("zone_id"):
            return self.cfg["zone_id"]
        found: dict = {}

        def exists(cand: str) -> bool:
            j = self.json_request("GET", "/zones", query={"name": cand})
            if j and j.get("result"):
                found[cand] = j["result"][0]["id"]
                return True
            return False

        zone = self.zone_for(domain, exists)
        return found.get(zone) or (exists(zone) and found[zone])

    def set_txt(self, domain: str, value: str):
        zid = self._zone_id(domain)
        j = self.json_request(
            "POST",
            f"/zones/{zid}/dns_records",
            {"type": "TXT", "name": "_acme-challenge." + domain, "content": value, "ttl": 60},
        )
        if not j or not j.get("success"):
            raise AgentError(
                "DNS-01: Cloudflare did not accept the TXT record"
                + self._error_detail(json.dumps(j or {}).encode())
            )
        return (zid, j["result"]["id"])

    def clear_txt(self, domain: str, handle) -> None:
        zid, rid = handle
        self.request("DELETE", f"/zones/{zid}/dns_records/{rid}")

    echo_url = "https://cloudflare.com/cdn-cgi/trace"  # lines "key=value", one is "ip=..."

    def update_address(self, ipv4: str | None, ipv6: str | None) -> str:
        record = self.cfg.get("record") or (self.cfg.get("names") or [""])[0]
        zid = self._zone_id(record)
        done = []
        for kind, address in (("A", ipv4), ("AAAA", ipv6)):
            if not address:
                continue
            found = self.json_request("GET", f"/zones/{zid}/dns_records",
                                      query={"type": kind, "name": record})
            self._check(found, f"look up the {kind} record of {record}")
            existing = (found.get("result") or [None])[0]
            body = {"type": kind, "name": record, "content": address, "ttl": 1,
                    "proxied": bool(self.cfg.get("proxied"))}
            if existing and existing.get("content") == address:
                done.append(f"{kind} unchanged")
                continue
            if existing:
                answer = self.json_request("PUT", f"/zones/{zid}/dns_records/{existing['id']}", body)
            else:
                answer = self.json_request("POST", f"/zones/{zid}/dns_records", body)
            self._check(answer, f"set the {kind} record of {record}")
            done.append(f"{kind} updated")
        return ", ".join(done) or "nothing to update"

    def _check(self, answer, what: str) -> None:
        if not answer or not answer.get("success"):
            raise AgentError(f"Cloudflare did not {what}"
                             + self._error_detail(json.dumps(answer or {}).encode()))


class DynDns2(DnsProvider):
    """The dyndns2 protocol (No-IP, Dyn, many routers' services): GET /nic/update with HTTP
    basic auth and a User-Agent naming the client; plain-text answers."""

    name = "dyndns2"
    default_endpoint = ""
    # Answers that mean "stop for a while" (the protocol asks clients to back off on these).
    BACKOFF = ("abuse", "911", "dnserr")
    REFUSED = {
        "badauth": "the user name or password is wrong",
        "nohost": "the host name does not exist in this account",
        "notfqdn": "the host name is not a fully qualified domain name",
        "badagent": "the provider blocked this client (User-Agent)",
        "!donator": "the account does not allow this feature",
        "abuse": "the provider blocked the host name for abuse",
        "911": "the provider has a problem on its side",
        "dnserr": "the provider has a DNS problem on its side",
    }

    def __init__(self, dns_cfg: dict):
        super().__init__(dns_cfg)
        if not self.endpoint:
            raise ConfigError("config: the dyndns2 server (endpoint) is missing")

    def update_address(self, ipv4: str | None, ipv6: str | None) -> str:
        import base64

        hostname = (self.cfg.get("names") or [""])[0]
        query = {"hostname": hostname}
        addresses = [a for a in (ipv4, ipv6) if a]
        if addresses:
            query["myip"] = ",".join(addresses)
        credentials = f"{self.cfg.get('username', '')}:{self.token}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        answer = self.fetch(self.endpoint + "/nic/update?" + urllib.parse.urlencode(query),
                            headers=headers, refuse_http_errors=False)
        text = answer.decode("utf-8", "replace").strip()
        code = text.split()[0] if text.split() else ""
        if code in ("good", "nochg"):
            return "updated" if code == "good" else "unchanged"
        reason = self.REFUSED.get(code, f"unexpected answer {text[:60]!r}")
        error = AgentError(f"dyndns2 {self.endpoint}: {code or 'empty answer'}: {reason}")
        error.backoff = code in self.BACKOFF
        # dyndns2: a client must not repeat a refused update until its settings change.
        error.refused = code in self.REFUSED
        raise error


class CustomUrl(DnsProvider):
    """Any provider with an update URL: {hostname}, {ip}, {ipv6}, {token} filled in, URL-encoded.
    A 2xx answer is success."""

    name = "custom"
    needs_token = False

    def __init__(self, dns_cfg: dict):
        self.needs_token = bool(dns_cfg.get("token_file"))
        super().__init__(dns_cfg)

    def update_address(self, ipv4: str | None, ipv6: str | None) -> str:
        quote = urllib.parse.quote
        url = self.cfg["url_template"].format(
            hostname=quote((self.cfg.get("names") or [""])[0]), ip=quote(ipv4 or ""),
            ipv6=quote(ipv6 or ""), token=quote(self.token))
        self.fetch(url)
        return "sent"


PROVIDERS = {"duckdns": DuckDns, "dynv6": Dynv6, "cloudflare": Cloudflare,
             "dyndns2": DynDns2, "custom": CustomUrl}

def dns_provider(dns: dict) -> DnsProvider:
    """The provider for the `acme.dns` (or DDNS) settings `dns`."""
    cls = PROVIDERS.get(dns.get("provider"))
    if cls is None:
        raise ConfigError(
            f"config: acme.dns.provider must be one of {', '.join(sorted(PROVIDERS))}"
        )
    return cls(dns)
