"""Errors, time, logging with secrets redacted, and crash-safe file writes.

Every module of the agent uses these; nothing here needs a third-party package."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import random
import re
import sys
import tempfile

USER_AGENT = "pyinfra-jupyter-tls-agent/1"

UTC = dt.timezone.utc

class AgentError(Exception):
    """A failure to report as one line; ``code`` is the exit status."""

    code = 1

class ConfigError(AgentError):
    code = 2

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

def read_json_config(path: str) -> dict:
    """A job's JSON config (TLS, DDNS), or a ConfigError in one line."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"config {path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a JSON object")
    return raw


def fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

def atomic_write(path: str, data: bytes, mode: int = 0o644, uid: int = -1) -> None:
    """Write via a fresh temp file (O_EXCL: never an existing name, never a symlink) in the
    same directory, then one rename over `path` (which replaces a symlink, never follows
    it). Owner and mode are set on the open file before any byte of a key is written."""
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        os.fchmod(fd, mode)
        if uid != -1:
            os.fchown(fd, uid, -1)
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

def make_dir(path: str, mode: int = 0o755) -> None:
    """A root-owned directory (a symlink in its place is replaced, never followed)."""
    if os.path.islink(path):
        os.unlink(path)
    os.makedirs(path, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, 0, 0)
    os.chmod(path, mode)
