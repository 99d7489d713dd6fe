"""Render templates/<component>/<destination>.j2: one jinja environment for every component.

Strict (an undefined name is an error, as in pyinfra's files.template) and with filters for
the destinations our templates write: `py` (a Python literal; a SecretRef becomes a lookup
in the hub's 0600 secrets file) and `tojson`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from pyinfra_jupyter.spec.hub import SecretRef

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _py(value) -> str:
    if isinstance(value, SecretRef):
        return f"_secrets[{value.name!r}]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    return repr(value)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = _py
    return env


def render(component: str, name: str, **values) -> str:
    """The text of templates/<component>/<name>.j2 rendered with `values`."""
    return _env().get_template(f"{component}/{name}.j2").render(**values)
