"""The certificate directory: archive, atomic swaps, state, and each consumer's copy."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil

from .certs import cert_names, issuer_str, key_matches, load_certs, load_key, not_after, not_before
from .common import AgentError, atomic_symlink, atomic_write, fsync_dir, iso, make_dir, utcnow
from .config import Config

KEEP_ARCHIVES = 3

class Store:
    """cert_dir layout: archive/<id>/{fullchain,privkey}.pem, current -> archive/<id>, links."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.dir = cfg.cert_dir
        self.fullchain = os.path.join(self.dir, "fullchain.pem")
        self.privkey = os.path.join(self.dir, "privkey.pem")
        self.state_path = os.path.join(self.dir, "state.json")

    def prepare(self) -> None:
        make_dir(self.dir)

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

    def pair_digest(self) -> str | None:
        """sha256 of the live certificate then key, as the deploy's facts read them
        (`cat fullchain.pem privkey.pem | sha256sum`): a pair changed by hand shows."""
        digest = hashlib.sha256()
        try:
            for path in (self.fullchain, self.privkey):
                with open(path, "rb") as f:
                    digest.update(f.read())
        except OSError:
            return None
        return digest.hexdigest()

    def save_state(self, state: dict) -> None:
        state = {**state, "pair_sha256": self.pair_digest()}
        atomic_write(self.state_path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())

    def note_pair(self) -> None:
        """Record the live pair's digest if the state does not have it yet (or not this one)."""
        state = self.state()
        if state and state.get("pair_sha256") != self.pair_digest():
            self.save_state(state)

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
        archive = os.path.join(self.dir, "archive")
        make_dir(archive, 0o700)
        name = utcnow().strftime("%Y%m%dT%H%M%SZ") + "-" + format(leaf.serial_number, "x")[:12]
        target = os.path.join(archive, name)
        if os.path.exists(target):
            shutil.rmtree(target)
        make_dir(target, 0o700)
        atomic_write(os.path.join(target, "fullchain.pem"), fullchain, 0o644)
        # The original key is root's only: services read their own copies (sync_consumers).
        atomic_write(os.path.join(target, "privkey.pem"), key_bytes, 0o600)
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

    # -- each consumer's own copy ---------------------------------------------------------

    def copies_dir(self) -> str:
        return os.path.join(self.dir, "for")

    def sync_consumers(self, consumers: list[dict], cert_file: str | None = None,
                       key_file: str | None = None) -> list[str]:
        """Give each consumer (a service's user) its own copy of the live pair — chain 0444,
        key 0400, owned by that user, in root-owned directories — and remove the copies of
        consumers no longer listed. Returns what changed (empty: all copies current)."""
        import pwd

        chain_path, key_path = cert_file or self.fullchain, key_file or self.privkey
        with open(chain_path, "rb") as f:
            chain = f.read()
        with open(key_path, "rb") as f:
            key = f.read()
        base = self.copies_dir()
        make_dir(base)
        changed = []
        wanted = set()
        for consumer in consumers:
            name, user = consumer["name"], consumer["user"]
            if not name or "/" in name or name.startswith("."):
                raise AgentError(f"config: consumer name {name!r} is not a plain name")
            try:
                uid = pwd.getpwnam(user).pw_uid
            except KeyError:
                raise AgentError(
                    f"consumer {name}: user {user!r} does not exist on this host (the deploy "
                    "makes it before the certificate)") from None
            wanted.add(name)
            folder = os.path.join(base, name)
            make_dir(folder)
            for file_name, data, mode in (("fullchain.pem", chain, 0o444),
                                          ("privkey.pem", key, 0o400)):
                path = os.path.join(folder, file_name)
                if not _same_file(path, data, uid, mode):
                    atomic_write(path, data, mode, uid)
                    changed.append(f"{name}/{file_name}")
        for entry in os.listdir(base):
            if entry not in wanted and not entry.startswith("."):
                shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
                changed.append(f"{entry} removed")
        return changed

    def consumers_status(self, consumers: list[dict]) -> dict:
        """{name: "current" | "stale" | "missing"} for each consumer's copy."""
        out = {}
        try:
            with open(self.fullchain, "rb") as f:
                chain = f.read()
        except OSError:
            chain = None
        for consumer in consumers:
            path = os.path.join(self.copies_dir(), consumer["name"], "fullchain.pem")
            try:
                with open(path, "rb") as f:
                    out[consumer["name"]] = "current" if f.read() == chain else "stale"
            except OSError:
                out[consumer["name"]] = "missing"
        return out


def _same_file(path: str, data: bytes, uid: int, mode: int) -> bool:
    """True when `path` is a regular file (not a symlink) with this content, owner and mode."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        import stat

        if not stat.S_ISREG(info.st_mode) or info.st_uid != uid or stat.S_IMODE(
                info.st_mode) != mode:
            return False
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read() == data
    finally:
        os.close(fd)


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
