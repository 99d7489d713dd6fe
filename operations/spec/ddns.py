"""Dynamic DNS: keep a name pointing at a home host whose address changes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from .base import Domain, Model


class _DdnsCommon(Model):
    interval_minutes: int = Field(5, ge=1, le=1440)
    ipv6: bool = Field(False, description="Also update the AAAA record.")
    api_url: AnyHttpUrl | None = Field(
        None, description="The provider's API base URL; default: the provider's own."
    )


class NoDdns(Model):
    provider: Literal["none"] = "none"


class DuckDns(_DdnsCommon):
    provider: Literal["duckdns"]
    domain: Domain = Field(description="Your name under duckdns.org, e.g. myhub.duckdns.org.")
    token: SecretStr


class Dynv6(_DdnsCommon):
    provider: Literal["dynv6"]
    zone: Domain
    token: SecretStr


class Cloudflare(_DdnsCommon):
    provider: Literal["cloudflare"]
    zone: Domain
    record: Domain
    api_token: SecretStr
    proxied: bool = False


class DynDns2(_DdnsCommon):
    """The dyndns2 protocol most routers and many providers speak (No-IP, Dyn, ...)."""

    provider: Literal["dyndns2"]
    server: Domain
    hostname: Domain
    username: str = Field(min_length=1)
    password: SecretStr


DdnsSpec = Annotated[
    NoDdns | DuckDns | Dynv6 | Cloudflare | DynDns2, Field(discriminator="provider")
]

# Providers whose API can also set the TXT records ACME DNS-01 needs.
DNS01_PROVIDERS = ("duckdns", "dynv6", "cloudflare")


def ddns_names(ddns: NoDdns | DuckDns | Dynv6 | Cloudflare | DynDns2) -> list[str]:
    """The DNS names a DDNS provider keeps up to date."""
    if isinstance(ddns, DuckDns):
        return [ddns.domain]
    if isinstance(ddns, Dynv6):
        return [ddns.zone]
    if isinstance(ddns, Cloudflare):
        return [ddns.record]
    if isinstance(ddns, DynDns2):
        return [ddns.hostname]
    return []
