"""staged_file on a real host: a config that fails its check never replaces the live one.

This is what keeps a running hub or notebook server up when a bad change is deployed: the
hub and notebook configs go through the same operation with their own checks.
"""

from __future__ import annotations

import pytest

from tests.lab.deploy_helpers import assert_no_changes, failure_excerpt, run_deploy

pytestmark = pytest.mark.lab

DEST = "/etc/pj-staged-test/app.conf"
# The check a service would do: the file must parse (here: a line `port = <number>`).
CHECK = "grep -Eq '^port = [0-9]+$' {path}"


@pytest.fixture(scope="module")
def host(lab):
    host = lab.new_host()
    host.run("mkdir -p /etc/pj-staged-test")
    return host


def deploy(lab, host, tmp_path, content: str, check: bool = True):
    inventory = lab.write_inventory(tmp_path / "inventory.py", [host], host_data={
        "x_staged": {"dest": DEST, "content": content, "check": CHECK}})
    return run_deploy(inventory, deploy_file="tests/lab/staged_deploy.py", check=check)


def test_good_then_bad_then_good(lab, host, tmp_path):
    deploy(lab, host, tmp_path, "port = 8000\n")
    assert host.run(f"stat -c '%a %U' {DEST}; cat {DEST}").stdout == "600 root\nport = 8000\n"
    assert_no_changes(deploy(lab, host, tmp_path, "port = 8000\n").stdout)

    bad = deploy(lab, host, tmp_path, "port = eight thousand\n", check=False)
    assert bad.returncode != 0, failure_excerpt(bad.stdout)
    # The live file is untouched and no staged copy is left behind.
    assert host.run(f"cat {DEST}").stdout == "port = 8000\n"
    assert host.run("ls -A /etc/pj-staged-test").stdout.split() == ["app.conf"]

    deploy(lab, host, tmp_path, "port = 9000\n")
    assert host.run(f"cat {DEST}").stdout == "port = 9000\n"
