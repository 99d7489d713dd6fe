#!/usr/bin/env python3
"""pyinfra-jupyter TLS agent: obtains, renews and serves what a host needs for HTTPS.

One self-contained file, uploaded to the host by the deploy and run from a small venv
(packages: ``acme``, ``josepy``, ``cryptography``; ``serve-http`` and ``status`` need only the
standard library and ``cryptography``). It never needs pyinfra or the project spec.

Usage::

    python agent.py --config /etc/pyinfra-jupyter/tls/agent.json ensure
    python agent.py --config ... renew          # what the systemd timer runs
    python agent.py --config ... serve-http --port 80 [--bind ADDR]
    python agent.py --config ... status

Config (JSON)::

    {
      "type": "acme" | "self-signed" | "provided",
      "cert_dir": "/etc/pyinfra-jupyter/tls",
      "names": ["hub.example.org", "203.0.113.7"],      # DNS names and/or IP addresses
      "key_type": "ec" | "rsa",                          # certificate key; default "ec" (P-256)
      "key_group": "jupyter",                            # optional: privkey.pem root:GROUP 0640
      "https_port": 443,                                 # where serve-http redirects to
      "post_renew": [["systemctl", "try-reload-or-restart", "jupyterhub"]],
                                                         # one argv (list of str) or a list of argvs
      "self_signed": {"days": 365},                      # type self-signed only
      "provided": {"cert_file": ".../fullchain.pem",     # type provided only; defaults shown
                   "key_file": ".../privkey.pem"},
      "acme": {
        "directory": "https://acme-v02.api.letsencrypt.org/directory",
        "profile": "shortlived",                         # optional ACME profile (draft-aaron-
                                                         #   acme-profiles); LE needs it for IPs
        "placeholder": true,                             # optional: no cert at all and ACME
                                                         #   fails -> install a self-signed one
                                                         #   so services can start (exit 3)
        "email": "admin@example.org",                    # optional but recommended
        "challenge": "http-01" | "dns-01",
        "webroot": "/var/lib/pyinfra-jupyter/acme-challenge",
        "ca_bundle": "/path/ca.pem",                     # optional: trust for the ACME server
        "timeout": 120,                                  # seconds for validation + issuance
        "preflight": true,                               # check DNS from here before the CA
        "dns": {                                         # dns-01 only
          "provider": "duckdns" | "dynv6" | "cloudflare" | "fake",
          "token_file": "/etc/pyinfra-jupyter/tls/dns-token",   # 0600, holds the API token
          "endpoint": "http://127.0.0.1:8055",           # optional base-URL override (tests)
          "subdomain": "myhub",                          # duckdns: account subdomain (derived
                                                         #   from NAME.duckdns.org if absent)
          "zone": "example.org",                         # dynv6 / cloudflare (else derived)
          "zone_id": "...",                              # cloudflare: skips the zone lookup
          "propagation_seconds": 30                      # wait after the API accepted the record
        }
      }
    }

Files in cert_dir::

    fullchain.pem -> current/fullchain.pem   (symlinks, what services read)
    privkey.pem   -> current/privkey.pem
    current       -> archive/<UTC time>-<serial>/   (swapped with one atomic rename, so a reader
                                                    never sees a new cert with an old key)
    archive/...   the last few issued pairs; privkey 0600 (0640 root:key_group)
    account.key   ACME account key (PEM, 0600), created once and reused
    state.json    what the agent knows: names, serial, validity, renew_after and how it was
                  decided, ARI window
    .lock         flock, so the timer and a deploy never issue at the same time

Commands:

ensure
    Make sure a valid certificate for exactly ``names`` exists. Issues when there is none, when
    names (or type / ACME directory) changed, when the key does not match, or when renewal is
    due. Renewal is due when less than a third of the certificate's lifetime remains or, when the
    ACME server offers ARI (RFC 9773 ``renewalInfo``), at a random time inside the suggested
    window. Prints one line ("unchanged: ..." / "issued: ..."); on failure prints one line
    naming the cause and the fix to stderr, exits non-zero and leaves the old pair untouched.
renew
    ``ensure``, then run the ``post_renew`` commands if the certificate changed.
serve-http
    Port-80 responder: serves ``/.well-known/acme-challenge/<token>`` from the webroot and
    301-redirects everything else to https://<host>[:https_port]<path>.
status
    Print JSON about the current certificate; exit 1 if there is none.

Exit codes: 0 ok, 1 operation failed, 2 configuration error, 3 ACME failed but a self-signed
placeholder was installed (``acme.placeholder``). Secrets (API tokens, keys) are
never printed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import grp
import http.server
import ipaddress
import json
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

USER_AGENT = "pyinfra-jupyter-tls-agent/1"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # ACME tokens are base64url (RFC 8555 8.1)
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
KEEP_ARCHIVES = 3
UTC = dt.timezone.utc


class AgentError(Exception):
    """A failure to report as one line; ``code`` is the exit status."""

    code = 1


class ConfigError(AgentError):
    code = 2


# --------------------------------------------------------------------------------------------
# small helpers


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s: str | None) -> dt.datetime | None:
    """Parse our own timestamps and RFC 3339 ones (Python < 3.11 rejects 'Z' and nanoseconds)."""
    if not s:
        return None
    s = s.strip().replace("z", "Z")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m:
        frac = (m.group(2) or "")[:7]  # at most microseconds
        s = m.group(1) + frac + m.group(3)
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


# Secrets read at run time (DNS API tokens); every line we print passes through redact().
SECRETS: list[str] = []


def redact(text: str) -> str:
    for secret in SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return text


def warn(msg: str) -> None:
    print("warning: " + redact(msg), file=sys.stderr)


def short_reason(exc: BaseException) -> str:
    """The useful core of a network exception ('Connection refused'), without object reprs."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip()
    for pat, label in (
        (r"certificate verify failed(: [^'\"()]*[^'\"() ])?", None),
        (r"timed? ?out", "timed out"),
        (r"Name or service not known|nodename nor servname", "name does not resolve"),
    ):
        m = re.search(pat, text, re.I)
        if m:
            return label or m.group(0)
    text = re.sub(r"<[^>]*>", "", text)
    return (text[:160] or type(exc).__name__).strip()


def normalize_name(name: str) -> str:
    name = str(name).strip().rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return name


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# config


class Config:
    def __init__(self, path: str):
        self.path = path
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(f"config {path} is not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a JSON object")
        self.raw = raw
        self.type = raw.get("type", "acme")
        if self.type not in ("acme", "self-signed", "provided"):
            raise ConfigError(
                f"config: type must be acme, self-signed or provided, not {self.type!r}"
            )
        self.cert_dir = raw.get("cert_dir", "/etc/pyinfra-jupyter/tls")
        names = raw.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError("config: names must be a list of DNS names / IP addresses")
        seen: list[str] = []
        for n in names:
            n = normalize_name(n)
            if n not in seen:
                seen.append(n)
        self.names = seen
        self.key_type = raw.get("key_type", "ec")
        if self.key_type not in ("ec", "rsa"):
            raise ConfigError("config: key_type must be 'ec' or 'rsa'")
        self.key_group = raw.get("key_group") or None
        self.https_port = int(raw.get("https_port", 443))
        self.post_renew = self._post_renew(raw.get("post_renew") or [])
        acme = raw.get("acme") or {}
        self.acme = acme
        self.webroot = acme.get("webroot", "/var/lib/pyinfra-jupyter/acme-challenge")
        self.challenge = acme.get("challenge", "http-01")
        provided = raw.get("provided") or {}
        self.cert_file = provided.get("cert_file") or os.path.join(self.cert_dir, "fullchain.pem")
        self.key_file = provided.get("key_file") or os.path.join(self.cert_dir, "privkey.pem")

    @staticmethod
    def _post_renew(value):
        if not isinstance(value, list):
            raise ConfigError("config: post_renew must be a list (one argv or a list of argvs)")
        if value and all(isinstance(v, str) for v in value):
            return [value]
        if all(isinstance(v, list) and v and all(isinstance(a, str) for a in v) for v in value):
            return value
        raise ConfigError("config: post_renew must be a list of strings or a list of lists")

    def check_for_issuance(self) -> None:
        """Checks that only matter when we make certificates (serve-http/status skip them)."""
        if not self.names:
            raise ConfigError("config: names is empty — list the host's public DNS names/IPs")
        if self.type == "acme":
            if not self.acme.get("directory"):
                raise ConfigError("config: acme.directory (the CA's ACME directory URL) is missing")
            if self.challenge not in ("http-01", "dns-01"):
                raise ConfigError("config: acme.challenge must be http-01 or dns-01")
            wild = [n for n in self.names if n.startswith("*.")]
            if wild and self.challenge != "dns-01":
                raise ConfigError(
                    f"config: wildcard name {wild[0]} needs acme.challenge dns-01 "
                    "(HTTP-01 cannot validate wildcards)"
                )
            ips = [n for n in self.names if is_ip(n)]
            if ips and self.challenge == "dns-01":
                raise ConfigError(f"config: IP address {ips[0]} cannot be validated with dns-01")


# --------------------------------------------------------------------------------------------
# certificates (cryptography)


def _x509():
    from cryptography import x509

    return x509


def load_certs(pem: bytes) -> list:
    x509 = _x509()
    if hasattr(x509, "load_pem_x509_certificates"):
        return x509.load_pem_x509_certificates(pem)
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    if not blocks:
        raise ValueError("no certificate found")
    return [x509.load_pem_x509_certificate(b) for b in blocks]


def load_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


def not_before(cert) -> dt.datetime:
    t = getattr(cert, "not_valid_before_utc", None)
    return t if t is not None else cert.not_valid_before.replace(tzinfo=UTC)


def not_after(cert) -> dt.datetime:
    t = getattr(cert, "not_valid_after_utc", None)
    return t if t is not None else cert.not_valid_after.replace(tzinfo=UTC)


def one_third_renew_after(cert) -> dt.datetime:
    """Renew when less than a third of the lifetime remains (scales from 6-day to 1-year certs)."""
    nb, na = not_before(cert), not_after(cert)
    return na - (na - nb) / 3


def cert_names(cert) -> list[str]:
    x509 = _x509()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [normalize_name(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return sorted(set(names))


def name_covered(name: str, cert_name_list: list[str]) -> bool:
    if name in cert_name_list:
        return True
    if is_ip(name) or "." not in name:
        return False
    return "*." + name.split(".", 1)[1] in cert_name_list


def issuer_str(cert) -> str:
    x509 = _x509()
    cns = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    orgs = cert.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    parts = [str(a.value) for a in orgs + cns]
    return ", ".join(parts) or cert.issuer.rfc4514_string()


def public_der(obj) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pub = obj.public_key() if hasattr(obj, "public_key") else obj
    return pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(key, cert) -> bool:
    return public_der(key) == public_der(cert)


def ari_cert_id(cert) -> str:
    """RFC 9773 certificate identifier: base64url(AKI keyIdentifier) '.' base64url(serial DER)."""
    x509 = _x509()
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    # DER INTEGER content octets: big-endian two's complement, so room for the sign bit.
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")

    return b64(aki.key_identifier) + "." + b64(serial_bytes)


def new_private_key(key_type: str):
    if key_type == "rsa":
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def make_self_signed(names: list[str], key, days: int):
    x509 = _x509()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    attrs = []
    if len(names[0]) <= 64:  # CN is limited to 64 characters; SANs are what clients check
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, names[0]))
    subject = x509.Name(attrs)
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if is_ip(n) else x509.DNSName(n) for n in names]
    now = utcnow()
    pub = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        # A little backdating keeps hosts with slightly slow clocks from rejecting it.
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pub), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


# --------------------------------------------------------------------------------------------
# files


def group_id(name: str | None) -> int | None:
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(f"config: key_group {name!r} does not exist on this host") from None


def fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, gid: int | None = None) -> None:
    """Write via temp file + rename; the mode is set before any byte of a key is written."""
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        os.fchmod(fd, mode)
        if gid is not None:
            os.fchown(fd, -1, gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(d)


def atomic_symlink(target: str, path: str) -> None:
    if os.path.islink(path) and os.readlink(path) == target:
        return
    tmp = os.path.join(
        os.path.dirname(path), f".tmp-link-{os.getpid()}-{random.randrange(1 << 30)}"
    )
    os.symlink(target, tmp)
    os.replace(tmp, path)


def make_dir(path: str, gid: int | None) -> None:
    # Directories holding keys: traversable by the key group only when there is one.
    os.makedirs(path, exist_ok=True)
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o750)
    else:
        os.chmod(path, 0o755)


class Store:
    """cert_dir layout: archive/<id>/{fullchain,privkey}.pem, current -> archive/<id>, links."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.dir = cfg.cert_dir
        self.fullchain = os.path.join(self.dir, "fullchain.pem")
        self.privkey = os.path.join(self.dir, "privkey.pem")
        self.state_path = os.path.join(self.dir, "state.json")

    def prepare(self) -> None:
        make_dir(self.dir, group_id(self.cfg.key_group))

    @contextlib.contextmanager
    def lock(self):
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def state(self) -> dict:
        try:
            with open(self.state_path, encoding="utf-8") as f:
                s = json.load(f)
            return s if isinstance(s, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_state(self, state: dict) -> None:
        atomic_write(self.state_path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())

    def load_pair(self, cert_file: str | None = None, key_file: str | None = None):
        """(leaf, chain, key) or None when missing/unreadable/mismatched."""
        try:
            with open(cert_file or self.fullchain, "rb") as f:
                certs = load_certs(f.read())
            with open(key_file or self.privkey, "rb") as f:
                key = load_key(f.read())
        except (OSError, ValueError, TypeError):
            return None
        if not certs or not key_matches(key, certs[0]):
            return None
        return certs[0], certs, key

    def install(self, fullchain: bytes, key_bytes: bytes, leaf) -> str:
        gid = group_id(self.cfg.key_group)
        archive = os.path.join(self.dir, "archive")
        make_dir(archive, gid)
        name = utcnow().strftime("%Y%m%dT%H%M%SZ") + "-" + format(leaf.serial_number, "x")[:12]
        target = os.path.join(archive, name)
        if os.path.exists(target):
            shutil.rmtree(target)
        make_dir(target, gid)
        atomic_write(os.path.join(target, "fullchain.pem"), fullchain, 0o644)
        atomic_write(
            os.path.join(target, "privkey.pem"),
            key_bytes,
            0o640 if gid is not None else 0o600,
            gid,
        )
        # The one rename that switches cert and key together.
        atomic_symlink(os.path.join("archive", name), os.path.join(self.dir, "current"))
        atomic_symlink(os.path.join("current", "fullchain.pem"), self.fullchain)
        atomic_symlink(os.path.join("current", "privkey.pem"), self.privkey)
        fsync_dir(self.dir)
        self._prune(archive, name)
        return "archive/" + name

    @staticmethod
    def _prune(archive: str, keep_name: str) -> None:
        entries = sorted(e for e in os.listdir(archive) if not e.startswith("."))
        old = [e for e in entries if e != keep_name][: -(KEEP_ARCHIVES - 1) or None]
        for e in old:
            shutil.rmtree(os.path.join(archive, e), ignore_errors=True)


def cert_state(cfg: Config, leaf, renew_after: dt.datetime, basis: str, extra: dict) -> dict:
    s = {
        "type": cfg.type,
        "names": cert_names(leaf),
        "serial": format(leaf.serial_number, "x"),
        "not_before": iso(not_before(leaf)),
        "not_after": iso(not_after(leaf)),
        "issuer": issuer_str(leaf),
        "renew_after": iso(renew_after),
        "renew_basis": basis,
        "updated": iso(utcnow()),
    }
    s.update(extra)
    return s


class Result:
    def __init__(self, changed: bool, line: str):
        self.changed = changed
        self.line = line


def describe(leaf, renew_after: dt.datetime, basis: str) -> str:
    return f"valid until {iso(not_after(leaf))}, renew after {iso(renew_after)} ({basis})"


# --------------------------------------------------------------------------------------------
# DNS-01 providers (urllib only)


class DnsProvider:
    name = "dns"
    default_endpoint = ""
    default_propagation = 30

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
            hint = " — check the API token in acme.dns.token_file" if e.code in (401, 403) else ""
            raise AgentError(
                self.redact(f"DNS-01: {where} failed: HTTP {e.code} {e.reason}{detail}{hint}")
            ) from None
        except (urllib.error.URLError, OSError) as e:
            raise AgentError(
                self.redact(f"DNS-01: cannot reach {where}: {short_reason(e)}")
            ) from None
        return raw

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
        raise NotImplementedError

    def clear_txt(self, domain: str, handle) -> None:
        raise NotImplementedError

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


class FakeDns(DnsProvider):
    """pebble-challtestsrv's management API (lab/tests): endpoint = http://HOST:MGMT_PORT."""

    name = "fake"
    needs_token = False
    default_propagation = 0

    def set_txt(self, domain: str, value: str):
        self.request("POST", "/set-txt", {"host": f"_acme-challenge.{domain}.", "value": value})
        return None

    def clear_txt(self, domain: str, handle) -> None:
        self.request("POST", "/clear-txt", {"host": f"_acme-challenge.{domain}."})


PROVIDERS = {"duckdns": DuckDns, "dynv6": Dynv6, "cloudflare": Cloudflare, "fake": FakeDns}


def dns_provider(cfg: Config) -> DnsProvider:
    dns = cfg.acme.get("dns") or {}
    cls = PROVIDERS.get(dns.get("provider"))
    if cls is None:
        raise ConfigError(
            f"config: acme.dns.provider must be one of {', '.join(sorted(PROVIDERS))}"
        )
    if cls is FakeDns and not dns.get("endpoint"):
        raise ConfigError("config: acme.dns.endpoint is required for the fake provider")
    return cls(dns)


# --------------------------------------------------------------------------------------------
# ACME


class Acme:
    """A connected ACME client; creating one fetches the directory (the reachability check)."""

    def __init__(self, cfg: Config, store: Store):
        import josepy as jose
        import requests
        from acme import client, messages

        self.cfg = cfg
        self.store = store
        self.messages = messages
        self.url = cfg.acme["directory"]
        self.account_key = self._account_key(jose)
        verify = cfg.acme.get("ca_bundle") or True
        if verify is not True and not os.path.exists(verify):
            raise ConfigError(f"config: acme.ca_bundle {verify} does not exist")
        self.net = client.ClientNetwork(
            self.account_key, alg=jose.RS256, verify_ssl=verify, user_agent=USER_AGENT, timeout=30
        )
        try:
            directory = client.ClientV2.get_directory(self.url, self.net)
        except requests.exceptions.SSLError as e:
            raise AgentError(
                f"cannot verify the TLS certificate of ACME directory {self.url}: "
                f"{short_reason(e)} — if the CA uses a private root (test CA, TLS-inspecting "
                "proxy) set acme.ca_bundle"
            ) from None
        except requests.exceptions.RequestException as e:
            raise AgentError(
                f"cannot reach ACME directory {self.url}: {short_reason(e)} — check the URL, "
                "DNS and outgoing HTTPS (proxy settings) from this host"
            ) from None
        except (ValueError, KeyError, messages.Error) as e:
            raise AgentError(
                f"{self.url} did not answer with an ACME directory ({short_reason(e)}) — "
                "check acme.directory"
            ) from None
        self.client = client.ClientV2(directory, self.net)
        self.directory = directory

    def _account_key(self, jose):
        from cryptography.hazmat.primitives.asymmetric import rsa

        path = os.path.join(self.store.dir, "account.key")
        try:
            with open(path, "rb") as f:
                return jose.JWKRSA(key=load_key(f.read()))
        except FileNotFoundError:
            pass
        except (ValueError, TypeError):
            raise AgentError(
                f"ACME account key {path} is unreadable — move it away to create a new account"
            ) from None
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        atomic_write(path, key_pem(key), 0o600)
        return jose.JWKRSA(key=key)

    # -- ARI ----------------------------------------------------------------------------------

    def ari(self, leaf, old: dict) -> tuple[dt.datetime | None, dict]:
        """Renewal time from the CA's renewalInfo, reusing the cached answer until Retry-After."""
        try:
            base = self.directory["renewalInfo"]
        except (KeyError, AttributeError):
            return None, {}
        cid = ari_cert_id(leaf)
        now = utcnow()
        next_check = parse_iso(old.get("next_check")) if old.get("cert_id") == cid else None
        if next_check and now < next_check and old.get("chosen"):
            return parse_iso(old["chosen"]), old
        resp = self.net.get(base.rstrip("/") + "/" + cid, content_type="application/json")
        body = resp.json()
        window = body["suggestedWindow"]
        start, end = parse_iso(window["start"]), parse_iso(window["end"])
        if end < start:
            raise ValueError("suggestedWindow end before start")
        if (
            old.get("cert_id") == cid
            and old.get("start") == iso(start)
            and old.get("end") == iso(end)
            and old.get("chosen")
        ):
            chosen = parse_iso(old["chosen"])  # same window: keep the random pick stable
        else:
            # RFC 9773 4.2: a uniformly random point in the window spreads load on the CA.
            chosen = start + (end - start) * random.random()
        retry = resp.headers.get("Retry-After", "21600")
        try:
            retry_s = min(max(int(retry), 0), 86400)
        except ValueError:
            retry_s = 21600
        info = {
            "cert_id": cid,
            "start": iso(start),
            "end": iso(end),
            "chosen": iso(chosen),
            "next_check": iso(now + dt.timedelta(seconds=retry_s)),
        }
        if body.get("explanationURL"):
            info["explanation_url"] = body["explanationURL"]
        return chosen, info

    # -- issuance -----------------------------------------------------------------------------

    def register(self) -> None:
        from acme import errors

        m = self.messages
        email = self.cfg.acme.get("email")
        reg = (
            m.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
            if email
            else (m.NewRegistration.from_data(terms_of_service_agreed=True))
        )
        try:
            self.client.new_account(reg)
        except errors.ConflictError as e:
            # The key already has an account: RFC 8555 7.3.1 answers 200 + Location; use it.
            self.net.account = m.RegistrationResource(uri=e.location, body=m.Registration())
        except m.Error as e:
            code = getattr(e, "code", None)
            if code in ("invalidContact", "unsupportedContact"):
                raise AgentError(
                    f"the CA rejected the e-mail address {email!r}: {e.detail} — set acme.email "
                    "to a working address (or leave it out)"
                ) from None
            if code == "externalAccountRequired":
                raise AgentError(
                    f"{self.url} requires External Account Binding, which this agent does not "
                    "support — use a CA that does not (e.g. Let's Encrypt)"
                ) from None
            raise AgentError(f"ACME account registration failed: {acme_error(e)}") from None

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        import requests

        try:
            return self._issue(names)
        except requests.exceptions.RequestException as e:
            raise AgentError(
                f"lost the connection to the CA ({self.url}) during issuance: {short_reason(e)} "
                "— try again; the old certificate is kept"
            ) from None

    def _issue(self, names: list[str]) -> tuple[bytes, bytes]:
        from acme import crypto_util, errors

        m = self.messages
        self.register()
        key = new_private_key(self.cfg.key_type)
        kpem = key_pem(key)
        dns_names = [n for n in names if not is_ip(n)]
        ips = [ipaddress.ip_address(n) for n in names if is_ip(n)]
        csr = crypto_util.make_csr(kpem, dns_names, ipaddrs=ips)
        try:
            profile = self.cfg.acme.get("profile")
            if profile:  # e.g. Let's Encrypt "shortlived" (required for IP-address certs)
                order = self.client.new_order(csr, profile=profile)
            else:
                order = self.client.new_order(csr)
        except m.Error as e:
            raise AgentError(
                f"the CA refused the order for {', '.join(names)}: {acme_error(e)}"
            ) from None
        timeout = float(self.cfg.acme.get("timeout", 120))
        # acme's poll deadlines are naive local times.
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        kind = self.cfg.challenge
        try:
            if kind == "http-01":
                with self._http01(order):
                    order = self.client.poll_and_finalize(order, deadline)
            else:
                self._dns01(order, deadline)
                order = self.client.poll_and_finalize(order, deadline)
        except errors.ValidationError as e:
            raise AgentError(validation_message(e.failed_authzrs, kind, self.cfg)) from None
        except errors.TimeoutError:
            raise AgentError(
                f"the CA did not finish validation/issuance within {timeout:.0f} s — try again "
                "later or raise acme.timeout"
            ) from None
        except errors.IssuanceError as e:
            raise AgentError(f"the CA refused to issue: {acme_error(e.error)}") from None
        except m.Error as e:
            raise AgentError(f"ACME error during issuance: {acme_error(e)}") from None
        return order.fullchain_pem.encode(), kpem

    def _pending(self, order) -> list:
        return [a for a in order.authorizations if a.body.status != self.messages.STATUS_VALID]

    def _challenge(self, authzr, kind: str):
        for challb in authzr.body.challenges:
            if challb.chall.typ == kind:
                return challb
        offered = ", ".join(c.chall.typ for c in authzr.body.challenges)
        raise AgentError(
            f"the CA does not offer {kind} for {authzr.body.identifier.value} (offers: {offered}) "
            "— change acme.challenge"
        )

    @contextlib.contextmanager
    def _http01(self, order):
        base = os.path.join(self.cfg.webroot, ".well-known", "acme-challenge")
        os.makedirs(base, mode=0o755, exist_ok=True)
        written = []
        try:
            todo = []
            for authzr in self._pending(order):
                challb = self._challenge(authzr, "http-01")
                response, validation = challb.response_and_validation(self.account_key)
                token = challb.chall.encode("token")
                path = os.path.join(base, token)
                atomic_write(path, validation.encode(), 0o644)
                written.append(path)
                todo.append((challb, response))
            for challb, response in todo:
                self.client.answer_challenge(challb, response)
            yield
        finally:
            for path in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _dns01(self, order, deadline: dt.datetime) -> None:
        """One authorization at a time: DuckDNS holds a single TXT value per account."""
        provider = dns_provider(self.cfg)
        for authzr in self._pending(order):
            challb = self._challenge(authzr, "dns-01")
            domain = authzr.body.identifier.value
            handle = provider.set_txt(domain, challb.validation(self.account_key))
            try:
                if provider.propagation > 0:
                    time.sleep(provider.propagation)
                self.client.answer_challenge(challb, challb.response(self.account_key))
                self._wait_authz(authzr, deadline)
            finally:
                try:
                    provider.clear_txt(domain, handle)
                except AgentError as e:
                    warn(f"could not remove the _acme-challenge TXT record: {e}")

    def _wait_authz(self, authzr, deadline: dt.datetime) -> None:
        from acme import errors

        delay = 0.5
        while dt.datetime.now() < deadline:
            time.sleep(delay)
            authzr, _ = self.client.poll(authzr)
            status = authzr.body.status
            if status == self.messages.STATUS_VALID:
                return
            if status != self.messages.STATUS_PENDING:
                raise errors.ValidationError([authzr])
            delay = min(delay * 2, 5)
        raise errors.TimeoutError()


def acme_error(e) -> str:
    code = getattr(e, "code", None) or getattr(e, "typ", "")
    detail = getattr(e, "detail", None) or str(e)
    return f"{code}: {detail}" if code else detail


def validation_message(failed, kind: str, cfg: Config) -> str:
    parts = []
    for authzr in failed:
        ident = authzr.body.identifier.value
        err = next((c.error for c in authzr.body.challenges if c.error is not None), None)
        detail = getattr(err, "detail", None) or (str(err) if err else "no detail from the CA")
        token = ""
        for c in authzr.body.challenges:
            if c.chall.typ == "http-01":
                token = c.chall.encode("token")
        if kind == "http-01":
            host = f"[{ident}]" if ":" in ident else ident
            parts.append(
                f"ACME HTTP-01 validation failed for {ident}: the CA could not fetch "
                f"http://{host}{CHALLENGE_PREFIX}{token} ({detail}) — is port 80 open to the "
                "internet, forwarded to this host, and the port-80 responder (serve-http) running?"
            )
        else:
            provider = (cfg.acme.get("dns") or {}).get("provider", "dns")
            parts.append(
                f"ACME DNS-01 validation failed for {ident}: the CA did not see the expected TXT "
                f"record _acme-challenge.{ident} ({detail}) — check the {provider} settings "
                "(token, zone/subdomain) and raise acme.dns.propagation_seconds if DNS is slow"
            )
    return " | ".join(parts) or f"ACME {kind} validation failed"


# --------------------------------------------------------------------------------------------
# ensure


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
            return ensure_acme(cfg, store)
        if cfg.type == "self-signed":
            return ensure_self_signed(cfg, store)
        return check_provided(cfg, store)


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


# --------------------------------------------------------------------------------------------
# serve-http


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


# --------------------------------------------------------------------------------------------
# status / main


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
    }
    print(json.dumps(out, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pyinfra-jupyter TLS agent")
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
        cfg = Config(args.config)
        if args.command == "serve-http":
            serve_http(cfg, args.port, args.bind)
            return 0
        if args.command == "status":
            return status(cfg)
        result = ensure(cfg)
        print(result.line)
        sys.stdout.flush()
        if args.command == "renew" and result.changed and cfg.post_renew:
            run_post_renew(cfg)
            print(f"post_renew: ran {len(cfg.post_renew)} command(s)")
        return 0
    except AgentError as e:
        print(redact(f"error: {e}"), file=sys.stderr)
        return e.code
    except ImportError as e:
        print(
            f"error: missing Python package ({e.name}) — install acme, josepy and cryptography "
            "in the agent's venv",
            file=sys.stderr,
        )
        return 1
    except PermissionError as e:
        print(f"error: permission denied: {e.filename} — run the agent as root", file=sys.stderr)
        return 1
    except Exception as e:  # one line, never a traceback into the deploy output / journal
        print(redact(f"error: unexpected {type(e).__name__}: {short_reason(e)}"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
