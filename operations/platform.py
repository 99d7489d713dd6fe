"""What the host is, and everything that differs between distros: the one distro table.

`Platform` is built once per host from one fact (operations/ops/facts.py: HostInfo). It
carries the distro family (package manager, its commands and paths), the release row (what
the release ships, what we pin for it) and the host's systemd capabilities as named
booleans. Components and templates ask it questions; no other module knows an apt/yum
difference, a systemd version number or a per-release quirk.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from pyinfra.api.exceptions import DeployError

from .ops.shell import bounded

# -- systemd: what each directive needs ---------------------------------------------------

# The first systemd release that understands each capability we use (systemd's NEWS file).
# CentOS 7 ships 219, Ubuntu 16.04 229, 18.04 237, 20.04 245, Debian 11 247, 12 252.
_SYSTEMD_SINCE = {
    "ambient_capabilities": 229,  # AmbientCapabilities=
    # StartLimitIntervalSec= in [Unit] (StartLimitInterval= in [Service] before)
    "start_limit_in_unit": 230,
    "read_write_paths": 231,  # ReadWritePaths= (ReadWriteDirectories= before)
    "protect_system_strict": 232,  # ProtectSystem=strict
    "protect_kernel": 232,  # ProtectKernelTunables=, ProtectKernelModules=, ProtectControlGroups=
    "restrict_namespaces": 233,  # RestrictNamespaces=
    "lock_personality": 235,  # LockPersonality=, RestrictRealtime=
    "syscall_filter_groups": 239,  # SystemCallFilter=@system-service
    "protect_hostname": 242,  # ProtectHostname=
    "restrict_suid_sgid": 242,  # RestrictSUIDSGID=
    # systemd-run --property=MemoryMax=/CPUQuota= on transient units, which SystemdSpawner
    # uses for per-user limits (its README asks for 243+).
    "transient_unit_limits": 243,
    "protect_kernel_logs": 244,  # ProtectKernelLogs=
    "protect_clock": 245,  # ProtectClock=
    "load_credential": 247,  # LoadCredential=
}


@dataclass(frozen=True)
class SystemdCaps:
    """The host's systemd, as yes/no answers templates can use (`caps.protect_hostname`)."""

    version: int

    def __getattr__(self, name: str) -> bool:
        try:
            return self.version >= _SYSTEMD_SINCE[name]
        except KeyError:
            raise AttributeError(name) from None

    def has(self, capability: str) -> bool:
        if capability not in _SYSTEMD_SINCE:
            raise KeyError(f"unknown systemd capability {capability!r}")
        return self.version >= _SYSTEMD_SINCE[capability]

    @staticmethod
    def since(capability: str) -> int:
        return _SYSTEMD_SINCE[capability]


# -- families: package manager, paths ----------------------------------------------------

# apt: never wait forever on a mirror or dpkg's lock (a stalled mirror must fail the host
# with a message, not hang the whole fleet); retries make a flaky link survivable.
_APT_OPTIONS = ("-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 "
                "-o Acquire::Retries=3 -o DPkg::Lock::Timeout=300")
# `apt-get update` alone: against a mirror that accepts connections and never answers,
# update exited 0 after its retries ("Some index files failed to download. They have been
# ignored"), so the install went on to wait on every package: the fleet lab test saw one
# such host hold a 10-host run for over 11 minutes. Now any failed index is an error
# (APT::Update::Error-Mode, apt 2.1.16+; older apt ignores the option) and update has a
# bound of its own. The retries stay: a proxy that drops one request (the lab's
# apt-cacher-ng under a fleet's concurrent refreshes) must not fail the host.
_APT_UPDATE_OPTIONS = ("-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 "
                       "-o Acquire::Retries=3 -o APT::Update::Error-Mode=any "
                       "-o DPkg::Lock::Timeout=300")
APT_UPDATE_TIMEOUT = 300
_YUM_OPTIONS = "--setopt=timeout=30 --setopt=retries=3"


@dataclass(frozen=True)
class Family:
    """A distro family: its package manager and the paths that differ between families."""

    name: str  # debian, rhel
    manager: str  # apt, yum
    # Packages for a Python that can make venvs; a compiler and headers for packages that
    # have no wheel for the host (only when the spec asks: they are big, and slow to install).
    python_packages: tuple[str, ...]
    build_packages: tuple[str, ...]
    # Node.js to run configurable-http-proxy, and what the npm download needs.
    node_packages: tuple[str, ...]
    ca_anchor_dir: str
    ca_rebuild: str
    ca_bundle: str
    # (IPv4 rules file, IPv6 rules file, boot-time loader units) of the iptables backend.
    iptables_persist: tuple[str, str, tuple[str, ...]]
    firewall_packages: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Units that own the filter tables too and must not run beside the iptables backend.
    iptables_conflicts: tuple[str, ...] = ()
    # The package manager's proxy settings file (apt.conf.d); None: yum reads the proxy from
    # the environment our commands source.
    proxy_conf: str | None = None

    def install_command(self, packages: list[str], update: bool, timeout: int) -> str:
        """Install `packages` (refreshing the lists first if `update`), each step bounded."""
        names = " ".join(shlex.quote(p) for p in packages)
        what = f"{self.manager} (the package mirror or proxy)"
        if self.manager == "apt":
            refresh = (bounded(f"apt-get -q {_APT_UPDATE_OPTIONS} update",
                               min(timeout, APT_UPDATE_TIMEOUT), what) + " && "
                       if update else "")
            return ("export DEBIAN_FRONTEND=noninteractive && " + refresh + bounded(
                f"apt-get -q -y {_APT_OPTIONS} install --no-install-recommends {names}",
                timeout, what))
        return bounded(f"yum -y -q {_YUM_OPTIONS} install {names}", timeout, what)

    def query_command(self, packages: list[str]) -> str:
        """Prints `NAME installed` for each of `packages` that is installed."""
        names = " ".join(shlex.quote(p) for p in packages)
        if self.manager == "apt":
            return (f"dpkg-query -W -f '${{Package}} ${{db:Status-Status}}\\n' {names} "
                    "2>/dev/null | awk '$2 == \"installed\" {print $1, \"installed\"}'")
        return f"rpm -q --qf '%{{NAME}} installed\\n' {names} 2>/dev/null | grep ' installed$'"

    # apt's package lists: refreshed before an install only when older than this.
    lists_max_age = 3600

    @property
    def lists_path(self) -> str:
        return "/var/lib/apt/lists" if self.manager == "apt" else ""

    def proxy_config(self, http_proxy: str | None, https_proxy: str | None) -> str:
        """apt's proxy settings (for apt runs outside our deploy, e.g. unattended-upgrades;
        our own apt and yum runs read the proxy from the environment)."""
        lines = []
        if http_proxy:
            lines.append(f'Acquire::http::Proxy "{http_proxy}";')
        if https_proxy:
            lines.append(f'Acquire::https::Proxy "{https_proxy}";')
        return "".join(line + "\n" for line in lines)


DEBIAN = Family(
    name="debian",
    manager="apt",
    python_packages=("python3", "python3-venv"),
    build_packages=("python3-dev", "build-essential"),
    node_packages=("nodejs", "curl", "ca-certificates"),
    ca_anchor_dir="/usr/local/share/ca-certificates",
    ca_rebuild="update-ca-certificates",
    ca_bundle="/etc/ssl/certs/ca-certificates.crt",
    iptables_persist=("/etc/iptables/rules.v4", "/etc/iptables/rules.v6",
                      ("netfilter-persistent.service",)),
    firewall_packages={"nftables": ("nftables",), "ufw": ("ufw",),
                       "firewalld": ("firewalld",),
                       "iptables": ("iptables", "iptables-persistent")},
    proxy_conf="/etc/apt/apt.conf.d/90pyinfra-jupyter-proxy",
)

RHEL = Family(
    name="rhel",
    manager="yum",
    python_packages=("python3",),
    build_packages=("python3-devel", "gcc"),
    node_packages=("nodejs", "curl", "ca-certificates"),
    ca_anchor_dir="/etc/pki/ca-trust/source/anchors",
    ca_rebuild="update-ca-trust extract",
    ca_bundle="/etc/pki/tls/certs/ca-bundle.crt",
    iptables_persist=("/etc/sysconfig/iptables", "/etc/sysconfig/ip6tables",
                      ("iptables.service", "ip6tables.service")),
    firewall_packages={"nftables": ("nftables",), "firewalld": ("firewalld",),
                       "iptables": ("iptables-services",)},
    iptables_conflicts=("firewalld.service",),
)

FAMILIES = {"apt": DEBIAN, "yum": RHEL}

# -- the version matrix ---------------------------------------------------------------------

Pins = dict[str, str]  # pip / npm distribution name -> exact version

# Checked with `pip index versions` / `npm view`: the newest releases that install together
# on Python 3.11 (Debian 12). JupyterHub 6 and JupyterLab 4.6 need Python 3.10+.
MODERN: Pins = {
    "jupyterhub": "6.1.1",
    "jupyterlab": "4.6.6",
    # Notebook 7.x follows JupyterLab's minor version: 7.4 does not install beside lab 4.6.
    "notebook": "7.6.5",
    # 4.6.3 is the newest 4.x; CHP 5.x needs Node >= 20, Debian 12 ships Node 18.
    "configurable-http-proxy": "4.6.3",
    "jupyterhub-idle-culler": "2.0.0",
    "jupyterhub-nativeauthenticator": "1.3.0",
    "oauthenticator": "17.4.0",
    "jupyterhub-ldapauthenticator": "2.0.2",
    "jupyterhub-systemdspawner": "1.0.2",
}


# -- downloads: fetched once by the controller, checked, uploaded --------------------------


@dataclass(frozen=True)
class Artifact:
    """A file the controller downloads once into its cache (operations/ops/fetch.py), checks
    against `sha256` and uploads; hosts need no internet access for it. `urls` are tried in
    order; a file with another checksum is refused, and the next URL is tried."""

    name: str  # its file name in the cache and on the host
    version: str
    sha256: str
    urls: tuple[str, ...]


# CPython for provider "source". 3.11.2 because its release tarball is also in Debian's
# archive (bookworm's python3.11 source package: Debian's byte-for-byte copy of the upstream
# release), which is what the lab can reach; the checksum is of that file, taken from
# bookworm's Sources index (Checksums-Sha256) and verified on download.
CPYTHON = Artifact(
    "Python-3.11.2.tgz", "3.11.2",
    "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
    ("https://www.python.org/ftp/python/3.11.2/Python-3.11.2.tgz",
     "http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz"),
)
# OpenSSL 1.1.1 for a CPython build on a release whose own OpenSSL is older (Ubuntu 16.04
# ships 1.0.2; CPython 3.10+ needs 1.1.1+): built into the Python's prefix, used by it alone.
# The checksum is openssl.org's published one, also bullseye's Sources entry.
OPENSSL = Artifact(
    "openssl-1.1.1w.tar.gz", "1.1.1w",
    "cf3098950cb4d853ad95c0841f1f9c6d3dc102dccfcacd521d93925208b76ac8",
    ("https://www.openssl.org/source/openssl-1.1.1w.tar.gz",
     "http://deb.debian.org/debian/pool/main/o/openssl/openssl_1.1.1w.orig.tar.gz"),
)

# Build dependencies of CPython (what its `configure` looks for: ssl, sqlite3, ctypes, zlib,
# bz2, lzma, uuid), per family. RHEL's OpenSSL 1.1 comes from EPEL (openssl11-devel).
SOURCE_BUILD_PACKAGES = {
    "debian": ("build-essential", "pkg-config", "libssl-dev", "zlib1g-dev", "libffi-dev",
               "libsqlite3-dev", "libbz2-dev", "liblzma-dev", "uuid-dev"),
    "rhel": ("gcc", "make", "pkgconfig", "openssl11-devel", "zlib-devel", "libffi-devel",
             "sqlite-devel", "bzip2-devel", "xz-devel", "libuuid-devel"),
}
# Their OpenSSL headers: left out where the release's OpenSSL is too old and OPENSSL is
# built into the prefix instead (Release.openssl "build").
OPENSSL_HEADERS = ("libssl-dev", "openssl11-devel")


def source_build_packages(family: str, openssl: str) -> tuple[str, ...]:
    """What the CPython build needs from a family's distro, given the release's `openssl`."""
    names = SOURCE_BUILD_PACKAGES[family]
    if openssl == "build":
        names = tuple(n for n in names if n not in OPENSSL_HEADERS)
    return names


@dataclass(frozen=True)
class Npm:
    """The npm that installs configurable-http-proxy: fetched from the registry, checked by
    sha256 (taken from the registry's tarball, matching its published sha512 integrity)."""

    version: str
    sha256: str

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/npm/-/npm-{self.version}.tgz"


# The newest npm each Node major runs (npm's `engines`), newest first: (oldest Node, npm).
NPM_FOR_NODE = (
    (18, Npm("10.9.9", "c80bd097147cce32e31010b791bab8c71a26a5e10668210ec9d2e7f4c7cea2a1")),
    (16, Npm("8.19.4", "2667a1b8300f315d223e43c307fbe946eb8b97792af399424ef67ea9cb0a72f6")),
)
# configurable-http-proxy 4.6.3 says Node >= 10 (its `engines`), but npm resolves its
# dependencies' ranges to today's releases, and winston's @so-ric/colorspace uses `||=`
# (Node 15+): on Debian 11's Node 12 the proxy died with a SyntaxError in the lab. 16 is
# the oldest Node it was seen running on.
NODE_MIN = 16
# Node for releases whose own is older: a PyPI wheel, manylinux_2_12 on x86_64 (runs on
# CentOS 7's glibc 2.17 and Ubuntu 16.04's 2.23), manylinux_2_17 on ARM, installed with pip
# into its own venv from the file the controller fetched (checked against PyPI's sha256).
NODE_WHEEL = ("nodejs-bin", "16.15.1a4")
_PYPI = "https://files.pythonhosted.org/packages"
NODE_WHEELS = {
    "x86_64": Artifact(
        "nodejs_bin-16.15.1a4-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.whl",
        "16.15.1a4", "7895b70f25ab39bb1165ad7f2b3cc14d51c7c98aa19edde9ffc41470c8fa445e",
        (f"{_PYPI}/c7/ed/32990bdadcc6554535249e7e4552bc82f0b62e0183e5bc37539ab04827e9/"
         "nodejs_bin-16.15.1a4-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.whl",)),
    "aarch64": Artifact(
        "nodejs_bin-16.15.1a4-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "16.15.1a4", "8f7e64d8e276e77c2d9a1285472d736c0fa300fcc6932d0ba7f5f1482358e23b",
        (f"{_PYPI}/20/52/87d25ce4d9ce6c1209fbe80c8c962adfe5abb8997ff3b350c069759262dc/"
         "nodejs_bin-16.15.1a4-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",)),
    "armv7l": Artifact(
        "nodejs_bin-16.15.1a4-py3-none-manylinux_2_17_armv7l.manylinux2014_armv7l.whl",
        "16.15.1a4", "e6d3b949e96c0bc1598495fd913b150f79fec9521774f3aea4da721f5080e350",
        (f"{_PYPI}/13/81/73180695492d336b6c2a493ac305fc9f5863fe00ba97ed16de592ac232ba/"
         "nodejs_bin-16.15.1a4-py3-none-manylinux_2_17_armv7l.manylinux2014_armv7l.whl",)),
}


def npm_for(node_major: int) -> Npm:
    for oldest, npm in NPM_FOR_NODE:
        if node_major >= oldest:
            return npm
    raise DeployError(f"no npm runs on Node {node_major}; Node {NODE_MIN}+ is needed")


# -- CentOS 7 after its end of life ---------------------------------------------------------

# CentOS 7 ended on 2024-06-30: mirrorlist.centos.org is gone (yum fails on its first
# request) and its last point release, 7.9.2009, lives on at vault.centos.org. The deploy
# replaces the base repos file with one pointing there, before any package is installed.
CENTOS7_VAULT_REPO = """\
# Written by pyinfra-jupyter: CentOS 7 is past its end of life, mirrorlist.centos.org is
# gone; its last release (7.9.2009) is kept at vault.centos.org.
[base]
name=CentOS-7.9.2009 - Base (vault)
baseurl=http://vault.centos.org/7.9.2009/os/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[updates]
name=CentOS-7.9.2009 - Updates (vault)
baseurl=http://vault.centos.org/7.9.2009/updates/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[extras]
name=CentOS-7.9.2009 - Extras (vault)
baseurl=http://vault.centos.org/7.9.2009/extras/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7
"""
# EPEL 7 (for openssl11-devel) moved to Fedora's archive; epel-release's own repo file points
# at the retired metalink.
EPEL_REPO = "/etc/yum.repos.d/epel.repo"
EPEL7_ARCHIVE_REPO = """\
# Written by pyinfra-jupyter: EPEL 7 is archived; its metalink no longer answers.
[epel]
name=Extra Packages for Enterprise Linux 7 - $basearch (archive)
baseurl=https://archives.fedoraproject.org/pub/archive/epel/7/$basearch/
enabled=1
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-7
"""


@dataclass(frozen=True)
class Release:
    """One row of the distro table: what a release ships, and what we install on it."""

    distro: str
    major: int
    family: Family
    python: str  # the python3 it ships
    firewall: str  # its usual firewall
    node: int = 0  # the major version of the nodejs it ships (0: none in its base repos)
    # How a CPython built from source gets OpenSSL 1.1.1+: "system" (the release's own),
    # "epel" (EPEL's openssl11, CentOS 7), "build" (OPENSSL built into the prefix).
    openssl: str = "system"
    # Where pam_motd reads login-message snippets (Linux-PAM 1.3.1+); None: no such directory.
    motd_dir: str | None = "/etc/motd.d"
    pins: Pins = field(default_factory=lambda: dict(MODERN))
    # Package repository files written before anything is installed (path -> content): a
    # release past its end of life whose mirrors are gone. EPEL's, when the release uses it.
    repo_files: tuple[tuple[str, str], ...] = ()
    epel_repo: str | None = None


def _rows() -> dict[tuple[str, int], Release]:
    rows = [
        # Linux-PAM 1.1.8 on these: no motd.d. CentOS 7's base has no nodejs (EPEL's is gone).
        Release("centos", 7, RHEL, "3.6", "firewalld", node=0, openssl="epel", motd_dir=None,
                repo_files=(("/etc/yum.repos.d/CentOS-Base.repo", CENTOS7_VAULT_REPO),),
                epel_repo=EPEL7_ARCHIVE_REPO),
        Release("ubuntu", 16, DEBIAN, "3.5", "ufw", node=4, openssl="build", motd_dir=None),
        Release("ubuntu", 18, DEBIAN, "3.6", "ufw", node=8, motd_dir=None),
        Release("ubuntu", 20, DEBIAN, "3.8", "ufw", node=10),
        Release("ubuntu", 22, DEBIAN, "3.10", "ufw", node=12),
        Release("ubuntu", 24, DEBIAN, "3.12", "ufw", node=18),
        Release("debian", 10, DEBIAN, "3.7", "nftables", node=10),
        Release("debian", 11, DEBIAN, "3.9", "nftables", node=12),
        Release("debian", 12, DEBIAN, "3.11", "nftables", node=18),
        Release("debian", 13, DEBIAN, "3.13", "nftables", node=20),
        Release("raspbian", 10, DEBIAN, "3.7", "nftables", node=10),
        Release("raspbian", 11, DEBIAN, "3.9", "nftables", node=12),
        Release("raspbian", 12, DEBIAN, "3.11", "nftables", node=18),
    ]
    return {(r.distro, r.major): r for r in rows}


RELEASES = _rows()
OLDEST = {"debian": 10, "raspbian": 10, "ubuntu": 16, "centos": 7}


@dataclass(frozen=True)
class Platform:
    """The facts every component needs, gathered once per host."""

    distro: str  # os-release ID: debian, ubuntu, centos, raspbian
    version: tuple[int, int]  # (major, minor): (12, 0), (16, 4), (7, 9)
    arch: str  # x86_64, aarch64, armv7l
    systemd: SystemdCaps
    release: Release
    model: str = ""  # /proc/device-tree/model, e.g. "Raspberry Pi 4 Model B Rev 1.4"
    memory_mb: int = 0
    cpus: int = 1
    glibc: str = ""  # `getconf GNU_LIBC_VERSION`: "glibc 2.36"; "" on a musl host

    @property
    def family(self) -> Family:
        return self.release.family

    @property
    def pins(self) -> Pins:
        return self.release.pins

    @property
    def firewall_backend(self) -> str:
        return self.release.firewall

    @property
    def system_python(self) -> str:
        return self.release.python

    @property
    def label(self) -> str:
        return f"{self.distro} {self.version[0]}.{self.version[1]} ({self.arch})"

    def pin(self, distribution: str) -> str:
        return self.pins[distribution]

    @property
    def pip_extra_index_urls(self) -> tuple[str, ...]:
        """piwheels on 32-bit ARM (Raspberry Pi OS armhf), where PyPI has few wheels; 64-bit
        ARM (aarch64) gets PyPI's manylinux wheels."""
        return (PIWHEELS,) if self.arch in ("armv7l", "armv6l") else ()


PIWHEELS = "https://www.piwheels.org/simple"
# Hosts with less memory than this get a swap file during install steps (python.swap_mb).
SMALL_HOST_MB = 1024


def platform_from_info(info: dict) -> Platform:
    """Build a Platform from the HostInfo fact; refuse what we cannot deploy onto."""
    distro = (info.get("id") or "unknown").lower()
    version = info.get("version") or (0, 0)
    if distro not in OLDEST:
        raise DeployError(
            f"{info.get('pretty_name') or distro} is not supported: pyinfra-jupyter deploys "
            "onto Debian 10+, Raspberry Pi OS, Ubuntu 16.04+ and CentOS 7"
        )
    if version[0] < OLDEST[distro]:
        raise DeployError(f"{distro} {version[0]} is too old: {distro} {OLDEST[distro]}+ is supported")
    if not info.get("systemd"):
        raise DeployError("the host does not run systemd; every service we install is a systemd unit")
    release = RELEASES.get((distro, version[0])) or max(
        (r for (d, _), r in RELEASES.items() if d == distro), key=lambda r: r.major)
    return Platform(
        distro=distro, version=version, arch=info.get("arch") or "unknown",
        systemd=SystemdCaps(info["systemd"]), release=release,
        model=info.get("model") or "", memory_mb=info.get("memory_mb") or 0,
        cpus=int(info["cpus"]) if str(info.get("cpus") or "").isdigit() else 1,
        glibc=info.get("glibc") or "",
    )


# -- the matrix, for people: README's "Distros and versions" table --------------------------

MATRIX_BEGIN = "<!-- distro-matrix:begin (generated from operations/platform.py) -->"
MATRIX_END = "<!-- distro-matrix:end -->"
_NAMES = {"centos": "CentOS", "ubuntu": "Ubuntu", "debian": "Debian",
          "raspbian": "Raspberry Pi OS"}


def matrix_markdown() -> str:
    """What each release gets with the default spec (python.provider and proxy.node `auto`)."""
    need = (3, 10)  # PythonSpec.min_version's default: JupyterHub 6
    wheel_node = int(NODE_WHEEL[1].split(".")[0])
    lines = [
        MATRIX_BEGIN, "",
        "| Release | Ships Python | Services run on | OpenSSL of the build | Ships Node | Proxy runs "
        "on | npm | Firewall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for release in RELEASES.values():
        old = tuple(int(x) for x in release.python.split(".")) < need
        python = f"CPython {CPYTHON.version}, built (`source`)" if old else "the system's"
        openssl = {"system": "the system's", "epel": "EPEL `openssl11`",
                   "build": f"{OPENSSL.version}, built into the prefix"}[release.openssl]
        node_ok = release.node >= NODE_MIN
        node = "the system's" if node_ok else f"Node {NODE_WHEEL[1]} (`{NODE_WHEEL[0]}` wheel)"
        npm = npm_for(release.node if node_ok else wheel_node).version
        shipped = str(release.node) if release.node else "none"
        version = f"{release.major}" + (".04" if release.distro == "ubuntu" else "")
        lines.append(f"| {_NAMES[release.distro]} {version} | {release.python} | {python} | "
                     f"{openssl if old else '-'} | {shipped} | {node} | {npm} | "
                     f"{release.firewall} |")
    pins = ", ".join(f"{name} {version}" for name, version in MODERN.items())
    lines += ["", f"Every release gets the same stack: {pins}. Downloads are pinned by sha256: "
              f"CPython {CPYTHON.version} (`{CPYTHON.sha256[:16]}…`), OpenSSL {OPENSSL.version} "
              f"(`{OPENSSL.sha256[:16]}…`), npm "
              + ", ".join(f"{npm.version} (`{npm.sha256[:16]}…`)" for _, npm in NPM_FOR_NODE)
              + ".", "", MATRIX_END]
    return "\n".join(lines)
