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
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys

import pyinfra
from pyinfra.api import util as _util

# The module (pyinfra.api's `operation` is the decorator of the same name).
_operation = importlib.import_module("pyinfra.api.operation")

# sha256 of the source of pyinfra.api.util.get_operation_order_from_stack (pyinfra 3.x)
# that `operation_order` reproduces.
REPLACES = "f4807f61585570e091fd453c7552d9e2b49329555f07f395a8e8f1d2a398a0b2"

_ORIGINAL = _util.get_operation_order_from_stack
_names: dict[str, str] = {}


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


def install() -> bool:
    """Use `operation_order` for this run when pyinfra's function is the one it reproduces;
    returns whether it is in use."""
    if _operation.get_operation_order_from_stack is operation_order:
        return True
    if _operation.get_operation_order_from_stack is not _ORIGINAL:
        return False  # someone else replaced it: leave theirs
    if _source_hash(_ORIGINAL) != REPLACES:
        return False
    _operation.get_operation_order_from_stack = operation_order
    return True
