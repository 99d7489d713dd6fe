"""Firewall rules: what is public, what stays on loopback, and the SSH port that is never cut."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import KERNEL_PORTS, Cidr, Comment, Model, Port

WORLD = ("0.0.0.0/0", "::/0")


class AllowRule(Model):
    """An extra port (or range) to open, optionally only to some networks."""

    port: Port
    to_port: Port | None = Field(None, description="Last port of a range; default: just `port`.")
    proto: Literal["tcp", "udp"] = "tcp"
    sources: list[Cidr] = Field(default_factory=lambda: list(WORLD))
    comment: Comment = ""

    @model_validator(mode="after")
    def _range(self) -> AllowRule:
        last = self.to_port or self.port
        if last < self.port:
            raise ValueError(f"to_port {last} is below port {self.port}")
        loopback_only = all(s in ("127.0.0.0/8", "::1/128") for s in self.sources)
        if not loopback_only and self.port <= KERNEL_PORTS.stop - 1 and last >= KERNEL_PORTS.start:
            raise ValueError(
                f"ports {self.port}-{last} overlap the kernel range 49152-65535, which must stay "
                "reachable from loopback only (kernels talk to the server there, unauthenticated)"
            )
        return self

    @property
    def ports(self) -> range:
        return range(self.port, (self.to_port or self.port) + 1)


class FirewallSpec(Model):
    """Default deny inbound; the mode's public ports, SSH and `allow` open; kernels loopback-only."""

    backend: Literal["auto", "nftables", "ufw", "firewalld", "iptables", "none"] = Field(
        "auto",
        description="auto: firewalld on CentOS/RHEL, ufw on Ubuntu, nftables on Debian and "
        "Raspberry Pi OS. none: managed elsewhere (e.g. a cloud security group).",
    )
    ssh_ports: list[Port] = Field(
        default_factory=lambda: [22],
        description="SSH ports always allowed, besides the one the deploy is connected on.",
    )
    ssh_sources: list[Cidr] = Field(
        default_factory=lambda: list(WORLD),
        description="Networks SSH is allowed from (default: everywhere). A deploy connected "
        "from outside these is refused before any rule is applied.",
    )
    allow: list[AllowRule] = Field(default_factory=list)
    rollback_seconds: int = Field(
        60, ge=10, le=3600,
        description="Rules revert after this long unless the deploy can still reach the host.",
    )
