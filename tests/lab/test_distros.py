"""Hub mode on lab hosts of other Debian releases (in `make test`; alone: `make test-distros`).

Debian 11 (bullseye) ships Python 3.9 and Node 12: the deploy builds CPython from the pinned
release tarball (python.provider auto -> source; the controller downloads and checks it, the
host needs no internet access for it) and runs the proxy on Node 16 from PyPI's nodejs-bin
wheel (proxy.node auto -> wheel: the proxy's dependencies need Node 15+), the path CentOS 7
and Ubuntu 16.04-22.04 take too. Debian 13 (trixie) ships Python 3.13 and Node 20: the
system's. On each: deploy, a PAM admin logs in over HTTPS from outside the host and a kernel
computes 1+1, and the second run changes nothing.

The lab keeps the first CPython build of each distro (Lab.keep_python) and puts it into
later hosts (Lab.seed_python), so a repeated run does not rebuild it; `PJ_DISTRO_REBUILD=1`
builds it again. Which of the two happened is printed with the figures.
"""

from __future__ import annotations

import os
import time

import pytest
from deploy_helpers import assert_no_changes
from test_hub import Site

from operations.platform import CPYTHON

pytestmark = pytest.mark.lab

PREFIX = f"/opt/pyinfra-jupyter/python/{CPYTHON.version}"
DISTROS = [d.strip() for d in os.environ.get("PJ_DISTROS", "bullseye,trixie")
           .split(",") if d.strip()]


@pytest.fixture(scope="module", params=DISTROS)
def site(request, lab, tmp_path_factory):
    # DISTRO[:NODE]: e.g. bookworm:wheel is Debian 12 with proxy.node `wheel`.
    distro, _, node = request.param.partition(":")
    site = Site(lab, tmp_path_factory.mktemp(f"hub-{distro}"), distro=distro)
    # Building CPython with PGO would take far longer; the default (on with 4 GiB+) sees
    # the machine's memory in a container.
    site.spec["python"] = {"optimize": False}
    if node:
        site.spec["proxy"] = {"node": node}
    site.distro, site.node = distro, node
    site.seeded = False
    if not os.environ.get("PJ_DISTRO_REBUILD"):
        site.seeded = lab.lab.seed_python(site.host.name, PREFIX)
    yield site
    print(f"\n{distro} hub deploy figures (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in site.figures.items())
          + (" (CPython from the lab's cache)" if site.seeded else ""))


def test_hub_deploys_and_a_kernel_runs_then_nothing_changes(site):
    started = time.monotonic()
    try:
        output = site.deploy("first run")
    finally:
        # A good build is worth keeping even when a later step failed (keep_python checks).
        if not site.seeded:
            site.lab.lab.keep_python(site.host.name, PREFIX)
    built = site.sh(f"test -x {PREFIX}/bin/python3.11 && echo yes || echo no") == "yes"
    if site.distro == "bullseye":
        assert built, "bullseye's Python 3.9 is too old: the deploy must build CPython"
        if not site.seeded:
            assert f"Build CPython {CPYTHON.version}" in output
            # The build log stays on the host (root's only); the build dir is gone.
            assert site.sh(f"stat -c %a /var/log/pyinfra-jupyter/python-{CPYTHON.version}"
                           "-build.log") == "600"
            assert site.sh("test -e /var/lib/pyinfra-jupyter/python-build && echo left || "
                           "echo gone") \
                == "gone"
        # The services run on it: the hub's venv was made by the built Python.
        assert f"home = {PREFIX}/bin" in site.sh("cat /opt/jupyterhub/pyvenv.cfg")
        site.node = site.node or "wheel"  # Node 12 is too old for the proxy
    else:
        assert not built, "this release's Python is new enough: nothing to build"
    if site.node == "wheel":
        unit = site.sh("systemctl cat configurable-http-proxy.service")
        version = site.sh("/opt/jupyterhub/bin/python -c 'import sys; print(\"%d.%d\" % "
                          "sys.version_info[:2])'")
        node = f"/opt/pyinfra-jupyter/node/lib/python{version}/site-packages/nodejs/bin/node"
        assert f"ExecStart={node} " in unit
        assert site.sh(f"{node} --version").startswith("v16.")
        pid = site.main_pid("configurable-http-proxy")
        assert site.sh(f"readlink /proc/{pid}/exe") == node
    site.figures["first run"] = time.monotonic() - started
    assert site.client("kernel", "1+1") == {"result": "2"}
    assert_no_changes(site.deploy("second run"))
