"""The Python that runs the services (and users' kernels), and the OS packages users need.

Today: the distro's own python3 when it meets the stack's minimum; an older one is refused
before anything is installed.
"""

from __future__ import annotations

from pyinfra.api.exceptions import DeployError

from ..items import Item, Packages
from ..site import Site

NAME = "python"
TITLE = "Install Python"
PYTHON = "/usr/bin/python3"


def wanted(spec) -> bool:
    return True


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def python_version(site: Site) -> str:
    """The major.minor of the python3 the services' venvs are made with."""
    return site.facts.get("python3") or site.platform.system_python


def check_version(site: Site) -> None:
    found, need = python_version(site), site.spec.python.min_version
    if _tuple(found) < _tuple(need):
        raise DeployError(
            f"{site.platform.label} has Python {found}, but JupyterHub and JupyterLab need "
            f"{need}+ (python.min_version); this distro's Python is too old and building a "
            "newer one is not supported yet"
        )


def items(site: Site) -> list[Item]:
    check_version(site)  # before anything is installed
    family, spec = site.platform.family, site.spec.python
    build = family.build_packages if spec.build_tools else ()
    return [Packages((*family.python_packages, *build, *spec.os_packages),
                     "Python 3, venv and OS packages", timeout=site.spec.network.timeout)]
