"""The Python environment the services and users' kernels run on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Model, OsPackage, Package


class PythonSpec(Model):
    """Which Python runs Jupyter, and what users' kernels get installed system-wide."""

    provider: Literal["auto", "system", "source"] = Field(
        "auto",
        description="Where the services' Python comes from: `system` (the distro's python3), "
        "`source` (CPython built on the host from the pinned release tarball, which the "
        "controller downloads and checks, into /opt/pyinfra-jupyter/python/VERSION), or "
        "`auto`: the distro's python3 when it is at least min_version, else `source`.",
    )
    optimize: bool | None = Field(
        None,
        description="Build CPython with --enable-optimizations (PGO: a faster Python, a build "
        "about three times longer). Default: only on hosts with 4 GiB of memory or more.",
    )
    swap_mb: int = Field(
        1024, ge=0, le=16384,
        description="On a host with less than 1 GiB of memory, a swap file of this size is on "
        "while pip, npm and the CPython build run, and removed afterwards (0: never).",
    )
    keep_swap: bool = Field(
        False, description="Leave that swap file on after the install steps (until reboot).",
    )
    wheels: Literal["auto", "controller", "index"] = Field(
        "auto",
        description="Where hosts get the Python packages of the service venvs: `controller` "
        "(the controller downloads the wheels for the host's platform once per run and "
        "cache, checks and uploads them; the host installs with --no-index and needs no "
        "package index: hosts behind strict firewalls), `index` (each host from its package "
        "index, through network.proxy), or `auto`: `controller` when the run deploys more "
        "than one host (falling back to `index` where the controller cannot get a wheel), "
        "else `index`.",
    )
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
