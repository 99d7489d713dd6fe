"""Downloads made once by the controller, for every host of a run: tarballs a host needs
(a CPython release, OpenSSL) are fetched into a cache on the controller, checked against
the sha256 the version matrix pins, and uploaded; hosts need no internet access for them.

The cache is keyed by checksum, so a file is downloaded once per controller, not once per
host or per run; a file that does not match is never used (the next URL is tried).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import urllib.request
from pathlib import Path

from pyinfra import logger
from pyinfra.api.exceptions import DeployError

from ..platform import Artifact

_LOCK = threading.Lock()  # gevent patches threading: one download at a time per process


def cache_dir() -> Path:
    root = os.environ.get("PJ_DOWNLOAD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "pyinfra-jupyter", "downloads")
    return Path(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(artifact: Artifact, timeout: int = 60) -> Path:
    """The local path of `artifact`, downloaded and checked if it is not cached yet."""
    path = cache_dir() / artifact.sha256[:16] / artifact.name
    with _LOCK:
        if path.is_file() and _sha256(path) == artifact.sha256:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        failures = []
        for url in artifact.urls:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                    for block in iter(lambda: r.read(1 << 20), b""):
                        out.write(block)
                got = _sha256(Path(tmp))
                if got != artifact.sha256:
                    failures.append(f"{url}: sha256 {got}, not the pinned {artifact.sha256}")
                    continue
                os.replace(tmp, path)
                logger.info(f"Downloaded {artifact.name} {artifact.version} (sha256 checked) "
                            f"from {url} into {path.parent}")
                return path
            except OSError as exc:  # URLError, HTTPError and timeouts are OSErrors
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        raise DeployError(
            f"could not download {artifact.name} {artifact.version} on the controller: "
            + "; ".join(failures)
            + f". Put the file (sha256 {artifact.sha256}) at {path} to use a copy fetched "
            "another way.")
