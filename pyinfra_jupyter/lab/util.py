"""Small shared helpers for the lab: errors, paths, locks, command runners.

Everything here is standard library only; the lab must run before the
project's own dependencies are installed anywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

# Lab names end up inside namespace names and host names; keep them short and
# tame so that every derived name stays well under the kernel's 15-char limit
# for interfaces and is a valid DNS label.
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
DEFAULT_LAB = "pj"

STATE_ROOT = Path("/run/pyinfra-jupyter/lab")
DEFAULT_CACHE = Path("/var/cache/pyinfra-jupyter")


class LabError(Exception):
    """A failure explained in one sentence, shown to the user without a traceback."""


def cache_dir() -> Path:
    """Where the base rootfs and the shared pip/npm/apt caches live."""
    return Path(os.environ.get("PJ_LAB_CACHE") or DEFAULT_CACHE)


def lab_name(name: str | None = None) -> str:
    """The lab name: explicit, else $PJ_LAB, else "pj"; validated."""
    name = name or os.environ.get("PJ_LAB") or DEFAULT_LAB
    if not LAB_NAME_RE.match(name):
        raise LabError(
            f"invalid lab name {name!r}: use 1-10 lowercase letters/digits, starting with a letter"
        )
    return name


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise LabError carrying its stderr."""
    try:
        proc = subprocess.run(
            list(argv),
            text=True,
            input=input,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout or "").strip().splitlines()
        tail = err[-1] if err else f"exit status {proc.returncode}"
        raise LabError(f"`{' '.join(argv)}` failed: {tail}")
    return proc


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on *path* (created if needed), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll *predicate* until it returns a truthy value or *timeout* passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int | None) -> bool:
    """True when *pid* names a live (non-zombie) process."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write *text* to *path* via a temp file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)
