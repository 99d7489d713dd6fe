"""TLS for the public port: an ACME certificate, a self-signed one, or one the user provides.

Each variant knows the names its certificate covers, the material the deploy uploads for
it (relative to the TLS directory), and its section of the host agent's config — so the TLS
component handles any variant generically.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Domain, Email, HostName, Model, Port, SystemPath, multiline, pem_certificates
from .ddns import Ddns

ACME_DIRECTORIES = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


class PodProxy(NamedTuple):
    """How the Zero to JupyterHub chart's proxy serves a TLS variant (pyinfra_jupyter/export)."""

    values: dict[str, Any]  # under `proxy`; SecretStr leaves are secrets
    row: tuple[str, str, str]  # the guide's row: site spec, z2jh values, how
    gaps: list[tuple[str, str]]  # (field, what to do instead)


class Tls(Model):
    http_port: Port | None = Field(
        80,
        description="Plain-HTTP port that redirects to HTTPS (and serves ACME HTTP-01); "
        "null: none.",
    )
    min_version: Literal["1.2", "1.3"] = "1.2"

    def needs_webroot(self) -> bool:
        """True when the host must serve /.well-known/acme-challenge/ (ACME HTTP-01)."""
        return False

    def cert_names(self, hostname: str, addresses: list[str]) -> list[str]:
        """The names the certificate must cover, in a stable order (empty: as provided)."""
        return []

    def uploads(self) -> dict[str, str | SecretStr]:
        """Files to keep in the TLS directory, by name (SecretStr: a 0600 secret)."""
        return {}

    def agent_settings(self, tls_dir: str, webroot: str = "",
                       dns: dict[str, Any] | None = None) -> dict[str, Any]:
        """This variant's part of the host agent's config: `webroot` is where HTTP-01 answers
        are served from, `dns` the DDNS provider's settings (for dns-01)."""
        return {}

    def site_problems(self, ddns: Ddns) -> list[str]:
        """Rules that involve other components (`field.path: message` lines)."""
        return []

    def public_names(self) -> list[str]:
        """The DNS names the spec states the site is reached by (empty: none stated)."""
        return []

    @property
    def dns01(self) -> bool:
        """True when the certificate is proved through the DDNS provider's API (dns-01)."""
        return False

    # -- Zero to JupyterHub (pyinfra_jupyter/export/z2jh.py) --------------------------------

    # True when the chart's proxy gets the certificate itself (it needs plain HTTP on port 80
    # and the names resolving to it).
    pod_issues_certificate: ClassVar[bool] = False

    def pod_proxy(self) -> PodProxy:
        """The chart's `proxy` values for this variant, the guide's row and what it cannot do."""
        kind = getattr(self, "type", type(self).__name__)
        return PodProxy({}, (f"`tls.type = {kind!r}`", "(nothing)", ""),
                        [("tls", f"no mapping for TLS type {kind!r}: set proxy.https yourself")])


class AcmeTls(Tls):
    """A certificate from an ACME CA, issued and renewed on the host."""

    type: Literal["acme"]
    email: Email
    domains: list[Domain] = Field(min_length=1)
    directory: str = Field(
        "letsencrypt",
        description="'letsencrypt', 'letsencrypt-staging', or the https:// URL of any ACME directory.",
    )
    directory_ca: str | None = multiline(
        default=None,
        description="PEM of the CA that signs the ACME server's own HTTPS (private CAs).",
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
        if value in ACME_DIRECTORIES:
            return value
        from .base import https_url

        try:
            return https_url(value, "ACME directory URL")
        except ValueError:
            raise ValueError(
                f"{value!r} is neither {' nor '.join(map(repr, ACME_DIRECTORIES))} nor an "
                "https:// URL"
            ) from None

    @field_validator("directory_ca")
    @classmethod
    def _directory_ca(cls, value: str | None) -> str | None:
        return None if value is None else pem_certificates(value, "directory_ca")

    @property
    def directory_url(self) -> str:
        return ACME_DIRECTORIES.get(self.directory, self.directory)

    def needs_webroot(self) -> bool:
        return self.challenge == "http-01"

    def cert_names(self, hostname: str, addresses: list[str]) -> list[str]:
        return list(self.domains)

    def public_names(self) -> list[str]:
        return list(self.domains)

    @property
    def dns01(self) -> bool:
        return self.challenge == "dns-01"

    pod_issues_certificate: ClassVar[bool] = True

    def pod_proxy(self) -> PodProxy:
        https = {"enabled": True, "type": "letsencrypt", "hosts": list(self.domains),
                 "letsencrypt": {"contactEmail": self.email, "acmeServer": self.directory_url}}
        row = ("`tls.type = 'acme'`, `tls.email`, `tls.domains`, `tls.directory`, "
               "`tls.directory_ca`, `tls.challenge`, `tls.preflight`, "
               "`tls.dns_propagation_seconds`",
               "`proxy.https.type: letsencrypt`, `contactEmail`, `acmeServer`, `hosts`",
               "the chart's autohttps pod (Traefik) gets and renews the certificate over "
               "HTTP-01 (it checks no DNS beforehand: no preflight to set)")
        gaps = []
        if self.dns01:
            gaps.append(("tls.challenge", "the chart proves names over HTTP-01, not dns-01: the "
                         "load balancer must answer on port 80 for "
                         f"{', '.join(self.domains)} (or terminate TLS elsewhere: "
                         "proxy.https.type offload or secret)"))
        if self.dns_propagation_seconds is not None:
            gaps.append(("tls.dns_propagation_seconds", "a dns-01 setting: the chart's "
                         "HTTP-01 needs none"))
        if self.directory_ca:
            gaps.append(("tls.directory_ca", "Traefik must trust your ACME server's CA: mount "
                         "it (proxy.traefik.extraVolumes) and point LEGO_CA_CERTIFICATES at it "
                         "(proxy.traefik.extraEnv)"))
        return PodProxy({"https": https}, row, gaps)

    def site_problems(self, ddns: Ddns) -> list[str]:
        if self.challenge == "http-01":
            if self.http_port != 80:
                return ["tls.http_port: ACME HTTP-01 validates on port 80; set http_port = 80 "
                        "(forward 80 on your router) or use challenge = 'dns-01'"]
            return []
        if not ddns.dns01:
            return ["tls.challenge: dns-01 sets TXT records through the DDNS provider's API; "
                    f"ddns.provider {ddns.provider!r} cannot (use duckdns, dynv6 or cloudflare)"]
        stray = [d for d in self.domains if not ddns.dns01_covers(d)]
        if stray:
            return [f"tls.domains: {', '.join(stray)} not managed by the ddns provider "
                    f"({ddns.provider}), so dns-01 cannot prove them"]
        return []

    def uploads(self) -> dict[str, str | SecretStr]:
        return {"acme-directory-ca.pem": self.directory_ca} if self.directory_ca else {}

    def agent_settings(self, tls_dir: str, webroot: str = "",
                       dns: dict[str, Any] | None = None) -> dict[str, Any]:
        acme: dict[str, Any] = {
            "directory": self.directory_url,
            "email": self.email,
            "challenge": self.challenge,
            "preflight": self.preflight,
        }
        if self.directory_ca:
            acme["ca_bundle"] = f"{tls_dir}/acme-directory-ca.pem"
        acme["webroot"] = webroot
        if self.dns01:
            acme["dns"] = {**(dns or {})}
            if self.dns_propagation_seconds is not None:
                acme["dns"]["propagation_seconds"] = self.dns_propagation_seconds
        return {"acme": acme}


class SelfSignedTls(Tls):
    """A self-signed certificate for the host's names and addresses (browsers will warn)."""

    type: Literal["self-signed"]
    names: list[HostName] = Field(
        default_factory=list,
        description="Extra DNS names or IP addresses; the host's own name and addresses are added.",
    )
    days: int = Field(365, ge=7, le=825)

    def cert_names(self, hostname: str, addresses: list[str]) -> list[str]:
        names = [hostname, "localhost", *addresses, "127.0.0.1", *self.names]
        return list(dict.fromkeys(names))

    def agent_settings(self, tls_dir: str, webroot: str = "",
                       dns: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"self_signed": {"days": self.days}}

    def pod_proxy(self) -> PodProxy:
        # Never plain HTTP on a public address: keep the hub inside the cluster until it has
        # a real certificate.
        return PodProxy(
            {"service": {"type": "ClusterIP"}},
            ("`tls.type = 'self-signed'`", "`proxy.service.type: ClusterIP`",
             "not public until it has a certificate (see below)"),
            [("tls", "the chart has no self-signed certificate: the values keep the hub off "
              "the internet (proxy.service.type ClusterIP; try it with `kubectl port-forward "
              "service/proxy-public 8080:80`) until you set proxy.https (letsencrypt with a "
              "domain, or manual with your certificate) and proxy.service.type "
              "LoadBalancer")])


class ProvidedTls(Tls):
    """A certificate and key you bring: as paths on the host or as PEM contents."""

    type: Literal["provided"]
    cert_file: SystemPath | None = Field(None, description="Full chain PEM, already on the host.")
    key_file: SystemPath | None = Field(None, description="Private key PEM, already on the host.")
    cert_pem: str | None = multiline(default=None, description="Full chain PEM contents.")
    key_pem: SecretStr | None = multiline(default=None, description="Private key PEM contents.")

    @field_validator("cert_pem")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        return None if value is None else pem_certificates(value, "cert_pem")

    @field_validator("key_pem")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            load_pem_private_key(value.get_secret_value().encode(), password=None)
        except (ValueError, TypeError):
            # Never echo the value: it is a private key.
            raise ValueError("is not an unencrypted PEM private key") from None
        return value

    @model_validator(mode="after")
    def _one_source_each(self) -> ProvidedTls:
        for what, path, pem in (
            ("cert", self.cert_file, self.cert_pem),
            ("key", self.key_file, self.key_pem),
        ):
            if (path is None) == (pem is None):
                raise ValueError(f"give exactly one of {what}_file and {what}_pem")
        return self

    def uploads(self) -> dict[str, str | SecretStr]:
        files: dict[str, str | SecretStr] = {}
        if self.cert_pem is not None:
            files["provided/fullchain.pem"] = self.cert_pem
        if self.key_pem is not None:
            files["provided/privkey.pem"] = self.key_pem
        return files

    def pod_proxy(self) -> PodProxy:
        manual: dict[str, Any] = {}
        if self.cert_pem is not None:
            manual["cert"] = self.cert_pem
        if self.key_pem is not None:
            manual["key"] = self.key_pem
        gaps = [(f"tls.{what}_file", f"{path} is a file on the host: put its PEM in "
                 f"proxy.https.manual.{what} (`sudo cat {path}` on the host)")
                for what, path in (("cert", self.cert_file), ("key", self.key_file)) if path]
        return PodProxy({"https": {"enabled": True, "type": "manual", "manual": manual}},
                        ("`tls.type = 'provided'`, `tls.cert_pem` or `tls.cert_file`, "
                         "`tls.key_pem` or `tls.key_file`",
                         "`proxy.https.type: manual`, `manual.cert`, `manual.key`",
                         "the key in the values file only"), gaps)

    def agent_settings(self, tls_dir: str, webroot: str = "",
                       dns: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"provided": {
            "cert_file": self.cert_file or f"{tls_dir}/provided/fullchain.pem",
            "key_file": self.key_file or f"{tls_dir}/provided/privkey.pem",
        }}


TlsSpec = Annotated[AcmeTls | SelfSignedTls | ProvidedTls, Field(discriminator="type")]
