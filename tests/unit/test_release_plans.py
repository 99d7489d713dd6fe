"""What the deploy would run on each release we cannot boot here, from host facts as those
systems print them (tests/data/host_facts/<release>.txt, sources cited in each): the repos,
the Python (system or built), Node and npm, SELinux, and the units. Compared with golden
plans (`PJ_UPDATE_GOLDEN=1` rewrites them; review the diff). Debian 11 and 13 run for real
in `make test-distros`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from operations import network, proxy, python, selinux
from operations.items import (
    Absent,
    Directory,
    File,
    NpmPackage,
    Packages,
    Perms,
    Service,
    Step,
    Venv,
)
from operations.ops.facts import HostFacts
from operations.platform import platform_from_info
from operations.site import Site
from pyinfra_jupyter.spec import build_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "host_facts"
RELEASES = sorted(p.stem for p in DATA.glob("*.txt") if not p.stem.endswith(".plan"))

# The site each release is deployed with in the seeds: a hub, or a notebook on 9999.
HUB = {"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}}
NOTEBOOK = {"mode": "notebook", "notebook": {"instances": [
    {"name": "research", "user": "researcher", "port": 9999,
     "password_hash": ("argon2:$argon2id$v=19$m=10240,t=10,p=8$D4tBz/u7X7GyzQgSZch6G"
                       "w$MlNA7nxyYMF3UasfbF7isuDgTNM5NfEUEutJNSxwgzs")}]},
    "tls": {"type": "self-signed", "names": ["research.example.org"]}}
SITES = {"centos7": NOTEBOOK, "ubuntu1604": NOTEBOOK}


def facts_of(release: str) -> dict:
    lines = [line for line in (DATA / f"{release}.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    return HostFacts().process(lines)


def site_of(release: str, **more_facts) -> Site:
    facts = {**facts_of(release), **more_facts}
    return Site(spec=build_spec(SITES.get(release, HUB)), platform=platform_from_info(facts),
                facts=facts, passwords={}, host_name="h1")


def _describe(item, site: Site) -> str:
    family = site.platform.family
    if isinstance(item, Packages):
        return "packages: " + family.install_command(list(item.names), False, item.timeout)
    if isinstance(item, File):
        data = item.content.get_secret_value() if isinstance(item.content, SecretStr) \
            else item.content
        data = data.encode() if isinstance(data, str) else data
        return (f"file {item.path} {item.user}:{item.group} {item.mode} "
                f"sha256:{hashlib.sha256(data).hexdigest()[:12]}  # {item.label}")
    if isinstance(item, Directory | Perms | Absent):
        return f"{type(item).__name__.lower()} {item.path}"
    if isinstance(item, Venv):
        wheels = "".join(f" from {a.name} (sha256 {a.sha256[:12]}, fetched by the controller)"
                         for a in item.wheels)
        return f"venv {item.path} by {item.python} ({item.python_version}): " \
            + " ".join(item.requirements) + wheels
    if isinstance(item, NpmPackage):
        return (f"npm {item.package}@{item.version} into {item.prefix}, node {item.node}, "
                f"npm {item.npm.version}")
    if isinstance(item, Service):
        return f"service {item.unit} enabled={item.enabled} running={item.running}"
    if isinstance(item, Step):
        if item.op is python.build_python:
            kw = item.kwargs
            return (f"step {item.label} (present={kw['present']}): "
                    + python.build_command(kw["openssl"], kw["optimize"], kw["jobs"]))
        command = item.kwargs.get("command")
        extra = f": {command} (force={item.kwargs.get('force', False)})" if command else ""
        return f"step {item.label}{extra}"
    return repr(item)


def plan(site: Site) -> str:
    lines = [f"# {site.platform.label}, {site.platform.memory_mb} MiB, "
             f"systemd {site.platform.systemd.version}, installs: {site.installs}"]
    for component in (network, python, selinux, proxy):
        if not component.wanted(site.spec):
            continue
        lines.append(f"## {component.NAME}")
        lines += [_describe(item, site) for item in component.items(site)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("release", RELEASES)
def test_plan_matches_the_golden_one(release):
    golden = DATA / f"{release}.plan.txt"
    text = plan(site_of(release))
    if os.environ.get("PJ_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"plan for {release} changed: PJ_UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize("release", RELEASES)
def test_a_converged_host_builds_nothing(release):
    site = site_of(release)
    if python.provider(site) != "source":
        assert not any(isinstance(i, Step) for i in python.items(site))
        return
    built = site_of(release, pythons={python.python_bin(site): "3.11.2"})
    step = next(i for i in python.items(built) if isinstance(i, Step))
    assert step.kwargs["present"] is True


def test_centos7_repos_are_repointed_before_anything_is_installed():
    site = site_of("centos7")
    first = network.items(site)[1]
    assert isinstance(first, File) and first.path == "/etc/yum.repos.d/CentOS-Base.repo"
    assert "baseurl=http://vault.centos.org/7.9.2009/os/$basearch/" in first.content
    assert "mirrorlist" not in first.content.replace("mirrorlist.centos.org is", "")
    assert "end of life" in first.label
    names = [getattr(i, "names", None) or getattr(i, "path", "") for i in python.items(site)]
    assert names[:3] == [("epel-release",), "/etc/yum.repos.d/epel.repo", names[2]]
    assert "openssl11-devel" in names[2]
    assert not any(isinstance(i, File) and "yum.repos.d" in i.path
                   for i in network.items(site_of("ubuntu1604")))


def test_selinux_labels_a_port_the_policy_does_not_know_and_relabels_only_when_needed():
    site = site_of("centos7")
    steps = [i for i in selinux.items(site) if isinstance(i, Step)]
    assert [s.key for s in steps] == ["step:selinux-port-9999", "step:selinux-relabel"]
    assert steps[0].kwargs["command"].startswith("semanage port -a -t http_port_t -p tcp 9999")
    assert steps[1].kwargs["force"] is False  # nothing mislabelled: a no-op
    assert site_of("centos7", selinux_relabel="12") and [
        i for i in selinux.items(site_of("centos7", selinux_relabel="12"))
        if isinstance(i, Step)][-1].kwargs["force"] is True
    labelled = site_of("centos7", selinux_http_ports="80,81,443,9990-9999")
    assert [i.key for i in selinux.items(labelled) if isinstance(i, Step)] == [
        "step:selinux-relabel"]
    assert selinux.items(site_of("centos7", selinux="Disabled")) == []
    assert selinux.items(site_of("ubuntu2404")) == []


def test_pi_facts_pick_piwheels_on_armhf_and_swap_on_a_small_pi():
    pi3 = site_of("raspbian11-armhf")
    assert pi3.platform.model.startswith("Raspberry Pi 3")
    assert pi3.installs.extra_index_urls == ("https://www.piwheels.org/simple",)
    assert pi3.installs.swap_mb == 1024  # 926 MiB of memory
    pi4 = site_of("debian12-arm64-pi4")
    assert pi4.installs.extra_index_urls == () and pi4.installs.swap_mb == 0
