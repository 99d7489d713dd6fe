"""Placeholder: the notebook component is being written (see the issue)."""

from pyinfra.api import deploy


@deploy("notebook (not implemented yet)")
def deploy_notebook(spec, platform) -> None:
    return None
