"""The backup and restore commands' shell: sqlite's online backup API, 0700, keep N, only
state restored (configs stay the spec's), stamps validated. The lab's hub test runs them."""

from __future__ import annotations

import pytest

from pyinfra_jupyter.backup import backup_command, restore_command
from pyinfra_jupyter.spec import SpecError, build_spec

HUB = build_spec({"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy"}}})


def test_backup_copies_the_live_database_with_sqlites_backup_api():
    command = backup_command(HUB, 3)
    assert "umask 077" in command and "chmod 700 /var/backups/pyinfra-jupyter" in command
    assert "s.backup(t)" in command and "?mode=ro" in command
    assert "cp /var/lib/jupyterhub/jupyterhub.sqlite" not in command
    assert "echo var/lib/jupyterhub/jupyterhub_cookie_secret" in command
    assert "| sort | head -n -3 | xargs -r rm -rf --" in command


def test_restore_puts_back_state_not_configs_and_refuses_a_bad_stamp():
    command = restore_command(HUB, "20261126T031500Z")
    assert "etc/pyinfra-jupyter/proxy-auth.env" in command
    assert "var/lib/jupyterhub/jupyterhub_cookie_secret" in command
    members = command.split("for x in ", 1)[1].split("; do", 1)[0].split()
    assert "etc/jupyterhub" not in members and "etc/jupyter" not in members
    assert command.index("systemctl stop jupyterhub.service") < command.index("s.backup(t)")
    assert "ss -Hltn 'sport = :8081'" in command  # returns once the hub answers again
    for bad in ("yesterday", "../../etc", "20261126T031500Z; rm -rf /"):
        with pytest.raises(ValueError, match="is not a backup stamp"):
            restore_command(HUB, bad)


def test_keep_is_validated_in_the_spec():
    assert HUB.backup.keep == 5
    with pytest.raises(SpecError, match="backup.keep"):
        build_spec({"backup": {"keep": 0}})


@pytest.mark.parametrize("mode", ["hub", "notebook"])
def test_both_scripts_are_valid_shell(mode):
    import subprocess

    spec = HUB if mode == "hub" else build_spec({"mode": "notebook", "notebook": {"instances": [
        {"name": "a", "user": "alice", "port": 8100, "password": "a-Pw-0123"}]}})
    for script in (backup_command(spec, 5), restore_command(spec, "20261126T031500Z")):
        checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
