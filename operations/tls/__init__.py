"""TLS for the public port: the certificate every public service serves, and its renewal.

The work happens on the host, in our agent (operations/tls/agent.py, one plain file run
from its own venv): it issues (ACME), makes (self-signed) or checks (provided) the pair
under /etc/pyinfra-jupyter/tls, renews it from a systemd timer so renewal never depends on
anyone re-running the deploy, and serves port 80 (ACME HTTP-01 + redirect to HTTPS).
This deploy installs the agent, renders its config from the spec, and runs `ensure` only
when the config changed or the certificate is missing or due.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import SecretStr
from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.operations import files, server, systemd

from ..common import (
    NETWORK_ENV,
    TLS_CERT,
    TLS_DIR,
    TLS_GROUP,
    TLS_KEY,
    python_venv,
    service,
    template,
    text,
)
from ..network import download_env
from ..platforms import Platform
from ..spec import SiteSpec
from ..spec.ddns import Cloudflare, DuckDns, Dynv6
from ..spec.tls import AcmeTls, ProvidedTls, SelfSignedTls
from ..staged import staged_file

AGENT_SRC = Path(__file__).with_name("agent.py")
AGENT_HOME = "/opt/pyinfra-jupyter/tls-agent"
AGENT = f"{AGENT_HOME}/agent.py"
AGENT_PYTHON = f"{AGENT_HOME}/bin/python"
CONFIG = f"{TLS_DIR}/agent.json"
WEBROOT = "/var/lib/pyinfra-jupyter/acme-challenge"
HTTP_UNIT = "pyinfra-jupyter-http.service"
RENEW_UNIT = "pyinfra-jupyter-tls-renew"
# The set the agent's tests run against: acme 5 (RFC 8555 + ARI) needs josepy 2 and
# cryptography >= 47; cryptography publishes x86_64 and aarch64 wheels, so no Rust on a Pi.
AGENT_PACKAGES = ["acme==5.9.0", "josepy==2.2.0", "cryptography==50.0.2"]

# Services that serve the certificate and must pick up a renewed one. Unit *patterns*:
# `systemctl try-restart` skips a pattern that matches no loaded unit (the first deploy
# makes the certificate before the proxy exists), where a plain name would be an error.
PUBLIC_SERVICES = {
    "hub": ["configurable-http-proxy*.service"],
    "notebook": ["jupyter-notebook@*.service"],
}


class TlsStatus(FactBase):
    """What the agent knows of the current certificate (its `status` JSON), or None."""

    requires_command = AGENT_PYTHON

    def command(self) -> str:
        return f"{AGENT_PYTHON} {AGENT} --config {CONFIG} status 2>/dev/null || true"

    def process(self, output: list[str]):
        try:
            return json.loads("\n".join(output))
        except ValueError:
            return None


def cert_names(spec: SiteSpec, hostname: str, addresses: list[str]) -> list[str]:
    """The names the certificate must cover, in a stable order."""
    tls = spec.tls
    if isinstance(tls, AcmeTls):
        return list(tls.domains)
    if isinstance(tls, SelfSignedTls):
        names = [hostname, "localhost", *addresses, "127.0.0.1", *tls.names]
        return list(dict.fromkeys(names))
    return []


def agent_config(spec: SiteSpec, names: list[str]) -> dict:
    """The agent's JSON config (no secrets: the DNS API token lives in its own 0600 file)."""
    tls = spec.tls
    https_port = spec.proxy.port if spec.mode == "hub" else spec.notebook.instances[0].port
    config: dict = {
        "type": tls.type,
        "cert_dir": TLS_DIR,
        "names": names,
        "key_group": TLS_GROUP,
        "https_port": https_port,
        "post_renew": [
            ["systemctl", "try-restart", unit] for unit in PUBLIC_SERVICES[spec.mode]
        ],
    }
    if isinstance(tls, SelfSignedTls):
        config["self_signed"] = {"days": tls.days}
    elif isinstance(tls, ProvidedTls):
        config["provided"] = {
            "cert_file": tls.cert_file or f"{TLS_DIR}/provided/fullchain.pem",
            "key_file": tls.key_file or f"{TLS_DIR}/provided/privkey.pem",
        }
    elif isinstance(tls, AcmeTls):
        acme: dict = {
            "directory": tls.directory_url,
            "email": tls.email,
            "challenge": tls.challenge,
            "webroot": WEBROOT,
            "preflight": tls.preflight,
        }
        if tls.directory_ca:
            acme["ca_bundle"] = f"{TLS_DIR}/acme-directory-ca.pem"
        if tls.challenge == "dns-01":
            acme["dns"] = _dns_config(spec)
            if tls.dns_propagation_seconds is not None:
                acme["dns"]["propagation_seconds"] = tls.dns_propagation_seconds
        config["acme"] = acme
    return config


def _dns_config(spec: SiteSpec) -> dict:
    ddns = spec.ddns
    dns: dict = {"provider": ddns.provider, "token_file": f"{TLS_DIR}/dns-token"}
    if ddns.api_url:
        dns["endpoint"] = str(ddns.api_url).rstrip("/")
    if isinstance(ddns, DuckDns):
        dns["subdomain"] = ddns.domain.removesuffix(".duckdns.org")
    elif isinstance(ddns, Dynv6 | Cloudflare):
        dns["zone"] = ddns.zone
    return dns


def _dns_token(spec: SiteSpec) -> str | None:
    ddns = spec.ddns
    if isinstance(ddns, DuckDns | Dynv6):
        return ddns.token.get_secret_value()
    if isinstance(ddns, Cloudflare):
        return ddns.api_token.get_secret_value()
    return None


def ensure_needed(status: dict | None, names: list[str], now: datetime | None = None) -> bool:
    """True when the agent must run: no certificate, other names, or renewal due."""
    if not status:
        return True
    if names and sorted(status.get("names") or []) != sorted(names):
        return True
    renew_after = status.get("renew_after")
    if not renew_after:
        return True
    now = now or datetime.now(timezone.utc)
    return datetime.fromisoformat(renew_after.replace("Z", "+00:00")) <= now


@deploy("TLS certificate")
def deploy_tls(spec: SiteSpec, platform: Platform) -> None:
    from pyinfra.facts.server import Hostname

    tls = spec.tls
    server.group(name=f"Create group {TLS_GROUP} (may read the TLS key)", group=TLS_GROUP,
                 system=True)
    files.directory(name=f"Create {TLS_DIR}", path=TLS_DIR, user="root", group=TLS_GROUP,
                    mode="750")

    changed = [python_venv("TLS agent", AGENT_HOME, AGENT_PACKAGES,
                           download_env(spec.network, platform))]
    changed.append(files.put(name=f"Upload the TLS agent {AGENT}", src=str(AGENT_SRC),
                             dest=AGENT, mode="755").will_change)

    # Secrets and provided material: 0600 files, content never shown in the output.
    token = _dns_token(spec) if isinstance(tls, AcmeTls) and tls.challenge == "dns-01" else None
    if token:
        changed.append(staged_file(name=f"Upload the DNS API token {TLS_DIR}/dns-token",
                                   content=SecretStr(token + "\n"), dest=f"{TLS_DIR}/dns-token",
                                   mode="600").will_change)
    if isinstance(tls, AcmeTls) and tls.directory_ca:
        changed.append(files.put(name="Upload the ACME directory's CA certificate",
                                 src=text(tls.directory_ca), dest=f"{TLS_DIR}/acme-directory-ca.pem",
                                 mode="644").will_change)
    if isinstance(tls, ProvidedTls) and tls.cert_pem:
        files.directory(name=f"Create {TLS_DIR}/provided", path=f"{TLS_DIR}/provided", mode="700")
        changed.append(files.put(name="Upload the provided certificate chain",
                                 src=text(tls.cert_pem), dest=f"{TLS_DIR}/provided/fullchain.pem",
                                 mode="644").will_change)
        changed.append(staged_file(name="Upload the provided private key", content=tls.key_pem,
                                   dest=f"{TLS_DIR}/provided/privkey.pem", mode="600").will_change)

    if isinstance(tls, AcmeTls):
        files.directory(name=f"Create the ACME webroot {WEBROOT}", path=WEBROOT, mode="755")

    names = cert_names(spec, host.get_fact(Hostname), _addresses())
    config = files.put(
        name=f"Upload {CONFIG}",
        src=text(json.dumps(agent_config(spec, names), indent=2, sort_keys=True) + "\n"),
        dest=CONFIG,
        mode="600",
    )
    changed.append(config.will_change)

    # The port-80 responder runs before issuance: ACME HTTP-01 validates through it.
    _units(spec, changed)

    status = host.get_fact(TlsStatus)
    # `renew` = ensure, then restart the services serving the certificate if it changed
    # (try-restart: nothing happens to a service not running yet, e.g. on the first deploy).
    server.shell(
        name=f"Ensure the {tls.type} certificate for {', '.join(names) or 'the provided names'}",
        commands=[f"{AGENT_PYTHON} {AGENT} --config {CONFIG} renew"],
        _if=lambda: any(changed) or ensure_needed(status, names),
        _env=download_env(spec.network, platform),
    )


def _addresses() -> list[str]:
    from pyinfra.facts.server import Command

    found = host.get_fact(Command, "hostname -I 2>/dev/null || true") or ""
    return [a for a in found.split() if not a.startswith("fe80:")]


def _units(spec: SiteSpec, changed: list[bool]) -> None:
    http_port = spec.tls.http_port
    http_unit = files.template(
        name=f"Upload /etc/systemd/system/{HTTP_UNIT}",
        src=template("tls", HTTP_UNIT),
        dest=f"/etc/systemd/system/{HTTP_UNIT}",
        python=AGENT_PYTHON, agent=AGENT, config=CONFIG, port=http_port or 80,
        webroot=WEBROOT, network_env=NETWORK_ENV,
    )
    renew_service = files.template(
        name=f"Upload /etc/systemd/system/{RENEW_UNIT}.service",
        src=template("tls", f"{RENEW_UNIT}.service"),
        dest=f"/etc/systemd/system/{RENEW_UNIT}.service",
        python=AGENT_PYTHON, agent=AGENT, config=CONFIG, network_env=NETWORK_ENV,
    )
    renew_timer = files.template(
        name=f"Upload /etc/systemd/system/{RENEW_UNIT}.timer",
        src=template("tls", f"{RENEW_UNIT}.timer"),
        dest=f"/etc/systemd/system/{RENEW_UNIT}.timer",
    )
    units_changed = any(op.will_change for op in (http_unit, renew_service, renew_timer))
    service(HTTP_UNIT, changed=[*changed, http_unit], unit_changed=units_changed,
            enabled=http_port is not None, running=http_port is not None)
    systemd.service(name=f"Start and enable {RENEW_UNIT}.timer", service=f"{RENEW_UNIT}.timer",
                    running=True, enabled=True)


__all__ = ["deploy_tls", "TLS_CERT", "TLS_KEY"]
