"""TLS for the public port: an ACME certificate, a self-signed one, or one the user provides."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import AbsPath, Domain, Email, Model, Port

ACME_DIRECTORIES = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


class _TlsCommon(Model):
    http_port: Port | None = Field(
        80,
        description="Plain-HTTP port that redirects to HTTPS (and serves ACME HTTP-01); "
        "null: none.",
    )
    min_version: Literal["1.2", "1.3"] = "1.2"


class AcmeTls(_TlsCommon):
    """A certificate from an ACME CA, issued and renewed on the host."""

    type: Literal["acme"]
    email: Email
    domains: list[Domain] = Field(min_length=1)
    directory: str = Field(
        "letsencrypt",
        description="'letsencrypt', 'letsencrypt-staging', or the https:// URL of any ACME directory.",
    )
    directory_ca: str | None = Field(
        None, description="PEM of the CA that signs the ACME server's own HTTPS (private CAs)."
    )
    challenge: Literal["http-01", "dns-01"] = Field(
        "http-01",
        description="dns-01 goes through the DDNS provider's API: for hosts whose port 80 is blocked.",
    )
    preflight: bool = Field(
        True,
        description="Before asking the CA, check from the host that each domain resolves (and "
        "not to loopback); turn off when the CA uses DNS the host cannot see (a private CA).",
    )
    dns_propagation_seconds: int | None = Field(
        None, ge=0, le=3600,
        description="dns-01: wait this long after the provider took the TXT record; "
        "default: the provider's usual delay (DuckDNS 60 s, dynv6 30 s, Cloudflare 15 s).",
    )

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if value in ACME_DIRECTORIES or value.startswith("https://"):
            return value
        raise ValueError(
            f"{value!r} is neither {' nor '.join(map(repr, ACME_DIRECTORIES))} nor an https:// URL"
        )

    @property
    def directory_url(self) -> str:
        return ACME_DIRECTORIES.get(self.directory, self.directory)


class SelfSignedTls(_TlsCommon):
    """A self-signed certificate for the host's names and addresses (browsers will warn)."""

    type: Literal["self-signed"]
    names: list[str] = Field(
        default_factory=list,
        description="Extra DNS names or IP addresses; the host's own name and addresses are added.",
    )
    days: int = Field(365, ge=7, le=825)


class ProvidedTls(_TlsCommon):
    """A certificate and key you bring: as paths on the host or as PEM contents."""

    type: Literal["provided"]
    cert_file: AbsPath | None = Field(None, description="Full chain PEM, already on the host.")
    key_file: AbsPath | None = Field(None, description="Private key PEM, already on the host.")
    cert_pem: str | None = Field(None, description="Full chain PEM contents.")
    key_pem: SecretStr | None = Field(None, description="Private key PEM contents.")

    @model_validator(mode="after")
    def _one_source_each(self) -> ProvidedTls:
        for what, path, pem in (
            ("cert", self.cert_file, self.cert_pem),
            ("key", self.key_file, self.key_pem),
        ):
            if (path is None) == (pem is None):
                raise ValueError(f"give exactly one of {what}_file and {what}_pem")
        if self.cert_pem is not None and "-----BEGIN CERTIFICATE-----" not in self.cert_pem:
            raise ValueError("cert_pem is not a PEM certificate")
        if self.key_pem is not None and "PRIVATE KEY-----" not in self.key_pem.get_secret_value():
            raise ValueError("key_pem is not a PEM private key")
        return self


TlsSpec = Annotated[AcmeTls | SelfSignedTls | ProvidedTls, Field(discriminator="type")]
