"""Upgrades on a real lab host (`make test-lifecycle`; slow, out of `make test`): a hub
deployed with the previous JupyterHub major, with users and a running server, is moved to
the current pins by changing the spec; a pin that does not exist leaves the old hub serving.

The uninstall and backup/restore proofs run in `make test` (tests/lab/test_hub.py).
"""

from __future__ import annotations

import json

import pytest
from deploy_helpers import assert_no_changes, run_deploy
from test_hub import Site

from operations.platform import MODERN

pytestmark = pytest.mark.lab

# The last release of the previous major: its database schema is older (6.x added migrations,
# so upgrade-db has work to do).
PREVIOUS = "5.5.4"


def _version(site) -> str:
    return site.sh("/opt/jupyterhub/bin/jupyterhub --version")


def _users(site) -> list[str]:
    return json.loads(site.sh(
        "/opt/jupyterhub/bin/python -c \"import json, sqlite3; print(json.dumps(sorted(r[0] "
        "for r in sqlite3.connect('/var/lib/jupyterhub/jupyterhub.sqlite')"
        ".execute('select name from users'))))\""))


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    site = Site(lab, tmp_path_factory.mktemp("lifecycle"))
    site.spec["hub"]["version"] = PREVIOUS
    yield site
    print("\nlifecycle deploy figures (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in site.figures.items()))


def test_a_changed_pin_upgrades_the_hub_and_its_database_with_a_backup_first(site):
    site.deploy(f"JupyterHub {PREVIOUS}")
    assert _version(site) == PREVIOUS
    assert site.client("kernel", "1+1") == {"result": "2"}  # a user with a running server
    assert "admin" in _users(site)
    revision = site.sh("/opt/jupyterhub/bin/python -c \"import sqlite3; print(sqlite3.connect("
                       "'/var/lib/jupyterhub/jupyterhub.sqlite').execute('select version_num "
                       "from alembic_version').fetchone()[0])\"")
    del site.spec["hub"]["version"]
    output = site.deploy("upgrade to the current pin")
    assert "Switch the hub to its new packages" in output
    assert _version(site) == MODERN["jupyterhub"]
    assert site.sh("/opt/jupyterhub/bin/python -c \"import sqlite3; print(sqlite3.connect("
                   "'/var/lib/jupyterhub/jupyterhub.sqlite').execute('select version_num "
                   "from alembic_version').fetchone()[0])\"") != revision  # upgrade-db ran
    assert "admin" in _users(site)
    assert site.sh("ls /var/backups/pyinfra-jupyter | wc -l") != "0"
    assert site.sh("test -e /opt/jupyterhub.previous && echo left; true") == ""
    assert site.client("kernel", "1+1") == {"result": "2"}
    assert_no_changes(site.deploy("rerun after the upgrade"))


def test_a_pin_that_does_not_exist_leaves_the_old_hub_serving(site):
    pid = site.main_pid("jupyterhub")
    site.spec["hub"]["version"] = "5.99.0"
    site.lab.write_inventory(site.inventory, [site.host],
                             {**site.spec, "network": site.lab.network()})
    failed = run_deploy(site.inventory, check=False)
    assert failed.returncode != 0
    assert "5.99.0" in failed.stdout
    assert site.main_pid("jupyterhub") == pid  # never stopped
    assert _version(site) == MODERN["jupyterhub"]
    assert site.sh("test -e /opt/jupyterhub.previous && echo left; true") == ""
    assert site.client("kernel", "1+1") == {"result": "2"}
    del site.spec["hub"]["version"]
    assert_no_changes(site.deploy("the pin put back"))


def test_a_venv_of_another_python_is_rebuilt_and_the_hub_switched_to_it(site):
    """After an OS upgrade the venv's Python is another minor version (here: its pyvenv.cfg
    says so): the next deploy rebuilds the venv and restarts the hub on it."""
    site.sh("sed -i 's/^version.*/version = 3.9.2/' /opt/jupyterhub/pyvenv.cfg")
    output = site.deploy("a venv of another Python")
    assert "rebuilding the venv" in output
    assert "3.9" not in site.sh("grep ^version /opt/jupyterhub/pyvenv.cfg")
    assert site.client("kernel", "1+1") == {"result": "2"}
    assert_no_changes(site.deploy("rerun after the rebuild"))
