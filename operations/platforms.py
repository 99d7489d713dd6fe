"""What the host is (from facts) and what we install on it: the version matrix.

Pins live here, per distro, so an old distro can get an older release with the reason
written next to it; the spec may override any pin.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Arch, LinuxDistribution

from .facts import SystemdVersion


@dataclass(frozen=True)
class Pins:
    jupyterhub: str
    jupyterlab: str
    notebook: str
    chp: str  # configurable-http-proxy (npm)
    culler: str  # jupyterhub-idle-culler
    native_auth: str  # jupyterhub-nativeauthenticator
    oauthenticator: str = "17.4.0"  # GitHub / Google / generic OAuth
    ldap_auth: str = "2.0.2"  # jupyterhub-ldapauthenticator
    systemdspawner: str = "1.0.2"  # jupyterhub-systemdspawner


# Current releases for distros whose Python is 3.10+ (JupyterHub 6 needs it).
MODERN = Pins(
    # Checked with `pip index versions` / `npm view` (hub helper): newest releases that
    # install together on Python 3.11 (Debian 12). JupyterHub 6 and JupyterLab 4.6 need
    # Python 3.10+: a distro with 3.9 (Debian 11) needs older pins.
    jupyterhub="6.1.1",
    jupyterlab="4.6.6",
    # Notebook 7.x follows JupyterLab's minor version: 7.4 does not install beside lab 4.6.
    notebook="7.6.5",
    # 4.6.3 is the newest 4.x; CHP 5.x needs Node >= 20, Debian 12 ships Node 18.
    chp="4.6.3",
    culler="2.0.0",
    native_auth="1.3.0",
)


@dataclass(frozen=True)
class Platform:
    """The facts every component needs, gathered once per host."""

    distro: str  # os-release ID: debian, ubuntu, centos, raspbian
    version: tuple[int, int]  # (major, minor): (12, 0), (16, 4), (7, 9)
    arch: str  # x86_64, aarch64, armv7l
    systemd: int | None
    pins: Pins

    @property
    def family(self) -> str:
        return "rhel" if self.distro in ("centos", "rhel", "rocky", "almalinux") else "debian"

    @property
    def firewall_backend(self) -> str:
        """The firewall a host of this distro ships with."""
        if self.family == "rhel":
            return "firewalld"
        if self.distro == "ubuntu":
            return "ufw"
        return "nftables"

    @property
    def system_python(self) -> str | None:
        """The python3 version this distro release ships (None if we do not know it)."""
        return SYSTEM_PYTHON.get((self.distro, self.version[0]))

    @property
    def label(self) -> str:
        return f"{self.distro} {self.version[0]}.{self.version[1]} ({self.arch})"


# The python3 each distro release ships, for the version check before python3 is installed.
SYSTEM_PYTHON = {
    ("centos", 7): "3.6",
    ("ubuntu", 16): "3.5",
    ("ubuntu", 18): "3.6",
    ("ubuntu", 20): "3.8",
    ("ubuntu", 22): "3.10",
    ("ubuntu", 24): "3.12",
    ("debian", 10): "3.7",
    ("debian", 11): "3.9",
    ("debian", 12): "3.11",
    ("debian", 13): "3.13",
    ("raspbian", 10): "3.7",
    ("raspbian", 11): "3.9",
    ("raspbian", 12): "3.11",
}

SUPPORTED = {
    "debian": (10, 0),
    "raspbian": (10, 0),
    "ubuntu": (16, 4),
    "centos": (7, 0),
}


def platform_from_facts(distro: dict, arch: str, systemd: int | None) -> Platform:
    """Build a Platform from pyinfra's LinuxDistribution fact (plus Arch and systemd)."""
    meta = distro.get("release_meta") or {}
    distro_id = (meta.get("ID") or distro.get("name") or "unknown").lower()
    version = (distro.get("major") or 0, distro.get("minor") or 0)
    if distro_id not in SUPPORTED:
        raise DeployError(
            f"{distro.get('name') or distro_id} is not supported: pyinfra-jupyter deploys onto "
            "Debian 10+, Raspberry Pi OS, Ubuntu 16.04+ and CentOS 7"
        )
    if version < SUPPORTED[distro_id]:
        oldest = ".".join(map(str, SUPPORTED[distro_id]))
        raise DeployError(f"{distro_id} {version[0]} is too old: {distro_id} {oldest}+ is supported")
    if systemd is None:
        raise DeployError("the host does not run systemd; every service we install is a systemd unit")
    return Platform(distro=distro_id, version=version, arch=arch, systemd=systemd, pins=MODERN)


def get_platform(host) -> Platform:
    return platform_from_facts(
        host.get_fact(LinuxDistribution), host.get_fact(Arch), host.get_fact(SystemdVersion)
    )
