"""Dynamic DNS updater. Validated by the spec; the updater itself arrives with the DDNS issue."""

from __future__ import annotations

from pyinfra.api import deploy

from .platforms import Platform
from .spec.ddns import DdnsSpec


@deploy("Dynamic DNS")
def deploy_ddns(ddns: DdnsSpec, platform: Platform) -> None:
    # Nothing is installed yet: the notes tell the user a provider is set but not updated.
    return None
