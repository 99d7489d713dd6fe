"""configurable-http-proxy: the public HTTPS entry point of a hub, run as its own service."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from .base import Model, Port, Version


class ProxySpec(Model):
    """The proxy runs apart from the hub so that hub restarts do not drop user connections."""

    version: Version | None = Field(
        None,
        description="configurable-http-proxy release; default: the pin for the host's distro.",
    )
    node: Literal["auto", "system", "wheel"] = Field(
        "auto",
        description="Where the Node.js that runs the proxy comes from: `system` (the distro's "
        "nodejs), `wheel` (Node 16 from PyPI's nodejs-bin wheel, which runs on glibc 2.17+, in "
        "its own venv), or `auto`: the distro's when it is new enough (Node 10+), else `wheel`.",
    )
    ip: str = Field("", description="Address to listen on; empty: all addresses (IPv4 and IPv6).")
    port: Port = Field(443, description="Public HTTPS port.")
    api_port: Port = Field(8001, description="Proxy REST API, on loopback only.")

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value == "":
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address (or '' for all)") from None
