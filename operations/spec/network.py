"""How the host reaches package registries: an HTTP(S) proxy and extra CA certificates."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator

from .base import Model

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


class NetworkSpec(Model):
    """Corporate proxies and TLS-inspecting middleboxes: configure apt/yum, pip and npm for them."""

    http_proxy: AnyHttpUrl | None = Field(None, description="Proxy for plain HTTP (apt, yum).")
    https_proxy: AnyHttpUrl | None = Field(None, description="Proxy for HTTPS (pip, npm).")
    no_proxy: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        description="Hosts and domains reached directly.",
    )
    ca_certificates: list[str] = Field(
        default_factory=list,
        description="PEM certificates to trust system-wide and in pip/node (TLS-inspecting proxies).",
    )

    @field_validator("ca_certificates")
    @classmethod
    def _pem(cls, certs: list[str]) -> list[str]:
        from cryptography import x509

        for i, pem in enumerate(certs):
            if _PEM_BEGIN not in pem:
                raise ValueError(f"item {i} is not a PEM certificate (no '{_PEM_BEGIN}' line)")
            try:
                x509.load_pem_x509_certificates(pem.encode())
            except ValueError as exc:
                raise ValueError(f"item {i} is not a readable PEM certificate: {exc}") from None
        return certs

    @property
    def proxy_env(self) -> dict[str, str]:
        """Environment variables for commands that download (pip, npm, curl)."""
        env: dict[str, str] = {}
        if self.http_proxy:
            env["http_proxy"] = env["HTTP_PROXY"] = str(self.http_proxy).rstrip("/")
        if self.https_proxy:
            env["https_proxy"] = env["HTTPS_PROXY"] = str(self.https_proxy).rstrip("/")
        if env:
            env["no_proxy"] = env["NO_PROXY"] = ",".join(self.no_proxy)
        return env
