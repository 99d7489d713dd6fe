"""pyinfra's operation order from the call stack, without reading source files.

In CLI mode pyinfra orders and names every operation call by the line numbers of the call
stack below the deploy file (pyinfra.api.util.get_operation_order_from_stack). It gets
them with `inspect.stack()` and `inspect.getframeinfo(frame)`, which also read each frame's
source lines for context it never uses: `inspect.findsource` looks the frame's module up by
scanning all of `sys.modules` whenever the file is not a module (the deploy file, frozen
runpy), about 23 frames per operation. That was the largest part of the controller's CPU per
host on a no-op (~1,400 `getframeinfo` calls per host for the hub site).

`install()` swaps in the same computation without the context lines: the same frames (the
caller's stack, outermost first), the same file names (`getsourcefile(frame) or
getfile(frame)`, which depends only on the code's file name, so it is remembered per name)
and the same line numbers (`getframeinfo(frame, context=0)`: inspect's own rule for the
current instruction's line). The output is the same list, so operation order, hashes and
names are unchanged. It is only installed over the pyinfra function it was written against
(checked by its source); any other pyinfra version keeps its own.

The same goes for the list of pyinfra's global arguments (`_sudo`, `_timeout`, ...) with their
types, which pyinfra rebuilds with `typing.get_type_hints` for every operation on every host
(~0.5 ms each): `global_arguments` returns a fresh copy of the list made once.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys

import pyinfra
from pyinfra.api import arguments as _arguments
from pyinfra.api import util as _util

# The module (pyinfra.api's `operation` is the decorator of the same name).
_operation = importlib.import_module("pyinfra.api.operation")

# sha256 of the source of pyinfra.api.util.get_operation_order_from_stack (pyinfra 3.x)
# that `operation_order` reproduces.
REPLACES = "f4807f61585570e091fd453c7552d9e2b49329555f07f395a8e8f1d2a398a0b2"

_ORIGINAL = _util.get_operation_order_from_stack
_names: dict[str, str] = {}

# sha256 of the source of pyinfra.api.arguments.all_global_arguments that `global_arguments`
# reproduces, and that function.
REPLACES_ARGUMENTS = "f7afbc472d78c5d2f0bb282994175647651e888543da001968d903cc4a26a5a1"
_ORIGINAL_ARGUMENTS = _arguments.all_global_arguments
_global_arguments: list[tuple[str, type]] = []


def _filename(frame) -> str:
    """`inspect.getframeinfo(frame).filename`, remembered per code file name."""
    code_name = frame.f_code.co_filename
    name = _names.get(code_name)
    if name is None:
        name = _names[code_name] = inspect.getsourcefile(frame) or inspect.getfile(frame)
    return name


def operation_order(state, start=None) -> list[int]:
    """What pyinfra's get_operation_order_from_stack returns, called from the same place.

    `start`: the innermost frame to consider (default: the caller's). pyinfra's own function
    also sees its own frame, in pyinfra's directory, which it skips.
    """
    frames = []
    frame = start if start is not None else sys._getframe(1)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()

    # From the *first* occurrence of the deploy file in the stack, outermost first. Not
    # there: pyinfra's loop stops on the last frame, its own, which adds nothing; none here.
    first = 0
    if state.current_deploy_filename:
        first = next((n for n, frame in enumerate(frames)
                      if _filename(frame) == state.current_deploy_filename), len(frames))

    line_numbers = []
    if pyinfra.is_cli:
        line_numbers.append(state.current_op_file_number)
    for frame in frames[first:]:
        if _filename(frame).startswith(_util.PYINFRA_INSTALL_DIR):
            continue
        line_numbers.append(inspect.getframeinfo(frame, context=0).lineno)
    return line_numbers


def _source_hash(func) -> str:
    try:
        return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()
    except (OSError, TypeError):
        return ""


def global_arguments() -> list[tuple[str, type]]:
    """What pyinfra's all_global_arguments returns: the global arguments' names and types
    (the annotations of a class pyinfra defines once), as a new list each call."""
    if not _global_arguments:
        _global_arguments.extend(_ORIGINAL_ARGUMENTS())
    return list(_global_arguments)


def _replace(module, name: str, original, replacement, source_hash: str) -> bool:
    if getattr(module, name) is replacement:
        return True
    if getattr(module, name) is not original:
        return False  # someone else replaced it: leave theirs
    if _source_hash(original) != source_hash:
        return False
    setattr(module, name, replacement)
    return True


def install() -> bool:
    """Use `operation_order` and `global_arguments` for this run where pyinfra's functions
    are the ones they reproduce; returns whether both are in use."""
    order = _replace(_operation, "get_operation_order_from_stack", _ORIGINAL, operation_order,
                     REPLACES)
    arguments = _replace(_arguments, "all_global_arguments", _ORIGINAL_ARGUMENTS,
                         global_arguments, REPLACES_ARGUMENTS)
    return order and arguments
