"""Wheels fetched once by the controller, for every host of a run (python.wheels).

The controller resolves a venv's requirements for the host's platform (Python minor,
architecture, glibc) with its own pip (`pip download --only-binary=:all:`), bundles the
wheels into one tar and records its sha256; the venv operation uploads the tar, checks the
sha256 on the host and installs with `pip install --no-index --find-links`, so the host
needs no package index. The bundle is cached by (requirements, Python, platforms, indexes):
ten hosts of one kind cost one download and one resolve, not ten.

A requirement with no wheel on the index (a pure-Python sdist, e.g. nativeauthenticator's
`onetimepass`) is built into a wheel on the controller, once, and used only when it comes
out pure (`py3-none-any`); anything that would need compiling for the host is refused
with its name (the host's index is then the way: python.wheels `index`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .fetch import _sha256, cache_dir

_LOCK = threading.Lock()  # gevent patches threading: one resolve at a time per process
PIP_TIMEOUT = 1800
_MISSING = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)")
_PURE = re.compile(r"-py3(?:\.py\d)?-none-any\.whl$|-py2\.py3-none-any\.whl$")


class WheelhouseError(Exception):
    """The controller could not gather the wheels (named in the message)."""


@dataclass(frozen=True)
class Target:
    """What a wheel must fit: CPython `python` (major.minor) on `arch` with `glibc`."""

    python: str  # "3.11"
    arch: str  # x86_64, aarch64, armv7l
    glibc: tuple[int, int]  # (2, 36)
    extra_index_urls: tuple[str, ...] = ()

    @property
    def platforms(self) -> list[str]:
        """pip's --platform values, newest first: every manylinux tag this glibc runs, and
        on 32-bit ARM the plain linux tag piwheels builds for."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.arch}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{self.arch}" for m, name in legacy.items()
                 if minor >= m and (self.arch in ("x86_64", "i686") or name == "manylinux2014")]
        if self.arch.startswith("armv"):
            tags.append(f"linux_{self.arch}")
        return tags

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


def target_for(python: str, arch: str, glibc: str, extra_index_urls=()) -> Target | None:
    """A Target from the host's facts, or None when they do not say enough (no glibc)."""
    match = re.fullmatch(r"(?:glibc )?(\d+)\.(\d+)(?:\.\d+)?", (glibc or "").strip())
    if not match or not re.fullmatch(r"3\.\d+", python or "") or not re.fullmatch(
            r"[a-z0-9_]+", arch or ""):
        return None
    return Target(python, arch, (int(match.group(1)), int(match.group(2))),
                  tuple(extra_index_urls))


@dataclass(frozen=True)
class Bundle:
    path: Path  # the tar of wheels
    sha256: str
    wheels: int
    size: int


def _key(requirements: tuple[str, ...], target: Target) -> str:
    text = json.dumps([sorted(requirements), target.python, target.arch, list(target.glibc),
                       list(target.extra_index_urls), 1])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _pip(*args: str, timeout: int = PIP_TIMEOUT) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input",
            "--timeout", "30", "--retries", "3", *args]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WheelhouseError(f"pip on the controller did not finish within {timeout} s "
                              "(the package index or proxy)") from None
    except OSError as exc:
        raise WheelhouseError(f"cannot run pip on the controller: {exc}") from None


def _download(requirements: tuple[str, ...], target: Target, dest: Path, built: Path) -> None:
    args = ["download", "-q", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", target.python, "--abi", target.abi, "--dest", str(dest),
            "--find-links", str(built)]
    for tag in target.platforms:
        args += ["--platform", tag]
    for url in target.extra_index_urls:
        args += ["--extra-index-url", url]
    tried: set[str] = set()
    for _ in range(10):  # at most this many sdist-only requirements
        proc = _pip(*args, *requirements)
        if proc.returncode == 0:
            return
        missing = _MISSING.search(proc.stderr)
        if not missing or missing.group(1).lower() in tried:
            tail = "\n".join(line for line in proc.stderr.splitlines()
                             if "ignored" not in line)[-1500:]
            raise WheelhouseError(f"pip download failed on the controller:\n{tail}")
        name = missing.group(1)
        tried.add(name.lower())
        _build_pure(name, requirements, built)
    raise WheelhouseError("too many requirements without a wheel")


def _build_pure(name: str, requirements: tuple[str, ...], built: Path) -> None:
    """Build `name` (no wheel on the index) into a wheel here; only a pure one is kept."""
    pinned = next((r for r in requirements if re.split(r"[<>=!~\[ ;]", r)[0].lower()
                   == name.lower()), name)
    with tempfile.TemporaryDirectory(dir=built) as out:
        proc = _pip("wheel", "-q", "--no-deps", "--wheel-dir", out, pinned)
        wheels = list(Path(out).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise WheelhouseError(f"{name} has no wheel for the host and could not be built "
                                  f"on the controller: {proc.stderr.strip()[-600:]}")
        for wheel in wheels:
            if not _PURE.search(wheel.name):
                raise WheelhouseError(
                    f"{name} has no wheel for the host, and its build ({wheel.name}) is not "
                    "pure Python: it must be built on the host (python.wheels `index`, "
                    "python.build_tools)")
            shutil.move(str(wheel), built / wheel.name)


def _bundle(wheels: Path, tar_path: Path) -> tuple[str, int]:
    names = sorted(p.name for p in wheels.glob("*.whl"))
    with tarfile.open(tar_path, "w") as tar:
        for name in names:
            info = tar.gettarinfo(str(wheels / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            info.mode = 0o644
            with open(wheels / name, "rb") as fh:
                tar.addfile(info, fh)
    return _sha256(tar_path), len(names)


def _read(entry: Path) -> Bundle | None:
    try:
        meta = json.loads((entry / "bundle.json").read_text())
        path = entry / "wheels.tar"
        return Bundle(path, meta["sha256"], meta["wheels"], path.stat().st_size)
    except (OSError, ValueError, KeyError):
        return None


def bundle(requirements: tuple[str, ...] | list[str], target: Target) -> Bundle:
    """The tar of wheels that installs `requirements` on `target`, from the cache or made
    now (one resolve per key, also across processes)."""
    requirements = tuple(requirements)
    root = cache_dir() / "wheelhouse"
    entry = root / _key(requirements, target)
    with _LOCK:
        found = _read(entry)
        if found:
            return found
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(root / f".{entry.name}.lock", "w") as lock:
            while True:  # non-blocking, so other greenlets run while another process works
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.5)
            found = _read(entry)
            if found:
                return found
            work = Path(tempfile.mkdtemp(dir=root, prefix=".work-"))
            try:
                wheels, built = work / "wheels", work / "built"
                wheels.mkdir()
                built.mkdir()
                _download(requirements, target, wheels, built)
                sha256, count = _bundle(wheels, work / "wheels.tar")
                (work / "bundle.json").write_text(json.dumps(
                    {"sha256": sha256, "wheels": count, "requirements": list(requirements),
                     "platforms": target.platforms, "python": target.python}))
                shutil.rmtree(wheels)
                shutil.rmtree(built)
                if entry.exists():
                    shutil.rmtree(entry)
                os.replace(work, entry)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        found = _read(entry)
        if not found:
            raise WheelhouseError(f"the wheel bundle in {entry} is unreadable")
        return found
