"""pytest fixtures for tests on real lab hosts (see docs/lab.md).

The session-scoped ``lab`` fixture owns a lab with a name unique to this pytest
session, so it never collides with a demo lab or another engineer's, and tears
it down at the end of the session: normally, on a failing test, on Ctrl-C
(SIGINT) and on SIGTERM (turned into KeyboardInterrupt so pytest unwinds its
fixtures), with an atexit hook as a last resort.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyinfra_jupyter.lab import Lab, LabError, network_spec  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs real lab hosts (root, systemd-nspawn); slow")


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) the slow fault tests unless PJ_RELIABILITY=all."""
    if os.environ.get("PJ_RELIABILITY") == "all":
        return
    slow = [item for item in items if item.get_closest_marker("reliability_all")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


@dataclass
class LabHost:
    """One running lab host, as the tests see it."""

    name: str
    address: str
    ssh_port: int
    netns: str
    pid: int
    ssh_key: str
    _lab: Lab = field(repr=False)

    @property
    def ssh_url(self) -> str:
        """A testinfra host spec: ``testinfra.get_host(host.ssh_url)``."""
        return (
            f"paramiko://root@127.0.0.1:{self.ssh_port}"
            f"?ssh_identity_file={self.ssh_key}"
        )

    def run(self, cmd: str, check: bool = True, timeout: float | None = 600):
        """Run a shell command inside the host (nsenter into all its namespaces)."""
        return self._lab.host_exec(self.name, cmd, check=check, timeout=timeout)


class LabFixture:
    """What the ``lab`` fixture yields: a thin test-facing face of pyinfra_jupyter.lab.Lab."""

    def __init__(self, lab: Lab, workdir: Path):
        self.lab = lab
        self.name = lab.name
        self.workdir = workdir

    def _host(self, entry: dict) -> LabHost:
        return LabHost(
            name=entry["name"], address=entry["address"], ssh_port=entry["ssh_port"],
            netns=entry["netns"], pid=entry["pid"], ssh_key=str(self.lab.ssh_key),
            _lab=self.lab,
        )

    def up(self, n: int = 1) -> list[LabHost]:
        """At least *n* hosts running; returns all of them (existing ones are kept)."""
        return [self._host(h) for h in self.lab.up(n)["hosts"]]

    def new_host(self, distro: str | None = None, arch: str | None = None) -> LabHost:
        """A new host (Debian `distro`: bullseye, bookworm, trixie; default bookworm; a
        foreign `arch`, arm64, runs emulated)."""
        return self._host(self.lab.new_host(distro, arch))

    @property
    def hosts(self) -> list[LabHost]:
        return [self._host(h) for h in self.lab.status()["hosts"]]

    def status(self) -> dict:
        return self.lab.status()

    def probe(self, cmd: str, check: bool = False, timeout: float | None = 120):
        """Run a shell command in the probe namespace (on the lab bridge, not a host)."""
        return self.lab.probe_exec(cmd, check=check, timeout=timeout)

    def run_service(self, name: str, argv: list[str], **kwargs) -> int:
        return self.lab.run_service(name, argv, **kwargs)

    def network(self, *extra_no_proxy: str) -> dict:
        """The `network` spec key for this lab's hosts (proxy, CA), as inventory/lab.py sets it."""
        return network_spec(self.lab.status(), extra_no_proxy)

    @property
    def lab_address(self) -> str:
        return self.lab.status()["lab_address"]

    def write_inventory(
        self,
        path: str | os.PathLike,
        hosts: list[LabHost] | None = None,
        host_data: dict | None = None,
        per_host: dict[str, dict] | None = None,
    ) -> Path:
        """Write a pyinfra inventory (group ``lab_hosts``) for *hosts* (default: all).

        Every host gets its SSH settings, then *host_data*, then ``per_host[name]``.
        """
        hosts = self.hosts if hosts is None else hosts
        entries = []
        for h in hosts:
            data = {
                "ssh_hostname": "127.0.0.1",
                "ssh_port": h.ssh_port,
                "ssh_user": "root",
                "ssh_key": h.ssh_key,
                "ssh_strict_host_key_checking": "no",
                "ssh_known_hosts_file": "/dev/null",
                **(host_data or {}),
                **((per_host or {}).get(h.name, {})),
            }
            entries.append((h.name, data))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f'"""Inventory of lab {self.name}, written by tests/lab/conftest.py."""\n\n'
            f"lab_hosts = {entries!r}\n"
        )
        return path

    @property
    def inventory_path(self) -> Path:
        """An inventory of all current hosts, rewritten on each access."""
        return self.write_inventory(self.workdir / "inventory.py")

    def pyinfra(self, *args: str, inventory: Path | None = None, check: bool = True):
        """Run ``pyinfra -y INVENTORY ARGS`` from the repo root with this interpreter."""
        argv = [sys.executable, "-m", "pyinfra", "-y", str(inventory or self.inventory_path),
                *args]
        proc = subprocess.run(argv, cwd=REPO, text=True, capture_output=True)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc


def _lab_available() -> str | None:
    if sys.platform != "linux":
        return "the lab needs Linux"
    if os.geteuid() != 0:
        return "the lab needs root"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    reason = _lab_available()
    if reason:
        pytest.skip(reason)
    name = "pt" + secrets.token_hex(3)
    the_lab = Lab(name)
    torn_down = False

    def teardown() -> None:
        nonlocal torn_down
        if not torn_down:
            torn_down = True
            the_lab.down()

    def on_sigterm(signum, frame):
        # Unwind like Ctrl-C, so pytest runs fixture finalizers (and ours).
        raise KeyboardInterrupt(f"signal {signum}")

    old_term = signal.signal(signal.SIGTERM, on_sigterm)
    atexit.register(teardown)  # if pytest dies before finalizers run
    try:
        yield LabFixture(the_lab, tmp_path_factory.mktemp(f"lab-{name}"))
    finally:
        try:
            teardown()
        finally:
            atexit.unregister(teardown)
            signal.signal(signal.SIGTERM, old_term)


@pytest.fixture(scope="session")
def lab_host(lab) -> LabHost:
    """A host of its own for the lab's self-tests: other test modules change theirs
    (firewalls, services), so "the first host" could be anything by the time this runs."""
    return lab.new_host()


__all__ = ["LabError", "LabFixture", "LabHost"]
