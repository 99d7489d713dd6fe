"""The hub's switch to new packages (operations/hub `upgrade_script`): a backup first,
upgrade-db only when JupyterHub's version changed, the rollback on every failure.
tests/lab/test_lifecycle.py runs it for real (`make test-lifecycle`)."""

from __future__ import annotations

import subprocess

from operations.hub import upgrade_script
from pyinfra_jupyter.spec import build_spec

SPEC = build_spec({"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}})


def test_upgrade_db_runs_only_when_jupyterhub_changed():
    script = upgrade_script(SPEC, "5.5.4", "6.1.1")
    # upgrade-db runs `alembic` from PATH: the venv's (the lab found this).
    assert "PATH=/opt/jupyterhub/bin:$PATH /opt/jupyterhub/bin/jupyterhub upgrade-db" in script
    assert "upgrade-db" not in upgrade_script(SPEC, "6.1.1", "6.1.1")


def test_the_backup_comes_first_and_every_later_step_rolls_back():
    script = upgrade_script(SPEC, "5.5.4", "6.1.1").splitlines()
    first_stop = next(n for n, line in enumerate(script)
                      if line.endswith("systemctl stop jupyterhub.service") and line[0] != " ")
    assert any("stamp=$(sh -c" in line for line in script[:first_stop])
    steps = script[first_stop + 1:]
    for line in steps:
        if line.startswith(("rm -rf -- /opt/jupyterhub.previous", "echo ")):
            continue
        assert "|| rollback" in line, line
    rollback = "\n".join(script[script.index("rollback() {"):script.index("}")])
    assert "mv -T -- /opt/jupyterhub.previous /opt/jupyterhub" in rollback
    assert "jupyterhub.sqlite" in rollback and "systemctl start jupyterhub.service" in rollback


def test_the_script_is_valid_sh():
    script = upgrade_script(SPEC, "5.5.4", "6.1.1")
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0


def test_the_config_check_names_the_config_before_its_flag():
    """check_config.py CONFIG [--no-construct] (the lab found the flag read as the config)."""
    from operations.hub import check_command

    native = build_spec({"mode": "hub", "users": {"allow_all": True},
                         "hub": {"auth": {"type": "native"}}})
    assert check_command(native).endswith(" {path} --no-construct")
    assert check_command(native, "/etc/jupyterhub/jupyterhub_config.py").endswith(
        "jupyterhub_config.py --no-construct")
    assert check_command(SPEC).endswith(" {path}")
