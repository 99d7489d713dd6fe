"""Wheels fetched once by the controller (python.wheels, operations/ops/wheelhouse.py).

The platform tags a host's facts give, the `auto` choice by fleet size, and the venv
operation's commands when the controller holds the bundle: upload, sha256 checked on the
host, install with --no-index, the wheels removed. The real download is proven by the fleet
lab test and bench/bench_fleet.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from pyinfra.api.exceptions import DeployError

from operations.items import Venv
from operations.ops import converge, wheelhouse
from operations.ops.shell import Installs
from tests.support import make_site
from tests.unit.test_hostile_input import run_op

REQS = ("jupyterhub==6.1.1", "jupyterlab==4.6.6")
HUB = {"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}}


def test_platform_tags_follow_the_hosts_glibc_and_architecture():
    centos7 = wheelhouse.target_for("3.11", "x86_64", "glibc 2.17")
    assert centos7.platforms[0] == "manylinux_2_17_x86_64"
    assert "manylinux_2_18_x86_64" not in centos7.platforms
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(
        centos7.platforms)
    assert centos7.abi == "cp311"
    pi = wheelhouse.target_for("3.9", "armv7l", "glibc 2.31", ("https://www.piwheels.org/simple",))
    assert "linux_armv7l" in pi.platforms and "manylinux1_armv7l" not in pi.platforms
    assert "manylinux2014_armv7l" in pi.platforms
    arm64 = wheelhouse.target_for("3.11", "aarch64", "2.36")
    assert "manylinux_2_36_aarch64" in arm64.platforms and "linux_aarch64" not in arm64.platforms


@pytest.mark.parametrize("glibc", ["", "musl libc", "glibc two", "2"])
def test_no_target_without_a_glibc_version(glibc):
    assert wheelhouse.target_for("3.11", "x86_64", glibc) is None


def test_auto_fetches_once_for_a_fleet_and_leaves_one_host_to_its_index():
    one = make_site(HUB, facts={"glibc": "glibc 2.36"})
    assert one.installs.wheels == "index"
    assert one.installs.glibc == "glibc 2.36" and one.installs.arch == "x86_64"
    fleet = dataclasses.replace(one, fleet_size=10)
    assert fleet.installs.wheels == "controller-or-index"
    chosen = make_site({**HUB, "python": {"wheels": "controller"}})
    assert chosen.installs.wheels == "controller"
    never = dataclasses.replace(make_site({**HUB, "python": {"wheels": "index"}}), fleet_size=10)
    assert never.installs.wheels == "index"
    assert make_site(HUB, "centos7", facts={"glibc": "glibc 2.17"}).installs.glibc \
        == "glibc 2.17"


def _cached_bundle(tmp_path, monkeypatch, requirements=REQS):
    """A bundle in the controller's cache for `requirements` (no download)."""
    monkeypatch.setenv("PJ_DOWNLOAD_CACHE", str(tmp_path))
    target = wheelhouse.target_for("3.11", "x86_64", "glibc 2.36")
    entry = tmp_path / "wheelhouse" / wheelhouse._key(tuple(requirements), target)
    entry.mkdir(parents=True)
    (entry / "wheels.tar").write_bytes(b"not really a tar")
    (entry / "bundle.json").write_text(json.dumps({"sha256": "ab" * 32, "wheels": 2}))
    return entry


def _installs(wheels):
    return Installs(wheels=wheels, arch="x86_64", glibc="glibc 2.36")


def test_the_venv_installs_offline_from_the_uploaded_checked_bundle(tmp_path, monkeypatch):
    entry = _cached_bundle(tmp_path, monkeypatch)
    item = Venv("/opt/jupyterhub", "/usr/bin/python3", "3.11", REQS, "the hub")
    commands = run_op(converge.venv, monkeypatch, item, _installs("controller"))
    text = "\n".join(commands)
    assert f"{entry}/wheels.tar" in text  # the upload of the cached bundle
    assert 'echo "' + "ab" * 32 + "  /opt/jupyterhub.wheels/wheels.tar\" | sha256sum -c" in text
    install = next(c for c in commands if "pip install" in c)
    assert "--no-index --find-links /opt/jupyterhub.wheels" in install
    assert commands[-1] == "rm -rf -- /opt/jupyterhub.wheels"
    # The check comes before the archive is unpacked, in one command that stops on failure.
    check = next(c for c in commands if "sha256sum" in c)
    assert check.index("sha256sum") < check.index("tar -xf")


def test_a_converged_venv_asks_the_controller_for_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PJ_DOWNLOAD_CACHE", str(tmp_path))
    item = Venv("/opt/jupyterhub", "/usr/bin/python3", "3.11", REQS, "the hub")
    live = {"runs": True, "version": "3.11.2",
            "dists": ["jupyterhub-6.1.1.dist-info", "jupyterlab-4.6.6.dist-info"]}
    assert run_op(converge.venv, monkeypatch, item, _installs("controller"), snapshot=live) == []
    assert not (tmp_path / "wheelhouse").exists()


def test_controller_that_cannot_fetch_fails_the_host_and_auto_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("PJ_DOWNLOAD_CACHE", str(tmp_path))

    def refuse(*args, **kwargs):
        raise wheelhouse.WheelhouseError("pip download failed on the controller: no network")

    monkeypatch.setattr(wheelhouse, "bundle", refuse)
    item = Venv("/opt/jupyterhub", "/usr/bin/python3", "3.11", REQS, "the hub")
    with pytest.raises(DeployError, match="python.wheels controller: /opt/jupyterhub: pip "
                       "download failed on the controller: no network"):
        run_op(converge.venv, monkeypatch, item, _installs("controller"))
    commands = run_op(converge.venv, monkeypatch, item, _installs("controller-or-index"))
    install = next(c for c in commands if "pip install" in c)
    assert "--no-index" not in install and "wheels.tar" not in "\n".join(commands)


def test_a_requirement_without_a_wheel_is_built_only_when_pure(tmp_path, monkeypatch):
    """pip's "No matching distribution" names the sdist-only requirement; a pure build is
    kept, anything else is refused naming it."""
    calls = []

    def fake_pip(*args, timeout=0):
        calls.append(args)
        if args[0] == "wheel":
            out = args[args.index("--wheel-dir") + 1]
            name = "onetimepass-1.0.1-py3-none-any.whl" if "onetimepass" in args[-1] \
                else "fastthing-1.0-cp311-cp311-linux_x86_64.whl"
            (tmp_path / "w").mkdir(exist_ok=True)
            open(f"{out}/{name}", "w").close()
            return _Done(0, "")
        if not any(c[0] == "wheel" for c in calls):
            return _Done(1, "ERROR: No matching distribution found for onetimepass\n")
        if sum(1 for c in calls if c[0] == "wheel") == 1 and "fastthing" in args:
            return _Done(1, "ERROR: No matching distribution found for fastthing\n")
        return _Done(0, "")

    monkeypatch.setattr(wheelhouse, "_pip", fake_pip)
    target = wheelhouse.target_for("3.11", "x86_64", "glibc 2.36")
    built = tmp_path / "built"
    built.mkdir()
    wheelhouse._download(("jupyterhub-nativeauthenticator==1.3.0",), target, tmp_path, built)
    assert [p.name for p in built.iterdir()] == ["onetimepass-1.0.1-py3-none-any.whl"]
    calls.clear()
    with pytest.raises(wheelhouse.WheelhouseError, match="fastthing has no wheel for the host, "
                       "and its build .* is not pure Python"):
        wheelhouse._download(("fastthing",), target, tmp_path, tmp_path / "built")


@dataclasses.dataclass
class _Done:
    returncode: int
    stderr: str
