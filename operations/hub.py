"""Placeholder: the hub component is being written (see the issue)."""

from pyinfra.api import deploy


@deploy("hub (not implemented yet)")
def deploy_hub(spec, platform) -> None:
    return None
