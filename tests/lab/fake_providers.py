"""Stand-ins for the DDNS providers' update APIs, for the lab, in their real formats.

    python fake_providers.py --listen 10.231.5.1:8057 --token TOKEN --refuse-file FILE

- dynv6 (`/dynv6/api/update?zone=Z&token=T&ipv4=A[&ipv6=B]`): "addresses updated" or
  "addresses unchanged"; a wrong token: HTTP 401 "invalid authentication token".
- Cloudflare (`/cf/client/v4`, Bearer token): GET /zones?name=Z, GET/POST/PUT
  /zones/ID/dns_records, JSON envelopes {"success", "errors", "result"}; a wrong token:
  HTTP 403 with Cloudflare's "Authentication error" (code 10000).
- dyndns2 (`/dyn/nic/update?hostname=H&myip=A`, HTTP basic auth USER:TOKEN, a User-Agent
  required): "good A" or "nochg A"; wrong credentials: "badauth"; no User-Agent: "badagent".

While `--refuse-file` exists every request is treated as carrying a wrong token. Each
update is logged on one line: "PROVIDER NAME ip=A ipv6=B STATUS"; requests themselves are
not logged (dynv6 carries its token in the query string).
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import urllib.parse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--user", default="lab-user")
    parser.add_argument("--refuse-file", required=True)
    args = parser.parse_args()
    refuse = Path(args.refuse_file)
    records: dict[tuple[str, str], dict] = {}  # (type, name) -> record (Cloudflare)
    addresses: dict[tuple[str, str], tuple[str, str]] = {}  # (provider, name) -> (ip, ipv6)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code: int, body, content_type: str = "text/plain") -> None:
            data = (json.dumps(body) if content_type == "application/json" else body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, provider: str, name: str, ip: str, ipv6: str) -> str:
            old = addresses.get((provider, name))
            addresses[(provider, name)] = (ip, ipv6)
            status = "unchanged" if old == (ip, ipv6) else "updated"
            print(f"{provider} {name} ip={ip} ipv6={ipv6} {status}", flush=True)
            return status

        def _token_ok(self, given: str) -> bool:
            return given == args.token and not refuse.exists()

        def do_GET(self):  # noqa: N802 - http.server's names
            self._handle("GET")

        def do_POST(self):  # noqa: N802
            self._handle("POST")

        def do_PUT(self):  # noqa: N802
            self._handle("PUT")

        def _handle(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            if url.path == "/dynv6/api/update":
                if not self._token_ok(query.get("token", "")):
                    print("dynv6 refused: invalid authentication token", flush=True)
                    return self._answer(401, "invalid authentication token")
                status = self._record("dynv6", query.get("zone", ""), query.get("ipv4", ""),
                                      query.get("ipv6", ""))
                return self._answer(200, f"addresses {status}")
            if url.path.startswith("/cf/client/v4/"):
                return self._cloudflare(method, url.path.removeprefix("/cf/client/v4"), query)
            if url.path == "/dyn/nic/update":
                return self._dyndns2(query)
            return self._answer(404, "not found")

        def _cloudflare(self, method: str, path: str, query: dict) -> None:
            auth = self.headers.get("Authorization", "")
            if not self._token_ok(auth.removeprefix("Bearer ")):
                print("cloudflare refused: Authentication error", flush=True)
                return self._answer(403, {"success": False, "result": None, "errors": [
                    {"code": 10000, "message": "Authentication error"}]}, "application/json")
            ok = {"success": True, "errors": [], "messages": []}
            if path == "/zones":
                return self._answer(200, {**ok, "result": [{"id": "zone1", "name": query.get(
                    "name", "")}] if query.get("name") == "lab.example" else []},
                    "application/json")
            if path == "/zones/zone1/dns_records" and method == "GET":
                found = records.get((query.get("type", ""), query.get("name", "")))
                return self._answer(200, {**ok, "result": [found] if found else []},
                                    "application/json")
            if path.startswith("/zones/zone1/dns_records") and method in ("POST", "PUT"):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                record = {**body, "id": f"rec-{body.get('type')}"}
                records[(body.get("type", ""), body.get("name", ""))] = record
                ip = body.get("content", "") if body.get("type") == "A" else ""
                ipv6 = body.get("content", "") if body.get("type") == "AAAA" else ""
                print(f"cloudflare {body.get('name')} ip={ip} ipv6={ipv6} "
                      f"{'updated' if method == 'PUT' else 'created'}", flush=True)
                return self._answer(200, {**ok, "result": record}, "application/json")
            return self._answer(404, {"success": False, "errors": [{"code": 7003}]},
                                "application/json")

        def _dyndns2(self, query: dict) -> None:
            if not self.headers.get("User-Agent"):
                return self._answer(200, "badagent")
            auth = self.headers.get("Authorization", "")
            try:
                user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode() \
                    .partition(":")
            except ValueError:
                user = password = ""
            if user != args.user or not self._token_ok(password):
                print("dyndns2 refused: badauth", flush=True)
                return self._answer(200, "badauth")
            ips = [a for a in query.get("myip", "").split(",") if a]
            ip = next((a for a in ips if ":" not in a), "")
            ipv6 = next((a for a in ips if ":" in a), "")
            status = self._record("dyndns2", query.get("hostname", ""), ip, ipv6)
            return self._answer(200, f"{'good' if status == 'updated' else 'nochg'} "
                                     f"{','.join(ips)}")

        def log_message(self, fmt, *a):  # requests are logged by _record, tokens never
            pass

    host, _, port = args.listen.rpartition(":")
    http.server.ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
