"""The plain-HTTP port: ACME HTTP-01 challenges from the webroot, everything else
redirected to HTTPS."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import sys
import urllib.parse

from .acme_client import CHALLENGE_PREFIX
from .config import Config

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # ACME tokens are base64url (RFC 8555 8.1)

HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")

class ChallengeHandler(http.server.BaseHTTPRequestHandler):
    server_version = "pyinfra-jupyter-acme"
    sys_version = ""
    webroot = "/var/lib/pyinfra-jupyter/acme-challenge"
    https_port = 443
    fallback_host = "localhost"

    def do_GET(self):
        self._handle(body=True)

    def do_HEAD(self):
        self._handle(body=False)

    def _handle(self, body: bool) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(CHALLENGE_PREFIX):
            token = path[len(CHALLENGE_PREFIX) :]
            # Only token-shaped names: no '/', '..' or '%' can get through, so no traversal.
            data = None
            if TOKEN_RE.match(token):
                p = os.path.join(self.webroot, ".well-known", "acme-challenge", token)
                with contextlib.suppress(OSError), open(p, "rb") as f:
                    data = f.read(4096)
            if data is None:
                return self._send(404, b"not found\n", body)
            return self._send(200, data, body, ctype="application/octet-stream")
        host = self.headers.get("Host", "").strip()
        m = HOST_RE.match(host)
        hostname = m.group(1) if m else self.fallback_host
        port = "" if self.https_port == 443 else f":{self.https_port}"
        target = self.path if self.path.startswith("/") else "/"
        loc = f"https://{hostname}{port}{target}"
        self._send(301, b"", body, extra={"Location": loc})

    def _send(self, code, data, body, ctype="text/plain; charset=utf-8", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_POST(self):
        self._send(405, b"method not allowed\n", True)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def log_message(self, fmt, *args):
        # One line per request; journald adds the timestamp.
        sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")
        sys.stderr.flush()

def serve_http(cfg: Config, port: int, bind: str | None) -> None:
    handler = type(
        "Handler",
        (ChallengeHandler,),
        {
            "webroot": cfg.webroot,
            "https_port": cfg.https_port,
            "fallback_host": (cfg.names[0] if cfg.names else "localhost"),
        },
    )

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    if bind is None and socket.has_ipv6:
        # Dual-stack by default: one socket for IPv4 and IPv6 clients.
        class DualStack(Server):
            address_family = socket.AF_INET6

            def server_bind(self):
                with contextlib.suppress(OSError, AttributeError):
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                super().server_bind()

        try:
            srv = DualStack(("::", port), handler)
        except OSError:
            srv = Server(("0.0.0.0", port), handler)
    else:
        addr = bind or "0.0.0.0"
        cls = Server
        if ":" in addr:
            cls = type("Server6", (Server,), {"address_family": socket.AF_INET6})
        srv = cls((addr.strip("[]"), port), handler)
    print(f"serve-http: listening on port {port}, webroot {cfg.webroot}", file=sys.stderr)
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
