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
    """Set when the host sits behind a NAT router (e.g. the router forwards 80 to 8100)."""

    behind_nat: bool = False
    lan_address: IPv4Address | None = Field(None, description="The host's fixed LAN address.")
    forwards: list[PortForward] = Field(
        default_factory=list,
        description="Forwards to set up on the router; default: HTTPS to the public port, and "
        "80 when ACME HTTP-01 needs it.",
    )
    wan_address: IPv4Address | None = Field(
        None,
        description="The router's WAN (internet) address as its admin page shows it: when "
        "the address the world sees differs, the line is behind carrier-grade NAT.",
    )
    forward_ssh: bool = Field(False, description="Also forward SSH (off: log in from home only).")
