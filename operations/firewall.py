"""Placeholder: the firewall component is being written (see the issue)."""

from pyinfra.api import deploy


@deploy("firewall (not implemented yet)")
def deploy_firewall(spec, platform) -> None:
    return None
