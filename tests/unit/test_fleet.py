"""The fleet summary (operations/ops/fleet.py): one line per host, what failed and where,
and the command that re-runs just the failed hosts."""

from __future__ import annotations

from types import SimpleNamespace

from operations.ops import fleet


def test_rerun_command_limits_to_the_failed_hosts_and_drops_earlier_limits():
    argv = ["/venv/bin/pyinfra", "-y", "inventory/lab.py", "deploy.py", "--limit", "pj-1",
            "--limit=pj-2"]
    assert fleet.rerun_command(argv, ["pj-3", "pj 4"]) == (
        "pyinfra -y inventory/lab.py deploy.py --limit=pj-3 '--limit=pj 4'")


class _Meta:
    def __init__(self, changed: bool):
        self.changed = changed
        self.stderr_lines = ["E: Failed to fetch", "STALLED: apt (the mirror or proxy)"]

    def did_change(self) -> bool:
        return self.changed


class _Host:
    def __init__(self, name: str):
        self.name = name


def _state(hosts: dict[str, list[bool]], failed: set[str]):
    objs = {name: _Host(name) for name in hosts}
    ops = {objs[name]: {f"op{i}": SimpleNamespace(operation_meta=_Meta(c))
                        for i, c in enumerate(changes)} for name, changes in hosts.items()}
    return SimpleNamespace(
        activated_hosts=[objs[n] for n in hosts], failed_hosts=[objs[n] for n in failed],
        inventory=SimpleNamespace(get_host=objs.get), ops=ops,
        op_meta={"op0": SimpleNamespace(names=["Install packages"],
                                        global_arguments={"_timeout": 600})})


def test_summary_says_per_host_what_happened_and_how_to_rerun_the_failed(monkeypatch):
    monkeypatch.setattr(fleet.sys, "argv", ["pyinfra", "-y", "inv.py", "deploy.py"])
    state = _state({"a": [False, False], "b": [True, False], "c": [False]}, failed={"c"})
    report = fleet.FleetReport(state)
    report.executed = True
    report.failed["c"] = [("op0", 12.0)]
    text = report.summary()
    lines = text.splitlines()
    assert lines[0] == "--> pyinfra-jupyter: 3 hosts: 1 converged, 1 changed, 1 failed"
    assert lines[2].split()[:2] == ["a", "converged"]
    assert lines[3].split()[:2] == ["b", "changed"] and "1 operations changed" in lines[3]
    assert lines[4].split()[:2] == ["c", "failed"]
    assert "Install packages: STALLED: apt (the mirror or proxy)" in lines[4]
    assert lines[-1].endswith("pyinfra -y inv.py deploy.py --limit=c")


def test_a_stalled_operation_is_named_by_its_timeout():
    state = _state({"a": [False], "b": [False]}, failed={"b"})
    report = fleet.FleetReport(state)
    report.failed["b"] = [("op0", 600.0)]
    assert "no answer within 600 s" in report.summary()


def test_one_host_gets_no_table():
    assert fleet.FleetReport(_state({"a": [True]}, failed=set())).summary() is None


def test_a_run_stopped_while_preparing_gets_no_table():
    report = fleet.FleetReport(_state({"a": [], "b": []}, failed=set()))
    assert report.summary() is None  # nothing ran: no "2 converged" for hosts never touched
