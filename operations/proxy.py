"""Placeholder: the proxy component is being written (see the issue)."""

from pyinfra.api import deploy


@deploy("proxy (not implemented yet)")
def deploy_proxy(spec, platform) -> None:
    return None
