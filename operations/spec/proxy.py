"""configurable-http-proxy: the public HTTPS entry point of a hub, run as its own service."""

from __future__ import annotations

from pydantic import Field

from .base import Model, Port


class ProxySpec(Model):
    """The proxy runs apart from the hub so that hub restarts do not drop user connections."""

    version: str | None = Field(
        None,
        pattern=r"^\d+\.\d+\.\d+$",
        description="configurable-http-proxy release; default: the pin for the host's distro.",
    )
    ip: str = Field("", description="Address to listen on; empty: all addresses (IPv4 and IPv6).")
    port: Port = Field(443, description="Public HTTPS port.")
    api_port: Port = Field(8001, description="Proxy REST API, on loopback only.")
