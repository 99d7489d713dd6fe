"""Placeholder: the TLS component is being written (see the issue)."""

from pyinfra.api import deploy


@deploy("tls (not implemented yet)")
def deploy_tls(spec, platform) -> None:
    return None
