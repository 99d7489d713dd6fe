"""Notebook mode on an arm64 lab host (`make test-arm64`; slow, out of `make test`).

The stand-in for 64-bit Raspberry Pi OS: a Debian 12 arm64 host, its programs run by
qemu-user-static through binfmt_misc (`lab up --arch arm64`). The deploy installs the
notebook server from PyPI's aarch64 wheels; a user logs in over HTTPS from outside the
host and a kernel computes 1+1; the second run changes nothing. Everything runs emulated,
several times slower than natively: the figures are printed.
"""

from __future__ import annotations

import copy

import pytest
from deploy_helpers import assert_no_changes
from test_notebook import PASSWORD_A, SITE, Site

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    site = Site(lab, tmp_path_factory.mktemp("arm64"), arch="arm64")
    spec = copy.deepcopy(SITE)
    spec["notebook"]["instances"] = spec["notebook"]["instances"][:1]  # alice, on 8100
    site.spec = spec
    yield site
    print("\narm64 notebook deploy figures (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in site.figures.items()))


def test_notebook_on_arm64_logs_in_and_runs_a_kernel(site):
    assert site.sh("uname -m") == "aarch64"
    assert site.sh("dpkg --print-architecture") == "arm64"
    site.deploy("first run")
    # The server's interpreter is an arm64 binary (ELF e_machine 0xb7, AArch64), run by qemu.
    venv_python = site.sh("readlink -f /opt/jupyter/alice/bin/python 2>/dev/null || "
                          "readlink -f $(ls -d /opt/jupyter*/*/bin/python | head -n 1)")
    assert site.sh(f"od -An -j18 -N2 -tx1 {venv_python}").split() == ["b7", "00"]
    ran = site.client("kernel", "alice", PASSWORD_A, "1+1")
    assert ran["logged_in"] and ran["result"] == "2", ran
    assert_no_changes(site.deploy("second run"))
