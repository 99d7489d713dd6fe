"""The Python environment the services and users' kernels run on."""

from __future__ import annotations

from pydantic import Field

from .base import Model, OsPackage, Package


class PythonSpec(Model):
    """Which Python runs Jupyter, and what users' kernels get installed system-wide."""

    min_version: str = Field(
        "3.10",
        pattern=r"^3\.\d+$",
        description="Oldest Python accepted for the service venvs (JupyterHub 6 needs 3.10+).",
    )
    packages: list[Package] = Field(
        default_factory=list,
        description="Extra Python packages for users' kernels, e.g. numpy.",
    )
    build_tools: bool = Field(
        False,
        description="Also install a C compiler and Python headers, for packages with no wheel "
        "for the host (pip builds them).",
    )
    os_packages: list[OsPackage] = Field(
        default_factory=list,
        description="OS packages those need, e.g. libatlas-base-dev for numpy on a Raspberry Pi.",
    )
