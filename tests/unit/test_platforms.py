"""Facts -> Platform: supported distros, their firewall, and clear refusals."""

from __future__ import annotations

import pytest
from pyinfra.api.exceptions import DeployError

from operations.platforms import MODERN, platform_from_facts


def distro(name: str, distro_id: str, major: int, minor: int = 0) -> dict:
    return {"name": name, "major": major, "minor": minor, "release_meta": {"ID": distro_id}}


@pytest.mark.parametrize(
    ("facts", "arch", "family", "firewall"),
    [
        (distro("CentOS Linux", "centos", 7, 9), "x86_64", "rhel", "firewalld"),
        (distro("Ubuntu", "ubuntu", 16, 4), "x86_64", "debian", "ufw"),
        (distro("Ubuntu", "ubuntu", 24, 4), "x86_64", "debian", "ufw"),
        (distro("Debian", "debian", 12), "x86_64", "debian", "nftables"),
        (distro("Raspbian GNU/Linux", "raspbian", 11), "armv7l", "debian", "nftables"),
        (distro("Debian", "debian", 12), "aarch64", "debian", "nftables"),
    ],
)
def test_supported(facts, arch, family, firewall):
    platform = platform_from_facts(facts, arch, 229)
    assert platform.family == family
    assert platform.firewall_backend == firewall
    assert platform.pins == MODERN
    assert arch in platform.label


@pytest.mark.parametrize(
    ("facts", "systemd", "words"),
    [
        (distro("Arch Linux", "arch", 0), 256, "Arch Linux is not supported"),
        (distro("Ubuntu", "ubuntu", 14, 4), 204, "ubuntu 14 is too old"),
        (distro("CentOS Linux", "centos", 6, 10), None, "centos 6 is too old"),
        (distro("Debian", "debian", 12), None, "does not run systemd"),
    ],
)
def test_refused_with_a_sentence(facts, systemd, words):
    with pytest.raises(DeployError, match=words):
        platform_from_facts(facts, "x86_64", systemd)


def test_systemd_version_fact():
    from operations.facts import SystemdVersion

    fact = SystemdVersion()
    assert fact.process(["systemd 219", "+PAM +AUDIT"]) == 219
    assert fact.process(["systemd 252 (252.30-1~deb12u2)"]) == 252
    assert fact.process([]) is None


@pytest.mark.parametrize(
    ("facts", "python", "too_old"),
    [
        (distro("CentOS Linux", "centos", 7, 9), "3.6", True),
        (distro("Ubuntu", "ubuntu", 16, 4), "3.5", True),
        (distro("Debian", "debian", 11), "3.9", True),
        (distro("Ubuntu", "ubuntu", 22, 4), "3.10", False),
        (distro("Debian", "debian", 12), "3.11", False),
    ],
)
def test_the_distros_python_is_known_before_it_is_installed(facts, python, too_old):
    """A minimal CentOS 7 has no python3 yet: its 3.6 is still refused before any install."""
    from operations.spec.python import PythonSpec

    platform = platform_from_facts(facts, "x86_64", 219)
    assert platform.system_python == python
    need = tuple(int(x) for x in PythonSpec().min_version.split("."))
    assert (tuple(int(x) for x in python.split(".")) < need) is too_old
