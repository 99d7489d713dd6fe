"""The batched facts against a real (local) host through pyinfra's own fact machinery."""

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
