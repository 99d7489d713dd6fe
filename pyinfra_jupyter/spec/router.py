"""The home router in front of the host: facts for the port-forwarding notes."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Literal

from pydantic import Field

from .base import Model, Port


class PortForward(Model):
    external: Port
    internal: Port
    proto: Literal["tcp", "udp"] = "tcp"


class RouterSpec(Model):
    """Set when the host sits behind a NAT router (seed 001: forwarding 8100 -> 80)."""

    behind_nat: bool = False
    lan_address: IPv4Address | None = Field(None, description="The host's fixed LAN address.")
    forwards: list[PortForward] = Field(
        default_factory=list,
        description="Forwards to set up on the router; default: the public ports, same numbers.",
    )
