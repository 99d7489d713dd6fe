"""The operation order without source reads (operations/ops/callstack.py): the same list as
pyinfra's get_operation_order_from_stack, from the same stack."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pyinfra
import pytest
from pyinfra.api import arguments, util

from operations.ops import callstack

DEPLOY = "deploy_under_test.py"

# A deploy file as pyinfra's CLI runs it (compiled under its file name, exec'd, not a module),
# calling down through a multi-line call and a nested function.
SOURCE = '''
def component(probe):
    def step():
        return probe()
    return step()


result = component(
    probe,
)
'''


def both(state):
    """Each function's answer, called from the same line (the same stack)."""
    return [f(state) for f in (util.get_operation_order_from_stack, callstack.operation_order)]


@pytest.fixture
def cli_mode(monkeypatch):
    monkeypatch.setattr(pyinfra, "is_cli", True)


@pytest.mark.parametrize("deploy_filename", [DEPLOY, "elsewhere.py", None])
def test_same_order_as_pyinfra(cli_mode, deploy_filename):
    state = SimpleNamespace(current_deploy_filename=deploy_filename, current_op_file_number=3)
    namespace = {"probe": lambda: both(state)}
    exec(compile(SOURCE, DEPLOY, "exec"), namespace)
    original, fast = namespace["result"]
    assert fast == original
    if deploy_filename == DEPLOY:
        # The op file number, then deploy.py's call, component's, step's, and this file's.
        assert fast[:4] == [3, 8, 5, 4]


def test_same_global_arguments_as_pyinfra():
    assert callstack.global_arguments() == callstack._ORIGINAL_ARGUMENTS()
    first = callstack.global_arguments()
    first.clear()  # a caller's list is its own
    assert callstack.global_arguments() == callstack._ORIGINAL_ARGUMENTS()


def test_installed_over_the_pyinfra_functions_it_reproduces(monkeypatch):
    module = importlib.import_module("pyinfra.api.operation")
    monkeypatch.setattr(module, "get_operation_order_from_stack",
                        util.get_operation_order_from_stack)
    monkeypatch.setattr(arguments, "all_global_arguments", callstack._ORIGINAL_ARGUMENTS)
    # A pyinfra upgrade that changes either function fails here: compare the new source with
    # operation_order or global_arguments, then update REPLACES or REPLACES_ARGUMENTS.
    assert callstack.install()
    assert module.get_operation_order_from_stack is callstack.operation_order
    assert arguments.all_global_arguments is callstack.global_arguments
    assert callstack.install()  # once per host: idempotent


def test_not_installed_over_another_function(monkeypatch):
    module = importlib.import_module("pyinfra.api.operation")

    def theirs(state):
        return []

    monkeypatch.setattr(module, "get_operation_order_from_stack", theirs)
    monkeypatch.setattr(arguments, "all_global_arguments", callstack._ORIGINAL_ARGUMENTS)
    assert not callstack.install()
    assert module.get_operation_order_from_stack is theirs
    monkeypatch.setattr(module, "get_operation_order_from_stack",
                        util.get_operation_order_from_stack)
    monkeypatch.setattr(callstack, "REPLACES", "0" * 64)
    assert not callstack.install()
    assert module.get_operation_order_from_stack is util.get_operation_order_from_stack
