"""Shared contracts between components: paths, unit names, users and groups.

Components never import each other; what one makes and another uses is named once, in
pyinfra_jupyter/paths.py (the tools that reach a deployed host read the same names there).
"""

from pyinfra_jupyter.paths import *  # noqa: F403
