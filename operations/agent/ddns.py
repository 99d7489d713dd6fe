"""The DDNS updater: keep a name pointing at this host's public address.

    python agent.pyz ddns --config /etc/pyinfra-jupyter/ddns/ddns.json update
    python agent.pyz ddns --config ... status

Config (JSON, written by the deploy; the secret is in its own 0600 file)::

    {"provider": "duckdns" | "dynv6" | "cloudflare" | "dyndns2" | "custom",
     "names": ["ourfamily.duckdns.org"],
     "ipv6": false,                      # also the AAAA record
     "address": "203.0.113.7",           # optional: publish this, do not discover
     "ip_echo_url": "https://...",       # optional: answers the caller's address as text
     "ip_echo_url6": "https://...",      # optional: the same over IPv6
     "endpoint": "https://...",          # optional: the provider's API base (tests, mirrors)
     "token_file": "/etc/pyinfra-jupyter/ddns/token",
     "state_file": "/var/lib/pyinfra-jupyter/ddns/state.json",
     "router_wan": "198.51.100.7",       # optional: the router's WAN address (CGNAT check)
     ...provider settings: subdomain | zone | record, proxied | username | url_template}

Each run: find the public address (the configured one, the configured echo, the provider's
own echo, or a public echo service), and only when it differs from what the state says was
last sent, send it. Provider refusals exit 1 with one readable line (the token never shown);
when the provider asks clients to slow down (dyndns2 `abuse`/`911`, HTTP 5xx/429) the state
records a back-off and runs exit 0 without contacting it until then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import sys

from .common import (
    AgentError,
    ConfigError,
    atomic_write,
    iso,
    parse_iso,
    read_json_config,
    redact,
    utcnow,
    warn,
)
from .dns import PROVIDERS, dns_provider

BACKOFF = dt.timedelta(minutes=30)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
DEFAULT_ECHO = "https://api.ipify.org"
DEFAULT_ECHO6 = "https://api6.ipify.org"


def load(path: str) -> dict:
    cfg = read_json_config(path)
    if cfg.get("provider") not in PROVIDERS:
        raise ConfigError(f"config: provider must be one of {', '.join(sorted(PROVIDERS))}")
    if not cfg.get("names"):
        raise ConfigError("config: names is empty")
    if not isinstance(cfg["names"], list) or not all(
            isinstance(name, str) and name.strip() for name in cfg["names"]):
        raise ConfigError("config: names must be a list of DNS names")
    if cfg.get("address"):
        try:
            ipaddress.ip_address(str(cfg["address"]))
        except ValueError:
            raise ConfigError(f"config: address {cfg['address']!r} is not an IP address") from None
    cfg.setdefault("state_file", "/var/lib/pyinfra-jupyter/ddns/state.json")
    return cfg


def read_state(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _echo(url: str, provider, version: int = 4) -> str:
    """The caller's IPv`version` address as an echo service sees it (plain text, or
    Cloudflare's `ip=...` trace lines)."""
    text = provider.fetch(url).decode("utf-8", "replace")
    match = re.search(r"^ip=(\S+)$", text, re.M)
    candidate = (match.group(1) if match else text).strip()
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise AgentError(f"the address echo at {url.split('?')[0]} answered something that "
                         "is not an address") from None
    if address.version != version:  # a dual-stack echo reached over the other protocol
        raise AgentError(f"the address echo at {url.split('?')[0]} answered an "
                         f"IPv{address.version} address, not an IPv{version} one")
    return str(address)


def discover(cfg: dict, provider) -> tuple[str | None, str | None, str]:
    """(IPv4, IPv6 or None, where they came from)."""
    if cfg.get("address"):
        address = cfg["address"]
        ipv4 = address if ipaddress.ip_address(address).version == 4 else None
        ipv6 = address if ipaddress.ip_address(address).version == 6 else None
        return ipv4, ipv6, "the spec"
    url = cfg.get("ip_echo_url") or provider.echo_url or DEFAULT_ECHO
    ipv4 = _echo(url, provider)
    ipv6 = None
    if cfg.get("ipv6"):
        url6 = cfg.get("ip_echo_url6") or DEFAULT_ECHO6
        try:
            ipv6 = _echo(url6, provider, version=6)
        except AgentError as exc:
            warn(f"no IPv6 address found ({exc}); updating IPv4 only")
    return ipv4, ipv6, url.split("?")[0]


def cgnat_warning(address: str | None, router_wan: str | None) -> str | None:
    if not address:
        return None
    if ipaddress.ip_address(address) in CGNAT:
        return (f"{address} is in {CGNAT} (carrier-grade NAT): forwards on your router cannot "
                "reach this host; use ACME DNS-01 and a tunnel")
    if router_wan and router_wan != address:
        return (f"the internet sees {address}, your router's WAN address is {router_wan}: "
                "another NAT is in front of the router; port forwarding cannot work")
    return None


def fingerprint(cfg: dict) -> str:
    """What a refusal is remembered against: the settings and the token (hashed)."""
    token = b""
    if cfg.get("token_file"):
        try:
            with open(cfg["token_file"], "rb") as f:
                token = f.read()
        except OSError:
            pass
    blob = json.dumps(cfg, sort_keys=True).encode() + b"\0" + token
    return hashlib.sha256(blob).hexdigest()


def update(cfg: dict, now: dt.datetime | None = None, retry: bool = False) -> int:
    now = now or utcnow()
    state = read_state(cfg["state_file"])
    if not retry and state.get("refused") and state["refused"] == fingerprint(cfg):
        # dyndns2 asks clients not to repeat a refused update (badauth, nohost, ...) until
        # their settings change; other providers get the same courtesy.
        raise AgentError(f"not asking {cfg['provider']} again: it refused these settings "
                         f"({state.get('last_error', 'no detail')}); fix the token or the "
                         "name (a deploy with new settings) and the next run tries again, or "
                         "run `update --retry` once the account is fixed")
    retry = parse_iso(state.get("retry_after"))
    if retry and now < retry:
        print(f"backing off until {iso(retry)}: the provider asked clients to slow down "
              f"({state.get('last_error', 'no detail')})")
        return 0
    provider = dns_provider(cfg)
    ipv4, ipv6, source = discover(cfg, provider)
    problem = cgnat_warning(ipv4, cfg.get("router_wan"))
    if problem:
        warn(problem)
    names = ", ".join(cfg["names"])
    addresses = " ".join(a for a in (ipv4, ipv6) if a)
    new = {**state, "address": ipv4, "ipv6": ipv6, "source": source, "cgnat": bool(problem),
           "names": cfg["names"], "provider": cfg["provider"], "checked": iso(now)}
    last_sent = tuple(state.get(k) for k in ("sent_ipv4", "sent_ipv6", "names", "provider"))
    if last_sent == (ipv4, ipv6, cfg["names"], cfg["provider"]) and not state.get("last_error"):
        print(f"unchanged: {names} -> {addresses}")
        _save(cfg, new)
        return 0
    try:
        what = provider.update_address(ipv4, ipv6)
    except AgentError as exc:
        new["last_error"] = str(exc)
        if getattr(exc, "refused", False) and not getattr(exc, "backoff", False):
            new["refused"] = fingerprint(cfg)
        if getattr(exc, "backoff", False):
            new["retry_after"] = iso(now + BACKOFF)
            exc.args = (f"{exc} (backing off for {int(BACKOFF.total_seconds() // 60)} minutes)",)
        _save(cfg, new)
        raise
    new.update(sent_ipv4=ipv4, sent_ipv6=ipv6, updated=iso(now), last_error=None,
               retry_after=None, refused=None)
    _save(cfg, new)
    print(f"{what}: {names} -> {addresses} (address from {source})")
    return 0


def _save(cfg: dict, state: dict) -> None:
    path = cfg["state_file"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode(), 0o644)


def status(cfg: dict) -> int:
    print(json.dumps(read_state(cfg["state_file"]), indent=2, sort_keys=True))
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="agent ddns", description="the DDNS updater")
    parser.add_argument("--config", default="/etc/pyinfra-jupyter/ddns/ddns.json")
    parser.add_argument("command", choices=("update", "status"))
    parser.add_argument("--retry", action="store_true",
                        help="ask the provider again even though it refused these settings")
    args = parser.parse_args(argv)
    try:
        cfg = load(args.config)
        return update(cfg, retry=args.retry) if args.command == "update" else status(cfg)
    except AgentError as exc:
        print(redact(f"error: {exc}"), file=sys.stderr)
        return exc.code
    except Exception as exc:  # one line in the journal, never a traceback with a token in it
        print(redact(f"error: unexpected {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1

