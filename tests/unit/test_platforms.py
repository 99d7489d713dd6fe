"""Host facts -> Platform: supported distros, their family and firewall, systemd capabilities,
and clear refusals."""

from __future__ import annotations

import pytest
from pyinfra.api.exceptions import DeployError

from operations.platform import MODERN, SystemdCaps, platform_from_info
from tests.support import host_facts


@pytest.mark.parametrize(
    ("release", "arch", "family", "firewall"),
    [
        ("centos7", "x86_64", "rhel", "firewalld"),
        ("ubuntu1604", "x86_64", "debian", "ufw"),
        ("ubuntu2404", "x86_64", "debian", "ufw"),
        ("debian12", "x86_64", "debian", "nftables"),
        ("raspbian12", "armv7l", "debian", "nftables"),
        ("debian12", "aarch64", "debian", "nftables"),
    ],
)
def test_supported(release, arch, family, firewall):
    platform = platform_from_info(host_facts(release, arch))
    assert platform.family.name == family
    assert platform.firewall_backend == firewall
    assert platform.pins == MODERN
    assert arch in platform.label


@pytest.mark.parametrize(
    ("info", "words"),
    [
        ({"id": "arch", "pretty": "Arch Linux", "version": (0, 0), "systemd": 256},
         "is not supported"),
        ({"id": "ubuntu", "version": (14, 4), "systemd": 204}, "ubuntu 14 is too old"),
        ({"id": "centos", "version": (6, 10), "systemd": 0}, "centos 6 is too old"),
        ({"id": "debian", "version": (12, 0), "systemd": 0}, "does not run systemd"),
    ],
)
def test_refused_with_a_sentence(info, words):
    with pytest.raises(DeployError, match=words):
        platform_from_info(info)


def test_host_facts_parse_the_systemd_version_and_release():
    from operations.ops.facts import HostFacts

    fact = HostFacts()
    info = fact.process(["id=centos", "version_id=7", "minor=7.9", "systemd=systemd 219",
                         "booted=1", "python3=3.6", "arch=x86_64", "memory_kb=1048576"])
    assert info["version"] == (7, 9) and info["systemd"] == 219 and info["memory_mb"] == 1024
    info = fact.process(["id=debian", "version_id=12", "systemd=systemd 252 (252.30-1~deb12u2)",
                         "booted=1"])
    assert info["systemd"] == 252
    # systemd installed but not running as init (a container without it): no systemd.
    assert fact.process(["id=debian", "version_id=12", "systemd=systemd 252"])["systemd"] == 0


def test_systemd_capabilities_are_named_not_numbered():
    old, new = SystemdCaps(219), SystemdCaps(252)
    assert not old.protect_system_strict and new.protect_system_strict
    assert not old.ambient_capabilities and new.ambient_capabilities
    assert SystemdCaps(243).transient_unit_limits and not SystemdCaps(242).transient_unit_limits
    with pytest.raises(AttributeError):
        new.no_such_capability  # noqa: B018


@pytest.mark.parametrize(
    ("release", "python", "too_old"),
    [
        ("centos7", "3.6", True),
        ("ubuntu1604", "3.5", True),
        ("debian11", "3.9", True),
        ("ubuntu2204", "3.10", False),
        ("debian12", "3.11", False),
    ],
)
def test_the_distros_python_is_known_before_it_is_installed(release, python, too_old):
    """A minimal CentOS 7 has no python3 yet: its 3.6 is still refused before any install."""
    from pyinfra_jupyter.spec.python import PythonSpec

    platform = platform_from_info(host_facts(release))
    assert platform.system_python == python
    need = tuple(int(x) for x in PythonSpec().min_version.split("."))
    assert (tuple(int(x) for x in python.split(".")) < need) is too_old


def test_apt_update_fails_on_a_silent_mirror_within_its_own_bound():
    """A mirror that accepts and never answers: update must fail (not exit 0 with
    "ignored" index files and let the install wait on every package), within 300 s."""
    from operations.platform import APT_UPDATE_TIMEOUT, FAMILIES

    command = FAMILIES["apt"].install_command(["python3-venv"], update=True, timeout=1800)
    update, install = command.split("; [ $rc -eq 0 ] && ", 1)
    assert "APT::Update::Error-Mode=any" in update and "Acquire::Retries=3" in update
    assert f"timeout -k 10 {APT_UPDATE_TIMEOUT} apt-get" in update and APT_UPDATE_TIMEOUT <= 300
    assert install.startswith("timeout -k 10 1800 apt-get") and "Acquire::Retries=3" in install
