"""The agent's command line: TLS commands (the original interface) and `ddns`.

    python agent.pyz --config TLS.json ensure | renew | status | serve-http [--port N]
    python agent.pyz ddns --config DDNS.json update | status

Exit codes: 0 ok, 1 failed (one line on stderr naming the cause), 2 configuration error,
3 ACME failed but a self-signed placeholder was installed. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import sys

from .common import AgentError, redact, short_reason


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ddns"]:
        from .ddns import main as ddns_main

        return ddns_main(argv[1:])
    ap = argparse.ArgumentParser(description="pyinfra-jupyter host agent (TLS)")
    ap.add_argument("--config", default="/etc/pyinfra-jupyter/tls/agent.json")
    sub = ap.add_subparsers(dest="command")
    sub.add_parser("ensure", help="make sure a valid certificate exists")
    sub.add_parser("renew", help="ensure, then run post_renew if the certificate changed")
    sh = sub.add_parser("serve-http", help="port-80 ACME responder and HTTPS redirector")
    sh.add_argument("--port", type=int, default=80)
    sh.add_argument("--bind", default=None, help="address to bind (default: all, dual-stack)")
    sub.add_parser("status", help="print the current certificate as JSON")
    args = ap.parse_args(argv)
    if not args.command:
        ap.print_usage(sys.stderr)
        return 2
    try:
        from .config import Config

        cfg = Config(args.config)
        if args.command == "serve-http":
            from .responder import serve_http

            serve_http(cfg, args.port, args.bind)
            return 0
        from . import tls

        if args.command == "status":
            return tls.status(cfg)
        result = tls.ensure(cfg)
        print(result.line)
        sys.stdout.flush()
        if args.command == "renew" and result.changed and cfg.post_renew:
            tls.run_post_renew(cfg)
            print(f"post_renew: ran {len(cfg.post_renew)} command(s)")
        return 0
    except AgentError as e:
        print(redact(f"error: {e}"), file=sys.stderr)
        return e.code
    except ImportError as e:
        print(f"error: missing Python package ({e.name}) — install acme, josepy and "
              "cryptography in the agent's venv", file=sys.stderr)
        return 1
    except PermissionError as e:
        print(f"error: permission denied: {e.filename} — run the agent as root", file=sys.stderr)
        return 1
    except Exception as e:  # one line, never a traceback into the deploy output / journal
        print(redact(f"error: unexpected {type(e).__name__}: {short_reason(e)}"), file=sys.stderr)
        return 1
