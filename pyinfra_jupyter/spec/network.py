"""How the host reaches package registries: an HTTP(S) proxy and extra CA certificates."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator

from .base import Model, multiline, pem_certificates


def _no_proxy_entry(value: str) -> str:
    """A host, a domain (optionally with a leading dot), an IP address or network, or '*'."""
    if value == "*":
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False)) if "/" in value else str(
            ipaddress.ip_address(value))
    except ValueError:
        pass
    if not re.fullmatch(r"\.?([A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}", value):
        raise ValueError(f"{value!r} is not a host, domain, IP address or network")
    return value


def _proxy_url(value: SecretStr) -> SecretStr:
    """http(s)://[user:password@]host[:port][/]; the value may hold a password, so errors
    never repeat it."""
    text = value.get_secret_value()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ValueError("is not a proxy URL like http://proxy.example:3128") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not a proxy URL like http://proxy.example:3128")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL has no path, query or fragment")
    if not re.fullmatch(r"[A-Za-z0-9._~:/@%!$&()*+,;=-]+", text):
        raise ValueError("holds characters a URL cannot (write them %-encoded)")
    return SecretStr(text.rstrip("/"))


ProxyUrl = Annotated[SecretStr, AfterValidator(_proxy_url)]
NoProxy = Annotated[str, AfterValidator(_no_proxy_entry)]


class NetworkSpec(Model):
    """Corporate proxies and TLS-inspecting middleboxes: configure apt/yum, pip and npm for them.

    Proxy URLs may carry credentials: they are secrets, kept on the host in 0600 files and
    never put on a command line.
    """

    http_proxy: ProxyUrl | None = Field(None, description="Proxy for plain HTTP (apt, yum).")
    https_proxy: ProxyUrl | None = Field(None, description="Proxy for HTTPS (pip, npm).")
    no_proxy: list[NoProxy] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        description="Hosts and domains reached directly.",
    )
    timeout: int = Field(
        1800, ge=30, le=86_400,
        description="Seconds one download or install step (apt, yum, pip, npm, ACME) may take "
        "before its host fails with the step named: a stalled mirror or proxy never hangs "
        "the run (the other hosts go on).",
    )
    ca_certificates: list[str] = multiline(
        default_factory=list,
        description="PEM certificates to trust system-wide and in pip/node (TLS-inspecting proxies).",
    )

    @field_validator("ca_certificates")
    @classmethod
    def _pem(cls, certs: list[str]) -> list[str]:
        for i, pem in enumerate(certs):
            pem_certificates(pem, f"item {i}")
        return certs

    @property
    def has_proxy(self) -> bool:
        return bool(self.http_proxy or self.https_proxy)

    @property
    def proxy_has_credentials(self) -> bool:
        from urllib.parse import urlsplit

        return any(urlsplit(url.get_secret_value()).username is not None
                   for url in (self.http_proxy, self.https_proxy) if url is not None)

    def proxy_env(self) -> dict[str, str]:
        """Environment variables for commands that download (pip, npm, curl). Holds the
        proxies' credentials: write it only into 0600 files."""
        env: dict[str, str] = {}
        if self.http_proxy:
            env["http_proxy"] = env["HTTP_PROXY"] = self.http_proxy.get_secret_value()
        if self.https_proxy:
            env["https_proxy"] = env["HTTPS_PROXY"] = self.https_proxy.get_secret_value()
        if env:
            env["no_proxy"] = env["NO_PROXY"] = ",".join(self.no_proxy)
        return env
