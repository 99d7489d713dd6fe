"""The cached base root filesystem every lab host is an overlay of.

Built once with debootstrap into the cache dir and kept read-only as the
overlay's lower layer. Its directory name carries a hash of the recipe (suite,
packages, the controller's CA certificates, the files written below and
RECIPE_VERSION), so a changed recipe builds a fresh base and hosts of running
labs keep using the old one. The build goes into a temp dir renamed into place
under a lock, so concurrent `lab up`s build it once.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from .util import LabError, cache_dir, file_lock, run

RECIPE_VERSION = 3
# The Debian releases a lab host can run (`lab up --distro NAME`): 11 ships Python 3.9 and
# Node 12 (the deploy builds its Python), 12 is the default, 13 ships Python 3.13.
SUITES = {"bullseye": 11, "bookworm": 12, "trixie": 13}
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "sudo",
    "iproute2", "curl", "ca-certificates", "procps", "netbase",
]
CA_GLOB = "/usr/local/share/ca-certificates/*.crt"

# Inside every host the package proxy is reached on its own loopback (a socat
# there carries it to the controller); see proxy.py.
PROXY_URL = "http://127.0.0.1:3128"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Shared caches bind-mounted into hosts (see host.py); paths inside the host.
PIP_CACHE = "/var/cache/pj-lab/pip"
NPM_CACHE = "/var/cache/pj-lab/npm"



def sources_list(suite: str) -> str:
    return (f"deb {MIRROR} {suite} main\n"
            f"deb {MIRROR} {suite}-updates main\n"
            f"deb {SECURITY_MIRROR} {suite}-security main\n")


APT_PROXY_CONF = f"""\
// Written by the pyinfra-jupyter lab: apt reaches its mirrors via the lab proxy.
Acquire::http::Proxy "{PROXY_URL}";
Acquire::https::Proxy "{PROXY_URL}";
// A stalled transfer through the proxy must fail and be retried, not hang apt for minutes.
Acquire::http::Timeout "30";
Acquire::https::Timeout "30";
Acquire::Retries "3";
"""


def no_proxy(subnet: str = "10.231.0.0/16") -> str:
    return f"localhost,127.0.0.1,::1,{subnet}"


ENVIRONMENT = f"""\
http_proxy={PROXY_URL}
https_proxy={PROXY_URL}
HTTP_PROXY={PROXY_URL}
HTTPS_PROXY={PROXY_URL}
no_proxy={no_proxy()}
NO_PROXY={no_proxy()}
PIP_CERT={CA_BUNDLE}
REQUESTS_CA_BUNDLE={CA_BUNDLE}
SSL_CERT_FILE={CA_BUNDLE}
NODE_EXTRA_CA_CERTS={CA_BUNDLE}
PIP_CACHE_DIR={PIP_CACHE}
npm_config_cache={NPM_CACHE}
"""

SSHD_CONF = """\
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""

# Units that only slow a container down or fight the tests: the apt timers
# would grab apt's lock in the middle of a deploy.
MASKED_UNITS = [
    "apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service",
    "apt-daily-upgrade.service", "systemd-networkd-wait-online.service",
    "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
    "getty@tty1.service", "console-getty.service",
]

FILES = {
    "etc/apt/apt.conf.d/00lab-proxy": APT_PROXY_CONF,
    "etc/environment": ENVIRONMENT,
    "etc/ssh/sshd_config.d/lab.conf": SSHD_CONF,
    # Each host gets its own machine id at creation.
    "etc/machine-id": "",
}


def ca_files() -> list[str]:
    """The controller's extra CA certificates, which hosts must trust."""
    return sorted(glob.glob(CA_GLOB))


def files(suite: str) -> dict[str, str]:
    return {"etc/apt/sources.list": sources_list(suite), **FILES}


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise LabError(f"no lab distro {suite!r}: choose one of {', '.join(SUITES)}")
    return suite


def recipe(suite: str = SUITE, arch: str | None = None) -> dict:
    return {
        "version": RECIPE_VERSION,
        "suite": check_suite(suite),
        # Only a foreign architecture is named: bases of the machine's own keep their hash.
        **({"arch": arch} if arch else {}),
        "mirror": MIRROR,
        "packages": PACKAGES,
        "files": files(suite),
        "masked": MASKED_UNITS,
        "ca": {os.path.basename(p): Path(p).read_text() for p in ca_files()},
    }


def recipe_hash(suite: str = SUITE, arch: str | None = None) -> str:
    blob = json.dumps(recipe(suite, arch), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def base_path(suite: str = SUITE, arch: str | None = None) -> Path:
    """`arch`: a foreign Debian architecture (None: the machine's own)."""
    # bookworm's bases keep their old name (no suite in it): caches stay valid.
    tag = ("" if suite == SUITE else f"{suite}-") + (f"{arch}-" if arch else "")
    return cache_dir() / f"base-{tag}{recipe_hash(suite, arch)}"


def ensure_base(log=print, suite: str = SUITE, arch: str | None = None) -> Path:
    """Return the base rootfs for the current recipe of `suite` (and foreign `arch`),
    building it if needed."""
    path = base_path(suite, arch)
    if (path / ".complete").exists():
        return path
    with file_lock(cache_dir() / "base.lock"):
        if (path / ".complete").exists():  # another `lab up` built it meanwhile
            return path
        _clean_stale_builds()
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        log(f"building the {suite} base rootfs {path} (debootstrap, about a minute"
            + (f"; {arch}, emulated: about ten)..." if arch else ")..."))
        started = time.monotonic()
        try:
            _build(tmp, suite, arch)
            os.rename(tmp, path)
        except BaseException:
            _remove_tree(tmp)
            raise
        log(f"base rootfs built in {time.monotonic() - started:.0f}s")
        return path


def _build(root: Path, suite: str, arch: str | None = None) -> None:
    root.parent.mkdir(parents=True, exist_ok=True)
    proc = run(
        ["debootstrap", "--variant=minbase", *([f"--arch={arch}"] if arch else []),
         f"--include={','.join(PACKAGES)}", suite, str(root), MIRROR],
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-3:]
        raise LabError(f"debootstrap failed: {' | '.join(tail)}")
    for rel, text in files(suite).items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    for ca in ca_files():
        shutil.copy(ca, root / "usr/local/share/ca-certificates" / f"lab-{os.path.basename(ca)}")
    run(["chroot", str(root), "update-ca-certificates"])
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    run(["chroot", str(root), "apt-get", "clean"])
    (root / ".complete").write_text(json.dumps(recipe(suite, arch), sort_keys=True, indent=1))


def _clean_stale_builds() -> None:
    for tmp in glob.glob(str(cache_dir() / "base-*.tmp*")):
        _remove_tree(Path(tmp))


def _remove_tree(path: Path) -> None:
    """Remove a (partial) build, first unmounting what debootstrap left mounted in it."""
    if not path.exists():
        return
    with open("/proc/self/mounts") as fh:
        mounts = [line.split()[1] for line in fh]
    for mnt in sorted((m for m in mounts if m.startswith(str(path) + "/")), reverse=True):
        run(["umount", "-l", mnt], check=False)
    shutil.rmtree(path, ignore_errors=True)
