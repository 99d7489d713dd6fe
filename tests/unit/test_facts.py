"""The batched facts against a real (local) host through pyinfra's own fact machinery."""

from pathlib import Path

from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all

from operations.ops.facts import take_snapshot


def _local_host():
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    return state.inventory.get_host("@local")


def test_a_site_that_names_nothing_gets_an_empty_snapshot_not_none():
    # Such a command prints nothing, and pyinfra then answers with the fact's default().
    host = _local_host()
    snap = take_snapshot(host, {"paths": [], "units": [], "users": [], "groups": [],
                                "manager": "", "packages": [], "venvs": [], "npm": []})
    assert snap["paths"] == {} and snap["packages"]["installed"] == []
    assert snap["_requested"]["paths"] == set()


def test_the_snapshot_reads_a_real_path():
    host = _local_host()
    snap = take_snapshot(host, {"paths": ["/etc/hostname"], "units": [], "users": ["root"],
                                "groups": [], "manager": "", "packages": [], "venvs": [],
                                "npm": []})
    assert snap["paths"]["/etc/hostname"]["type"] == "regular file"
    assert snap["users"]["root"]["home"] == "/root"


def test_the_deploy_lock_of_a_local_run_is_freed_when_the_run_ends(tmp_path):
    # The local connector has no sshd to watch: the lock follows the process that ran the
    # command, so a finished run never leaves the host locked for the next one.
    import subprocess
    import sys
    import time

    script = tmp_path / "locked_run.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from pyinfra.api import Config, Inventory, State\n"
        "from pyinfra.api.connect import connect_all\n"
        "from operations.ops.facts import host_facts\n"
        "state = State(Inventory(([\"@local\"], {})), Config()); connect_all(state)\n"
        "facts = host_facts(state.inventory.get_host('@local'))\n"
        "print('locked=' + facts.get('locked', '?'))\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert "locked=" in run.stdout, run.stderr[-2000:]
    deadline = time.monotonic() + 15  # the holder polls every 2 s
    while time.monotonic() < deadline:
        free = subprocess.run(["flock", "-n", "/run/pyinfra-jupyter.lock", "true"])
        if free.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the lock outlived the run that took it")
