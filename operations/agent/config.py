"""The TLS config file (JSON, written by the deploy): read and checked once."""

from __future__ import annotations

import os

from .common import ConfigError, is_ip, normalize_name, read_json_config


class Config:
    def __init__(self, path: str):
        self.path = path
        raw = read_json_config(path)
        self.raw = raw
        self.type = raw.get("type", "acme")
        if self.type not in ("acme", "self-signed", "provided"):
            raise ConfigError(
                f"config: type must be acme, self-signed or provided, not {self.type!r}"
            )
        self.cert_dir = raw.get("cert_dir", "/etc/pyinfra-jupyter/tls")
        names = raw.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError("config: names must be a list of DNS names / IP addresses")
        seen: list[str] = []
        for n in names:
            n = normalize_name(n)
            if n not in seen:
                seen.append(n)
        self.names = seen
        self.key_type = raw.get("key_type", "ec")
        if self.key_type not in ("ec", "rsa"):
            raise ConfigError("config: key_type must be 'ec' or 'rsa'")
        self.consumers = self._consumers(raw.get("consumers") or [])
        self.https_port = int(raw.get("https_port", 443))
        self.post_renew = self._post_renew(raw.get("post_renew") or [])
        acme = raw.get("acme") or {}
        self.acme = acme
        self.webroot = acme.get("webroot", "/var/lib/pyinfra-jupyter/acme-challenge")
        self.challenge = acme.get("challenge", "http-01")
        provided = raw.get("provided") or {}
        self.cert_file = provided.get("cert_file") or os.path.join(self.cert_dir, "fullchain.pem")
        self.key_file = provided.get("key_file") or os.path.join(self.cert_dir, "privkey.pem")

    @staticmethod
    def _consumers(value):
        if not isinstance(value, list) or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str)
                and isinstance(c.get("user"), str) for c in value):
            raise ConfigError('config: consumers must be a list of {"name": ..., "user": ...}')
        return value

    @staticmethod
    def _post_renew(value):
        if not isinstance(value, list):
            raise ConfigError("config: post_renew must be a list (one argv or a list of argvs)")
        if value and all(isinstance(v, str) for v in value):
            return [value]
        if all(isinstance(v, list) and v and all(isinstance(a, str) for a in v) for v in value):
            return value
        raise ConfigError("config: post_renew must be a list of strings or a list of lists")

    def check_for_issuance(self) -> None:
        """Checks that only matter when we make certificates (serve-http/status skip them)."""
        # A provided certificate names itself (the lab found this refused before).
        if not self.names and self.type != "provided":
            raise ConfigError("config: names is empty — list the host's public DNS names/IPs")
        if self.type == "acme":
            if not self.acme.get("directory"):
                raise ConfigError("config: acme.directory (the CA's ACME directory URL) is missing")
            if self.challenge not in ("http-01", "dns-01"):
                raise ConfigError("config: acme.challenge must be http-01 or dns-01")
            wild = [n for n in self.names if n.startswith("*.")]
            if wild and self.challenge != "dns-01":
                raise ConfigError(
                    f"config: wildcard name {wild[0]} needs acme.challenge dns-01 "
                    "(HTTP-01 cannot validate wildcards)"
                )
            ips = [n for n in self.names if is_ip(n)]
            if ips and self.challenge == "dns-01":
                raise ConfigError(f"config: IP address {ips[0]} cannot be validated with dns-01")
