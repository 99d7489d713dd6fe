"""python.provider and proxy.node: which Python and Node each release gets, and the exact
build each family runs (CentOS 7: EPEL's OpenSSL 1.1; Ubuntu 16.04: OpenSSL 1.1.1 built into
the prefix; Debian 11: the system's). The real build is proven on a Debian 11 lab host
(tests/lab/test_distros.py)."""

from __future__ import annotations

import pytest
from pyinfra.api.exceptions import DeployError

from operations import hub, proxy
from operations import python as py
from operations.items import NpmPackage, Packages, Step, Venv
from operations.platform import CPYTHON, NPM_FOR_NODE, OPENSSL, npm_for
from tests.support import make_site

HUB = {"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}}
BUILT = f"/opt/pyinfra-jupyter/python/{CPYTHON.version}/bin/python3.11"


@pytest.mark.parametrize(
    ("release", "provider"),
    [("centos7", "source"), ("ubuntu1604", "source"), ("ubuntu1804", "source"),
     ("ubuntu2004", "source"), ("debian11", "source"), ("raspbian11", "source"),
     ("ubuntu2204", "system"), ("ubuntu2404", "system"), ("debian12", "system"),
     ("debian13", "system"), ("raspbian12", "system")],
)
def test_auto_builds_python_only_where_the_distros_is_too_old(release, provider):
    site = make_site(HUB, release)
    assert py.provider(site) == provider
    venv = next(i for i in hub.items(site) if isinstance(i, Venv))
    assert venv.python == (BUILT if provider == "source" else "/usr/bin/python3")
    assert venv.python_version == ("3.11" if provider == "source" else site.facts["python3"])


def test_system_on_a_release_too_old_is_refused_naming_the_field():
    site = make_site({**HUB, "python": {"provider": "system"}}, "centos7")
    with pytest.raises(DeployError, match=r"Python 3\.6.*python.provider"):
        py.items(site)


def test_source_can_be_chosen_on_a_new_release_too():
    site = make_site({**HUB, "python": {"provider": "source"}}, "debian12")
    assert py.python_bin(site) == BUILT


def _build(items) -> Step:
    return next(i for i in items if isinstance(i, Step))


def test_centos7_builds_against_epels_openssl11():
    items = py.items(make_site(HUB, "centos7"))
    packages = [i for i in items if isinstance(i, Packages)]
    assert packages[0].names == ("epel-release",)  # before openssl11-devel can resolve
    assert "openssl11-devel" in packages[1].names and "gcc" in packages[1].names
    step = _build(items)
    assert step.kwargs["openssl"] == "epel" and step.kwargs["present"] is False
    command = py.build_script("epel", False, 2)
    assert "sed -i 's/PKG_CONFIG openssl /PKG_CONFIG openssl11 /g' Python-3.11.2/configure" \
        in command
    assert "--with-openssl=" not in command


def test_ubuntu1604_builds_openssl_111_into_the_prefix():
    site = make_site(HUB, "ubuntu1604")
    items = py.items(site)
    names = next(i for i in items if isinstance(i, Packages)).names
    assert "libssl-dev" not in names and "build-essential" in names  # 1.0.2's headers: no
    command = py.build_script("build", False, 2)
    ossl = f"/opt/pyinfra-jupyter/python/{CPYTHON.version}/openssl"
    assert f'echo "{OPENSSL.sha256}  {OPENSSL.name}" | sha256sum -c --quiet -' in command
    assert f"./config --prefix={ossl} --openssldir=/etc/ssl shared no-tests" in command
    assert f"--with-openssl={ossl} --with-openssl-rpath=auto" in command


def test_debian11_uses_its_own_openssl_and_altinstall():
    items = py.items(make_site(HUB, "debian11"))
    assert "libssl-dev" in next(i for i in items if isinstance(i, Packages)).names
    command = py.build_script("system", False, 4)
    assert f'echo "{CPYTHON.sha256}  {CPYTHON.name}" | sha256sum -c --quiet -' in command
    assert "make -j4" in command and "make altinstall" in command
    assert "--enable-optimizations" not in command and "--with-openssl" not in command
    assert "openssl-1.1.1w" not in command
    # Logged to a file kept on the host; the build dir removed only after a good build.
    wrapped = py.build_command("system", False, 4)
    assert f">> {py.build_log()} 2>&1; rc=$?" in wrapped
    assert wrapped.endswith(f"exit 1; }}; rm -rf -- {py.BUILD_DIR}")


def test_pgo_by_default_only_with_4_gib():
    small = make_site(HUB, "debian11", facts={"memory_mb": 512})
    big = make_site(HUB, "debian11", facts={"memory_mb": 8192})
    assert _build(py.items(small)).kwargs["optimize"] is False
    assert _build(py.items(big)).kwargs["optimize"] is True
    forced = make_site({**HUB, "python": {"optimize": False}}, "debian11",
                       facts={"memory_mb": 8192})
    assert _build(py.items(forced)).kwargs["optimize"] is False
    assert "--enable-optimizations" in py.build_script("system", True, 2)


def test_a_built_prefix_that_reports_the_version_is_not_built_again():
    site = make_site(HUB, "debian11", facts={"pythons": {BUILT: CPYTHON.version}})
    assert _build(py.items(site)).kwargs["present"] is True
    half = make_site(HUB, "debian11", facts={"pythons": {BUILT: None}})  # modules missing
    assert _build(py.items(half)).kwargs["present"] is False


def test_host_facts_report_built_pythons():
    from operations.ops.facts import HostFacts

    info = HostFacts().process(["id=debian", "version_id=11", f"pybuilt={BUILT}\x1f3.11.2",
                                "pybuilt=/opt/pyinfra-jupyter/python/3.12.0/bin/python3.12\x1f",
                                "cpus=4"])
    assert info["pythons"] == {BUILT: "3.11.2",
                               "/opt/pyinfra-jupyter/python/3.12.0/bin/python3.12": None}
    assert info["cpus"] == "4"


@pytest.mark.parametrize(
    ("release", "node", "npm"),
    [("debian11", "wheel", "8.19.4"), ("ubuntu2004", "wheel", "8.19.4"),
     ("ubuntu2204", "wheel", "8.19.4"), ("ubuntu2404", "/usr/bin/node", "10.9.9"),
     ("debian12", "/usr/bin/node", "10.9.9"), ("debian13", "/usr/bin/node", "10.9.9"),
     ("centos7", "wheel", "8.19.4"), ("ubuntu1604", "wheel", "8.19.4"),
     ("ubuntu1804", "wheel", "8.19.4")],
)
def test_node_and_the_npm_that_runs_on_it(release, node, npm):
    site = make_site(HUB, release)
    items = proxy.items(site)
    package = next(i for i in items if isinstance(i, NpmPackage))
    assert package.npm.version == npm
    if node == "wheel":
        venv = next(i for i in items if isinstance(i, Venv))
        assert venv.requirements == ("nodejs-bin==16.15.1a4",)
        assert package.node == (f"/opt/pyinfra-jupyter/node/lib/python{py.python_version(site)}"
                                "/site-packages/nodejs/bin/node")
        assert f"ExecStart={package.node} " in next(
            i for i in items if getattr(i, "path", "").endswith(".service")).data.decode()
    else:
        assert package.node == node
        assert any(isinstance(i, Packages) and "nodejs" in i.names for i in items)


def test_the_node_wheel_is_the_hosts_architectures_fetched_by_the_controller():
    for arch, tag in (("x86_64", "manylinux_2_12_x86_64"), ("aarch64", "manylinux_2_17_aarch64"),
                      ("armv7l", "manylinux_2_17_armv7l")):
        site = make_site(HUB, "debian11", facts={"arch": arch})
        venv = next(i for i in proxy.items(site) if isinstance(i, Venv))
        (wheel,) = venv.wheels
        assert tag in wheel.name and len(wheel.sha256) == 64
        assert wheel.urls[0].startswith("https://files.pythonhosted.org/packages/")
    with pytest.raises(DeployError, match=r"no nodejs-bin wheel for armv6l.*proxy.node"):
        proxy.items(make_site(HUB, "debian11", facts={"arch": "armv6l"}))


def test_a_distro_node_too_old_is_refused_naming_the_field():
    site = make_site({**HUB, "proxy": {"node": "system"}}, "ubuntu1804")
    with pytest.raises(DeployError, match=r"Node 8.*proxy.node"):
        proxy.items(site)


def test_every_npm_pin_runs_on_the_node_it_is_chosen_for():
    assert [oldest for oldest, _ in NPM_FOR_NODE] == sorted(
        (oldest for oldest, _ in NPM_FOR_NODE), reverse=True)
    assert npm_for(20).version == "10.9.9" and npm_for(16).version == "8.19.4"
    with pytest.raises(DeployError, match="Node 12"):
        npm_for(12)


def test_readme_distro_matrix_is_the_generated_one():
    from pathlib import Path

    from operations.platform import MATRIX_BEGIN, MATRIX_END, matrix_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start, end = readme.index(MATRIX_BEGIN), readme.index(MATRIX_END) + len(MATRIX_END)
    assert readme[start:end] == matrix_markdown(), (
        "README's distro matrix is stale: run `make readme-reference`")
    assert "| CentOS 7 | 3.6 | CPython 3.11.2, built (`source`) | EPEL `openssl11` |" in readme


def test_a_small_host_gets_a_swap_file_around_installs_only():
    from operations.ops.shell import SWAP_FILE, Installs

    small = make_site(HUB, "ubuntu1604", facts={"memory_mb": 240})
    assert small.installs.swap_mb == 1024 and not small.installs.keep_swap
    assert make_site(HUB, "debian12", facts={"memory_mb": 2048}).installs.swap_mb == 0
    assert make_site({**HUB, "python": {"swap_mb": 0}}, "ubuntu1604",
                     facts={"memory_mb": 240}).installs.swap_mb == 0
    wrapped = small.installs.wrap("pip install x")
    assert wrapped.startswith(f"if ! swapon --show=NAME --noheadings 2>/dev/null | grep -qxF "
                              f"{SWAP_FILE}; then")
    assert "fallocate -l 1024M" in wrapped and f"mkswap {SWAP_FILE}" in wrapped
    assert wrapped.endswith(f"( pip install x ); rc=$?; swapoff {SWAP_FILE} 2>/dev/null; "
                            f"rm -f -- {SWAP_FILE}; [ $rc -eq 0 ]")
    kept = Installs(swap_mb=512, keep_swap=True).wrap("true")
    assert "swapoff" not in kept and kept.endswith("( true ); rc=$?; [ $rc -eq 0 ]")
    assert Installs().wrap("true") == "true"


def test_armhf_pip_gets_piwheels_and_aarch64_pypi():
    armhf = make_site(HUB, "raspbian12", facts={"arch": "armv7l"})
    assert armhf.installs.pip_options == " --extra-index-url https://www.piwheels.org/simple"
    assert make_site(HUB, "debian12", facts={"arch": "aarch64"}).installs.pip_options == ""
