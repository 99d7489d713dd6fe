"""The Python that runs the services, with venv support and users' OS packages."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Command
from pyinfra.operations import apt, yum

from .platforms import Platform
from .spec.python import PythonSpec

PYTHON = "/usr/bin/python3"


def os_packages(spec: PythonSpec, platform: Platform) -> list[str]:
    if platform.family == "rhel":
        return ["python3", *spec.os_packages]
    return ["python3", "python3-venv", "python3-dev", "build-essential", *spec.os_packages]


@deploy("Install Python")
def deploy_python(spec: PythonSpec, platform: Platform) -> None:
    _check_version(spec, platform)  # before anything is installed
    if platform.family == "rhel":
        yum.packages(name="Install Python 3 and OS packages", packages=os_packages(spec, platform))
    else:
        apt.packages(
            name="Install Python 3, venv and OS packages",
            packages=os_packages(spec, platform),
            update=True,
            cache_time=3600,
        )


def _check_version(spec: PythonSpec, platform: Platform) -> None:
    # The host's python3 if it has one, else the one its distro release installs.
    found = host.get_fact(
        Command, f"{PYTHON} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' "
        "2>/dev/null || true"
    ) or platform.system_python
    if not found:
        return
    have = tuple(int(x) for x in found.split("."))
    need = tuple(int(x) for x in spec.min_version.split("."))
    if have < need:
        raise DeployError(
            f"{platform.label} has Python {found}, but JupyterHub and JupyterLab need "
            f"{spec.min_version}+ (python.min_version); this distro's Python is too old and "
            "building a newer one is not supported yet"
        )
