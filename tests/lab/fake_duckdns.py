"""A DuckDNS-style API for the lab: TXT updates become pebble-challtestsrv DNS records.

    python fake_duckdns.py --listen 10.231.5.1:8056 --challtestsrv http://10.231.5.1:8055 \
        --token-file TOKEN

GET /update?domains=SUB&token=T&txt=VALUE[&clear=true] answers "OK" (or "KO" for a wrong
token), like www.duckdns.org, and sets or clears `_acme-challenge.SUB.duckdns.org.`.
GET /update?domains=SUB&token=T&ip=A[&ipv6=B]&verbose=true (the DDNS updater) answers
"OK\nA\nB\nUPDATED" (or NOCHANGE), and logs the address. While the file
`--answer-file` exists, every update is answered with its content instead (e.g. "KO").
"""

from __future__ import annotations

import argparse
import http.server
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.pebble_support import post_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--challtestsrv", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--answer-file", default=None)
    args = parser.parse_args()
    addresses: dict[str, str] = {}
    token = Path(args.token_file).read_text().strip()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            ok = url.path == "/update" and query.get("token") == token and query.get("domains")
            forced = Path(args.answer_file) if args.answer_file else None
            if forced is not None and forced.exists():
                body = forced.read_bytes()
                print(f"update domains={query.get('domains')} answered={body!r}", flush=True)
            elif ok and "txt" not in query:
                old = addresses.get(query["domains"])
                addresses[query["domains"]] = query.get("ip", "")
                status = "NOCHANGE" if old == query.get("ip", "") else "UPDATED"
                body = f"OK\n{query.get('ip', '')}\n{query.get('ipv6', '')}\n{status}".encode()
                print(f"update domains={query['domains']} ip={query.get('ip', '')} "
                      f"ipv6={query.get('ipv6', '')} {status}", flush=True)
            elif ok:
                host = f"_acme-challenge.{query['domains']}.duckdns.org."
                if query.get("clear") == "true":
                    post_json(f"{args.challtestsrv}/clear-txt", {"host": host})
                else:
                    post_json(f"{args.challtestsrv}/set-txt", {"host": host,
                                                                "value": query.get("txt", "")})
                body = b"OK"
                print(f"update domains={query.get('domains')} ok=True", flush=True)
            else:
                body = b"KO"
                print(f"update domains={query.get('domains')} ok=False", flush=True)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    address, port = args.listen.rsplit(":", 1)
    http.server.ThreadingHTTPServer((address, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
