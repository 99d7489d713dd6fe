"""The Python that runs the services (and users' kernels), and the OS packages users need.

`python.provider` says where it comes from: the distro's python3 (`system`), or CPython
built on the host from the pinned release tarball (`source`) into its own versioned prefix
under /opt/pyinfra-jupyter/python/ — on the releases whose python3 is older than the stack
needs (CentOS 7, Ubuntu 16.04-20.04, Debian 10-11, Raspberry Pi OS 10-11). `auto` picks
the first when it is new enough. The tarball is downloaded and checked once by the
controller (operations/ops/fetch.py) and uploaded: the host needs no internet access for it.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.command import FileUploadCommand
from pyinfra.api.exceptions import DeployError

from .. import paths
from ..items import Directory, File, Item, Packages, Step
from ..ops.fetch import fetch
from ..ops.shell import Installs, bounded, sha256_check
from ..platform import CPYTHON, EPEL_REPO, OPENSSL, source_build_packages
from ..site import PYTHON_PREFIX, Site, minor, version_tuple

NAME = "python"
TITLE = "Install Python"
BUILD_LOG_DIR = "/var/log/pyinfra-jupyter"
# Where a build unpacks and compiles: made fresh by root, 0700, removed after a good build;
# under our root-owned state directory, never a world-writable one (/var/tmp), where
# another user could plant the path first.
BUILD_DIR = f"{paths.STATE}/python-build"
# Seconds a build may take: a Raspberry Pi 3 needs ~40 min without PGO, several hours with.
BUILD_TIMEOUT = 4 * 3600
# PGO (--enable-optimizations) only on hosts with this much memory or more, by default.
OPTIMIZE_MIN_MB = 4096

q = shlex.quote


def wanted(spec) -> bool:
    return True


# Which Python the services' venvs use is the Site's (operations/site.py): every component
# that makes a venv asks it there, none imports this one. These name it for this component
# and its tests.


def system_version(site: Site) -> str:
    return site.system_python_version


def provider(site: Site) -> str:
    return site.python_provider


def prefix() -> str:
    return PYTHON_PREFIX


def python_bin(site: Site) -> str:
    return site.python_bin


def python_version(site: Site) -> str:
    return site.python_version


def check_version(site: Site) -> None:
    found, need = python_version(site), site.spec.python.min_version
    if version_tuple(found) < version_tuple(need):
        raise DeployError(
            f"{site.platform.label} has Python {found}, but JupyterHub and JupyterLab need "
            f"{need}+ (python.min_version): set python.provider to `source` or `auto` to build "
            f"CPython {CPYTHON.version} on the host"
        )


def optimize(site: Site) -> bool:
    chosen = site.spec.python.optimize
    return chosen if chosen is not None else site.platform.memory_mb >= OPTIMIZE_MIN_MB


def build_packages(site: Site) -> tuple[str, ...]:
    """What the CPython build needs from the distro (without the OpenSSL headers where the
    release's OpenSSL is too old and one is built into the prefix instead)."""
    return source_build_packages(site.platform.family.name, site.platform.release.openssl)


def items(site: Site) -> list[Item]:
    check_version(site)  # before anything is installed
    family, spec = site.platform.family, site.spec.python
    timeout = site.spec.network.timeout
    if provider(site) == "system":
        build = family.build_packages if spec.build_tools else ()
        return [Packages((*family.python_packages, *build, *spec.os_packages),
                         "Python 3, venv and OS packages", timeout=timeout)]
    release = site.platform.release
    found = site.facts.get("pythons", {}).get(python_bin(site))
    result: list[Item] = []
    if release.openssl == "epel":
        # openssl11-devel (OpenSSL 1.1.1 beside the system's 1.0.2) is in EPEL only.
        result.append(Packages(("epel-release",), "EPEL (for OpenSSL 1.1)", timeout=timeout))
        if release.epel_repo:
            result.append(File(EPEL_REPO, release.epel_repo,
                               label=f"Point EPEL at Fedora's archive ({EPEL_REPO})"))
    result += [
        Packages((*build_packages(site), *spec.os_packages),
                 f"CPython {CPYTHON.version}'s build dependencies and OS packages",
                 timeout=timeout),
        Directory(paths.PYTHON_PREFIXES, mode="755"),
        Directory(BUILD_LOG_DIR, mode="755"),
        Step(build_python,
             f"Build CPython {CPYTHON.version} from source into {prefix()}",
             {"present": found == CPYTHON.version, "openssl": release.openssl,
              "optimize": optimize(site), "jobs": max(1, site.platform.cpus)},
             key_name="python-build", timeout=BUILD_TIMEOUT, installs=True),
    ]
    return result


def build_log() -> str:
    return f"{BUILD_LOG_DIR}/python-{CPYTHON.version}-build.log"


def build_script(openssl: str, optimize: bool, jobs: int) -> str:
    """The steps that build CPython in BUILD_DIR (where its tarball was uploaded) and install
    it with `make altinstall` into prefix()."""
    target = prefix()
    src = f"Python-{CPYTHON.version}"
    configure = [f"--prefix={target}", "--with-ensurepip=install",
                 # The prefix's own lib dir first: no clash with a distro libpython.
                 f"LDFLAGS=-Wl,-rpath,{target}/lib"]
    steps = [sha256_check(CPYTHON.sha256, CPYTHON.name),
             f"mkdir {src} && tar -xzf {CPYTHON.name} -C {src} --strip-components=1"]
    if openssl == "build":
        ossl = f"{target}/openssl"
        steps += [
            sha256_check(OPENSSL.sha256, OPENSSL.name),
            f"mkdir openssl && tar -xzf {OPENSSL.name} -C openssl --strip-components=1",
            # The system's certificate store (/etc/ssl) as its default; install_sw leaves
            # /etc/ssl alone.
            f"(cd openssl && ./config --prefix={ossl} --openssldir=/etc/ssl shared no-tests "
            f"-Wl,-rpath,{ossl}/lib && make -j{jobs} && make install_sw)",
        ]
        configure += [f"--with-openssl={ossl}", "--with-openssl-rpath=auto"]
    elif openssl == "epel":
        # CentOS 7: CPython's configure asks pkg-config for "openssl"; EPEL's 1.1 is "openssl11".
        steps.append(f"sed -i 's/PKG_CONFIG openssl /PKG_CONFIG openssl11 /g' {src}/configure")
    if optimize:
        configure.append("--enable-optimizations")
    binary = f"{target}/bin/python{minor(CPYTHON.version)}"
    steps += [
        f"cd {src}",
        "./configure " + " ".join(q(arg) for arg in configure),
        f"make -j{jobs}",
        "make altinstall",
        # The modules the stack needs, or the build is not done (a missing -dev package
        # makes configure skip a module silently).
        f"{binary} -c 'import ssl, sqlite3, ctypes, zlib, bz2, lzma, venv, ensurepip; "
        "print(ssl.OPENSSL_VERSION)'",
    ]
    return " && ".join(steps)


def build_command(openssl: str, optimize: bool, jobs: int) -> str:
    """build_script, bounded, with everything it prints in the build log (kept on the host);
    on failure the end of the log is shown."""
    log, script = build_log(), build_script(openssl, optimize, jobs)
    return (
        f"cd {BUILD_DIR} && "
        + bounded(f"sh -c {q(script)} >> {log} 2>&1", BUILD_TIMEOUT,
                  f"the CPython {CPYTHON.version} build (see {log})")
        + f" || {{ echo 'CPython {CPYTHON.version} did not build; the end of {log}:' >&2; "
        f"tail -n 25 {log} >&2; exit 1; }}; "
        f"rm -rf -- {BUILD_DIR}"
    )


@operation()
def build_python(present: bool, openssl: str, optimize: bool, jobs: int,
                 installs: Installs | None = None):
    """
    Build CPython from the pinned release into its prefix, unless that prefix's interpreter
    already reports the pinned version with the modules the stack needs.

    + present: the prefix's interpreter reports the pinned version (host facts)
    + openssl: how it gets OpenSSL 1.1.1+ (platform.Release.openssl)
    + optimize: --enable-optimizations (PGO)
    + jobs: make -j
    + installs: the swap file a small host gets for the build (ops/shell.py)
    """
    installs = installs or Installs()
    if present:
        host.noop(f"CPython {CPYTHON.version} is built in {prefix()}")
        return
    artifacts = [CPYTHON] + ([OPENSSL] if openssl == "build" else [])
    local = [fetch(a) for a in artifacts]  # once per controller; checked by sha256
    log = build_log()
    yield (f"mkdir -p -m 755 -- {paths.STATE} && rm -rf -- {BUILD_DIR} && "
           f"mkdir -m 700 -- {BUILD_DIR} && "
           f"umask 077 && : > {log} && echo 'build started' $(date -u +%FT%TZ) >> {log}")
    for artifact, path in zip(artifacts, local, strict=True):
        yield FileUploadCommand(str(path), f"{BUILD_DIR}/{artifact.name}")
    installs.say(host)
    yield installs.wrap(build_command(openssl, optimize, jobs))
