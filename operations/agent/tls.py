"""What the TLS commands do: ensure (issue, make or check), renew, status, preflight."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys

from .acme_client import Acme
from .certs import (
    cert_names,
    cert_pem,
    issuer_str,
    key_matches,
    key_pem,
    load_certs,
    load_key,
    make_self_signed,
    name_covered,
    new_private_key,
    not_after,
    not_before,
    one_third_renew_after,
)
from .common import AgentError, ConfigError, is_ip, iso, short_reason, utcnow, warn
from .config import Config
from .store import Store, cert_state


class Result:
    def __init__(self, changed: bool, line: str):
        self.changed = changed
        self.line = line

def describe(leaf, renew_after: dt.datetime, basis: str) -> str:
    return f"valid until {iso(not_after(leaf))}, renew after {iso(renew_after)} ({basis})"

def needs_new(cfg: Config, state: dict, pair) -> str | None:
    if pair is None:
        if os.path.exists(os.path.join(cfg.cert_dir, "fullchain.pem")):
            return "existing certificate/key unreadable or mismatched"
        return "no certificate yet"
    leaf = pair[0]
    if cert_names(leaf) != sorted(cfg.names):
        return "names changed"
    if state.get("type") == "acme-placeholder" and cfg.type == "acme":
        return "replacing the self-signed placeholder"
    if state.get("type") != cfg.type:
        return f"type changed to {cfg.type}"
    if cfg.type == "acme" and state.get("directory") != cfg.acme.get("directory"):
        return "ACME directory changed"
    if utcnow() >= not_after(leaf):
        return "expired"
    return None

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

def local_addresses() -> set[str]:
    """This host's own addresses (best effort: `hostname -I`, plus loopback)."""
    found = {"127.0.0.1", "::1"}
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
        found.update(out.stdout.split())
    except (OSError, subprocess.SubprocessError):
        pass
    return found

def preflight(cfg: Config, resolve=socket.getaddrinfo, local=local_addresses) -> None:
    """Checks before asking the CA; raises AgentError for what would surely fail, warns for
    what cannot be judged from here (DNS from inside a NAT, port 80 from outside)."""
    email = cfg.acme.get("email")
    if email and not EMAIL_RE.match(email):
        raise ConfigError(f"acme.email {email!r} is not an e-mail address")
    if cfg.acme.get("challenge", "http-01") != "http-01" or not cfg.acme.get("preflight", True):
        return
    mine = local()
    for name in cfg.names:
        if is_ip(name):
            continue
        try:
            addresses = {info[4][0] for info in resolve(name, 80, type=socket.SOCK_STREAM)}
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_NONAME:
                raise AgentError(
                    f"{name} does not resolve (no such name in DNS): create an A (or AAAA) "
                    "record pointing at this host's public address, then deploy again"
                ) from None
            warn(f"preflight: cannot check the DNS of {name} from this host "
                 f"({short_reason(exc)}); the CA will look it up itself")
            continue
        loopback = sorted(a for a in addresses if a.startswith("127.") or a == "::1")
        if loopback:
            raise AgentError(
                f"{name} resolves to {', '.join(loopback)} (loopback): the CA cannot reach "
                "this host there; point the name at the host's public address"
            )
        if not addresses & mine:
            warn(f"preflight: {name} resolves to {', '.join(sorted(addresses))}, not to an "
                 "address of this host: fine behind a NAT router forwarding port 80 here, "
                 "otherwise fix the DNS record")

def ensure_acme(cfg: Config, store: Store) -> Result:
    state = store.state()
    pair = store.load_pair()
    reason = needs_new(cfg, state, pair)
    acme = None
    ari_info: dict = {}
    if reason is None:
        leaf = pair[0]
        renew_at, basis = one_third_renew_after(leaf), "1/3 of lifetime left"
        try:
            acme = Acme(cfg, store)
            chosen, ari_info = acme.ari(leaf, state.get("ari") or {})
            if chosen is not None:
                renew_at, basis = chosen, "ARI window"
        except AgentError as e:
            warn(f"{e} (keeping the 1/3-of-lifetime rule)")
        except Exception as e:  # ARI is advisory: any failure falls back to the 1/3 rule
            warn(
                f"ACME renewalInfo unavailable ({short_reason(e)}); using the 1/3-of-lifetime rule"
            )
        if utcnow() < renew_at:
            new_state = dict(state)
            new_state.update(renew_after=iso(renew_at), renew_basis=basis)
            if ari_info:
                new_state["ari"] = ari_info
            if new_state != state:
                new_state["updated"] = iso(utcnow())
                store.save_state(new_state)
            return Result(False, "unchanged: " + describe(leaf, renew_at, basis))
        reason = f"renewal due ({basis})"
    try:
        preflight(cfg)
        if acme is None:
            acme = Acme(cfg, store)
        fullchain, kpem = acme.issue(cfg.names)
    except AgentError as e:
        if cfg.acme.get("placeholder") and (
            pair is None or state.get("type") == "acme-placeholder"
        ):
            # Nothing to serve yet (first deploy, DNS not pointed here yet): a self-signed pair
            # lets the HTTPS services start; its state type makes the next run retry ACME.
            if pair is None:
                ensure_self_signed(cfg, store, state_type="acme-placeholder")
            e.code = 3
            e.args = (f"{e} (a self-signed placeholder is installed; the next renew retries)",)
        raise
    certs = load_certs(fullchain)
    leaf = certs[0]
    key = load_key(kpem)
    if not key_matches(key, leaf):
        raise AgentError(
            "the CA returned a certificate that does not match our key — not installed"
        )
    missing = [n for n in cfg.names if not name_covered(n, cert_names(leaf))]
    if missing:
        raise AgentError(
            f"the CA returned a certificate without {', '.join(missing)} — not installed"
        )
    current = store.install(fullchain, kpem, leaf)
    renew_at = one_third_renew_after(leaf)
    store.save_state(
        cert_state(
            cfg,
            leaf,
            renew_at,
            "1/3 of lifetime left",
            {
                "directory": cfg.acme.get("directory"),
                "challenge": cfg.challenge,
                "current": current,
            },
        )
    )
    return Result(
        True,
        f"issued: {', '.join(cfg.names)} by {issuer_str(leaf)} ({reason}); "
        + describe(leaf, renew_at, "1/3 of lifetime left"),
    )

def ensure_self_signed(cfg: Config, store: Store, state_type: str = "self-signed") -> Result:
    state = store.state()
    pair = store.load_pair()
    reason = needs_new(cfg, state, pair)
    if reason is None:
        leaf = pair[0]
        renew_at = one_third_renew_after(leaf)
        if utcnow() < renew_at:
            return Result(False, "unchanged: " + describe(leaf, renew_at, "1/3 of lifetime left"))
        reason = "renewal due (1/3 of lifetime left)"
    days = int((cfg.raw.get("self_signed") or {}).get("days", 365))
    key = new_private_key(cfg.key_type)
    leaf = make_self_signed(cfg.names, key, days)
    current = store.install(cert_pem(leaf), key_pem(key), leaf)
    renew_at = one_third_renew_after(leaf)
    store.save_state(
        cert_state(
            cfg, leaf, renew_at, "1/3 of lifetime left", {"current": current, "type": state_type}
        )
    )
    return Result(
        True,
        f"generated: self-signed for {', '.join(cfg.names)} ({reason}); "
        + describe(leaf, renew_at, "1/3 of lifetime left"),
    )

def check_provided(cfg: Config, store: Store) -> Result:
    """Validate operator-supplied files; problems that break TLS are errors, others warnings."""
    try:
        with open(cfg.cert_file, "rb") as f:
            certs = load_certs(f.read())
    except OSError as e:
        raise AgentError(f"provided certificate {cfg.cert_file}: {e.strerror}") from None
    except ValueError:
        raise AgentError(f"provided certificate {cfg.cert_file} holds no PEM certificate") from None
    try:
        st = os.stat(cfg.key_file)
        with open(cfg.key_file, "rb") as f:
            key = load_key(f.read())
    except OSError as e:
        raise AgentError(f"provided key {cfg.key_file}: {e.strerror}") from None
    except (ValueError, TypeError):
        raise AgentError(
            f"provided key {cfg.key_file} is not an unencrypted PEM private key"
        ) from None
    leaf = certs[0]
    if not key_matches(key, leaf):
        idx = next((i for i, c in enumerate(certs) if key_matches(key, c)), None)
        if idx is not None:
            raise AgentError(
                f"provided certificate {cfg.cert_file}: the server certificate must come first, "
                f"but it is certificate #{idx + 1} — reorder: server cert, then intermediates"
            )
        raise AgentError(
            f"provided key {cfg.key_file} does not match the certificate in {cfg.cert_file} "
            "— upload the key that belongs to this certificate"
        )
    for i in range(len(certs) - 1):
        if certs[i].issuer != certs[i + 1].subject:
            raise AgentError(
                f"provided chain {cfg.cert_file}: certificate #{i + 2} did not issue #{i + 1} — "
                "order it server cert, then intermediate(s) up to (not including) the root"
            )
    now = utcnow()
    if now >= not_after(leaf):
        raise AgentError(
            f"provided certificate {cfg.cert_file} expired at {iso(not_after(leaf))} — upload a "
            "renewed one"
        )
    if now < not_before(leaf):
        raise AgentError(
            f"provided certificate {cfg.cert_file} is not valid before {iso(not_before(leaf))} "
            "— check the host clock"
        )
    have = cert_names(leaf)
    missing = [n for n in cfg.names if not name_covered(n, have)]
    if missing:
        warn(f"provided certificate does not cover {', '.join(missing)} (it has {', '.join(have)})")
    renew_at = one_third_renew_after(leaf)
    if now >= renew_at:
        warn(f"provided certificate expires {iso(not_after(leaf))}: replace it soon")
    if st.st_mode & 0o007:
        warn(f"provided key {cfg.key_file} is readable by others; chmod 600 (or 640)")
    new_state = cert_state(
        cfg, leaf, renew_at, "1/3 of lifetime left", {"cert_file": cfg.cert_file}
    )
    old = store.state()
    changed = old.get("serial") != new_state["serial"]
    if {k: v for k, v in old.items() if k != "updated"} != {
        k: v for k, v in new_state.items() if k != "updated"
    }:
        store.save_state(new_state)
    return Result(changed, "provided: " + describe(leaf, renew_at, "1/3 of lifetime left"))

def ensure(cfg: Config) -> Result:
    cfg.check_for_issuance()
    store = Store(cfg)
    store.prepare()
    with store.lock():
        if cfg.type == "acme":
            result = ensure_acme(cfg, store)
        elif cfg.type == "self-signed":
            result = ensure_self_signed(cfg, store)
        else:
            result = check_provided(cfg, store)
        # Copies before anything restarts: a service restarted by post_renew reads the new pair.
        if cfg.type == "provided":
            copies = store.sync_consumers(cfg.consumers, cfg.cert_file, cfg.key_file)
        else:
            copies = store.sync_consumers(cfg.consumers)
        store.note_pair()
    if copies:
        return Result(True, result.line + f"; copies updated: {', '.join(copies)}")
    return result

def run_post_renew(cfg: Config) -> None:
    for argv in cfg.post_renew:
        try:
            p = subprocess.run(argv, timeout=300, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AgentError(
                f"certificate renewed, but post_renew {' '.join(argv)} failed: {short_reason(e)}"
            ) from None
        if p.returncode != 0:
            raise AgentError(
                f"certificate renewed, but post_renew {' '.join(argv)} exited {p.returncode} — "
                "services may still use the old certificate"
            )

def status(cfg: Config) -> int:
    store = Store(cfg)
    if cfg.type == "provided":
        pair = store.load_pair(cfg.cert_file, cfg.key_file)
    else:
        pair = store.load_pair()
    if pair is None:
        # Nothing on stdout, so callers parsing it (the deploy's fact) see "no certificate".
        print(f"no usable certificate/key pair in {cfg.cert_dir}", file=sys.stderr)
        return 1
    leaf = pair[0]
    state = store.state()
    serial = format(leaf.serial_number, "x")
    renew_after = state.get("renew_after") if state.get("serial") == serial else None
    out = {
        "names": cert_names(leaf),
        "not_before": iso(not_before(leaf)),
        "not_after": iso(not_after(leaf)),
        "issuer": issuer_str(leaf),
        "renew_after": renew_after or iso(one_third_renew_after(leaf)),
        "serial": serial,
        "type": state.get("type", cfg.type),  # "acme-placeholder": ACME has not succeeded yet
        "consumers": store.consumers_status(cfg.consumers),
    }
    print(json.dumps(out, indent=2))
    return 0
