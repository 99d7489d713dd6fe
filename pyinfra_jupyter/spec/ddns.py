"""Dynamic DNS: keep a name pointing at a home host whose address changes.

Each provider variant knows the names it keeps updated, whether its API can also set the
TXT records ACME DNS-01 needs (and for which names), its secret, and the settings the
host agent needs — so the TLS and DDNS components handle any provider generically.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from .base import ApiUrl, Domain, HttpsUrl, IpAddress, Model, Token, https_url


class Ddns(Model):
    """What every DDNS provider variant tells the components."""

    provider: str
    # Whether the provider's API can set TXT records (ACME DNS-01), and its usual delay.
    dns01: ClassVar[bool] = False
    enabled: ClassVar[bool] = True

    def names(self) -> list[str]:
        """The DNS names the updater keeps pointing at this host."""
        return []

    def dns01_covers(self, domain: str) -> bool:
        """True when DNS-01 for `domain` can go through this provider's API."""
        return False

    def secret(self) -> SecretStr | None:
        """The API secret (token, password), kept on the host in a 0600 file."""
        return None

    def agent_settings(self) -> dict[str, Any]:
        """Provider settings for the host agent (no secrets)."""
        return {}


class NoDdns(Ddns):
    provider: Literal["none"] = "none"

    enabled: ClassVar[bool] = False


class _Updater(Ddns):
    interval_minutes: int = Field(5, ge=1, le=1440)
    ipv6: bool = Field(False, description="Also update the AAAA record.")
    api_url: ApiUrl | None = Field(
        None, description="The provider's API base URL; default: the provider's own."
    )
    ip_echo_url: HttpsUrl | None = Field(
        None,
        description="A 'what is my IP' URL answering the caller's address as text; default: "
        "the provider's own echo where it has one.",
    )
    address: IpAddress | None = Field(
        None, description="A fixed public address to publish instead of discovering it."
    )

    def _common(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"provider": self.provider, "names": self.names(),
                                    "ipv6": self.ipv6}
        if self.api_url:
            settings["endpoint"] = self.api_url.rstrip("/")
        if self.ip_echo_url:
            settings["ip_echo_url"] = self.ip_echo_url
        if self.address:
            settings["address"] = self.address
        return settings


class DuckDns(_Updater):
    provider: Literal["duckdns"]
    domain: Domain = Field(description="Your name under duckdns.org, e.g. myhub.duckdns.org.")
    token: SecretStr

    dns01: ClassVar[bool] = True

    @field_validator("domain")
    @classmethod
    def _under_duckdns(cls, value: str) -> str:
        if not value.endswith(".duckdns.org") or value.count(".") != 2:
            raise ValueError(f"{value!r} is not NAME.duckdns.org")
        return value

    def names(self) -> list[str]:
        return [self.domain]

    def dns01_covers(self, domain: str) -> bool:
        return domain in (self.domain, f"*.{self.domain}")

    def secret(self) -> SecretStr:
        return self.token

    def agent_settings(self) -> dict[str, Any]:
        return {**self._common(), "subdomain": self.domain.removesuffix(".duckdns.org")}


class _Zone(_Updater):
    zone: Domain

    dns01: ClassVar[bool] = True

    def dns01_covers(self, domain: str) -> bool:
        name = domain.removeprefix("*.")
        return name == self.zone or name.endswith("." + self.zone)

    def agent_settings(self) -> dict[str, Any]:
        return {**self._common(), "zone": self.zone}


class Dynv6(_Zone):
    provider: Literal["dynv6"]
    token: SecretStr

    def names(self) -> list[str]:
        return [self.zone]

    def secret(self) -> SecretStr:
        return self.token


class Cloudflare(_Zone):
    provider: Literal["cloudflare"]
    record: Domain
    api_token: SecretStr
    proxied: bool = False

    def names(self) -> list[str]:
        return [self.record]

    def secret(self) -> SecretStr:
        return self.api_token

    def agent_settings(self) -> dict[str, Any]:
        return {**super().agent_settings(), "record": self.record, "proxied": self.proxied}


class DynDns2(_Updater):
    """The dyndns2 protocol most routers and many providers speak (No-IP, Dyn, ...)."""

    provider: Literal["dyndns2"]
    server: Domain
    hostname: Domain
    username: Token
    password: SecretStr

    def names(self) -> list[str]:
        return [self.hostname]

    def secret(self) -> SecretStr:
        return self.password

    def agent_settings(self) -> dict[str, Any]:
        settings = {**self._common(), "username": self.username}
        settings.setdefault("endpoint", f"https://{self.server}")
        return settings


class CustomUrl(_Updater):
    """Any provider with an update URL: {hostname}, {ip}, {ipv6} and {token} are filled in
    (URL-encoded) on the host; the token stays in a 0600 file."""

    provider: Literal["custom"]
    hostname: Domain
    url_template: str = Field(
        description="e.g. https://dyn.example/update?host={hostname}&ip={ip}&key={token}"
    )
    token: SecretStr | None = None

    @field_validator("url_template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        import string

        names = {f[1] for f in string.Formatter().parse(value) if f[1] is not None}
        unknown = names - {"hostname", "ip", "ipv6", "token"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
                             "use {hostname}, {ip}, {ipv6}, {token}")
        if "ip" not in names and "ipv6" not in names:
            raise ValueError("needs an {ip} (or {ipv6}) placeholder")
        https_url(value.format(hostname="h", ip="1", ipv6="1", token="t"), "URL template")
        return value

    def names(self) -> list[str]:
        return [self.hostname]

    def secret(self) -> SecretStr | None:
        return self.token

    def agent_settings(self) -> dict[str, Any]:
        return {**self._common(), "url_template": self.url_template}


DdnsSpec = Annotated[
    NoDdns | DuckDns | Dynv6 | Cloudflare | DynDns2 | CustomUrl, Field(discriminator="provider")
]
