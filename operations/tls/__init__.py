"""TLS for the public port: the certificate every public service serves, and its renewal.

The work happens on the host, in our agent (operations/agent, shipped as one zipapp run
from its own venv; operations/agent/README.md): it issues (ACME), makes (self-signed) or checks (provided) the pair
under /etc/pyinfra-jupyter/tls, gives each service that serves it a copy of its own (owned
by that service's user: no user can read another's, none can read the root-only original),
renews it from a systemd timer so renewal never depends on anyone re-running the deploy,
and serves the plain-HTTP port (ACME HTTP-01 + redirect to HTTPS). This deploy installs
the agent, renders its config from the spec, and runs it only when the config changed or
the certificate (or a copy) is missing or due.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pydantic import SecretStr

from pyinfra_jupyter.spec import SiteSpec

from .. import paths
from ..items import Absent, Directory, File, Item, Perms, Service, Step, Venv
from ..ops.converge import command
from ..ops.render import render
from ..site import Site

NAME = "tls"
TITLE = "TLS certificate"

AGENT = paths.AGENT_ZIPAPP
CONFIG = f"{paths.TLS_DIR}/agent.json"
TOKEN = f"{paths.TLS_DIR}/dns-token"
WEBROOT = f"{paths.STATE}/acme-challenge"
HTTP_UNIT = "pyinfra-jupyter-http.service"
RENEW_UNIT = paths.TLS_RENEW
# The set the agent's tests run against: acme 5 (RFC 8555 + ARI) needs josepy 2 and
# cryptography >= 47; cryptography publishes x86_64 and aarch64 wheels, so no Rust on a Pi.
AGENT_PACKAGES = ("acme==5.9.0", "josepy==2.2.0", "cryptography==50.0.2")
COPIES = f"{paths.TLS_DIR}/for/*/privkey.pem"
CERT_INPUTS = f"{paths.TLS_DIR}/cert-inputs.json"


def wanted(spec: SiteSpec) -> bool:
    return True


def reads(spec: SiteSpec) -> dict:
    return {"globs": [COPIES]}


consumers = paths.tls_consumers


def agent_config(spec: SiteSpec, names: list[str]) -> dict:
    """The agent's JSON config (no secrets: a DNS API token lives in its own 0600 file)."""
    tls = spec.tls
    https_port = spec.proxy.port if spec.mode == "hub" else spec.notebook.instances[0].port
    config: dict = {
        "type": tls.type,
        "cert_dir": paths.TLS_DIR,
        "names": names,
        "https_port": https_port,
        "consumers": [{"name": user, "user": user} for user in consumers(spec)],
        "post_renew": [["systemctl", "try-restart", unit] for unit in paths.PUBLIC_UNITS[spec.mode]],
        **tls.agent_settings(paths.TLS_DIR, webroot=WEBROOT,
                             dns={**spec.ddns.agent_settings(), "token_file": TOKEN}),
    }
    return config


def cert_inputs(config: dict) -> dict:
    """The part of the agent's config the certificate itself depends on."""
    return {k: v for k, v in config.items() if k not in ("consumers", "post_renew", "https_port")}


def ensure_needed(state: dict | None, has_pair: bool, names: list[str], copies_missing: bool,
                  now: datetime | None = None, pair_sha256: str = "") -> bool:
    """True when the agent must run: no certificate, other names, a missing copy, a pair
    that is not the one the agent last saw, or due."""
    if not state or not has_pair or copies_missing:
        return True
    if pair_sha256 and state.get("pair_sha256") != pair_sha256:
        return True
    if names and sorted(state.get("names") or []) != sorted(names):
        return True
    renew_after = state.get("renew_after")
    if not renew_after:
        return True
    now = now or datetime.now(timezone.utc)
    return datetime.fromisoformat(renew_after.replace("Z", "+00:00")) <= now


def agent_zipapp() -> bytes:
    from ..agent.build import zipapp_bytes

    return zipapp_bytes()


def render_units(spec: SiteSpec, site: Site) -> dict[str, str]:
    caps = site.platform.systemd
    common = {"python": paths.AGENT_PYTHON, "agent": AGENT, "config": CONFIG, "caps": caps}
    writable = [WEBROOT] if spec.tls.needs_webroot() else []
    return {
        f"{paths.UNIT_DIR}/{HTTP_UNIT}": render(
            "tls", HTTP_UNIT, port=spec.tls.http_port or 80, **common),
        f"{paths.UNIT_DIR}/{RENEW_UNIT}.service": render(
            "tls", f"{RENEW_UNIT}.service", network_env=paths.NETWORK_ENV,
            tls_dir=paths.TLS_DIR, writable=writable, **common),
        f"{paths.UNIT_DIR}/{RENEW_UNIT}.timer": render("tls", f"{RENEW_UNIT}.timer"),
    }


def items(site: Site) -> list[Item]:
    spec = site.spec
    tls = spec.tls
    names = tls.cert_names(site.hostname, site.addresses)
    out: list[Item] = [
        Directory(paths.TLS_DIR, mode="755"),
        Directory(paths.OPT, mode="755"),
        Venv(paths.AGENT_HOME, site.python_bin, site.python_version, AGENT_PACKAGES, "the host agent",
             timeout=spec.network.timeout),
        File(AGENT, agent_zipapp(), label=f"Upload the host agent {AGENT}"),
    ]
    inputs = [f"venv:{paths.AGENT_HOME}", f"file:{AGENT}", f"file:{CONFIG}"]

    secret = spec.ddns.secret() if tls.dns01 else None
    if secret is not None:
        out.append(File(TOKEN, SecretStr(secret.get_secret_value() + "\n"), mode="600",
                        label=f"Upload the DNS API token {TOKEN}"))
        inputs.append(f"file:{TOKEN}")
    else:
        out.append(Absent(TOKEN, label=f"Remove {TOKEN} (no DNS-01)"))
    uploads = tls.uploads()
    if any("/" in name for name in uploads):
        out.append(Directory(f"{paths.TLS_DIR}/provided", mode="700"))
    for name, content in uploads.items():
        path = f"{paths.TLS_DIR}/{name}"
        out.append(File(path, content, mode="600" if isinstance(content, SecretStr) else "644"))
        inputs.append(f"file:{path}")
    if tls.needs_webroot():
        out.append(Directory(WEBROOT, mode="755", label=f"Create the ACME webroot {WEBROOT}"))

    out.append(File(CONFIG, json.dumps(agent_config(spec, names), indent=2, sort_keys=True) + "\n",
                    mode="600"))

    units = render_units(spec, site)
    out += [File(path, text) for path, text in units.items()]
    unit_keys = tuple(f"file:{path}" for path in units)
    http_port = tls.http_port
    # The port-80 responder runs before issuance: ACME HTTP-01 validates through it.
    out.append(Service(HTTP_UNIT, enabled=http_port is not None, running=http_port is not None,
                       restart_on=(*inputs, *unit_keys), reload_on=unit_keys, port=http_port))
    out.append(Service(f"{RENEW_UNIT}.timer", reload_on=unit_keys))

    copies = {p.split("/")[-2] for p in site.glob(COPIES)}
    due = ensure_needed(site.facts.get("tls_state"), site.facts.get("tls_pair", False), names,
                        copies_missing=not set(consumers(spec)) <= copies,
                        pair_sha256=site.facts.get("tls_pair_sha256", ""))
    out.append(Step(
        command,
        f"Ensure the {tls.type} certificate for {', '.join(names) or 'the provided names'}",
        {"command": f"{paths.AGENT_PYTHON} {AGENT} --config {CONFIG} ensure",
         "force": due, "network": True},
        key_name="tls-ensure", restart_on=tuple(inputs), timeout=spec.network.timeout,
    ))
    # What the certificate itself depends on (not who gets a copy, not the agent's code): when
    # it changed, or the certificate was due, the services that serve it restart in their own
    # components (paths.TLS_ENSURE), and the deploy waits for them. Removing one notebook
    # instance therefore restarts no other.
    out.append(File(CERT_INPUTS, json.dumps(cert_inputs(agent_config(spec, names)), indent=1,
                                            sort_keys=True) + "\n", mode="600"))
    out.append(Step(
        command, "Note a new certificate (the services that serve it restart)",
        {"command": "true", "force": due},
        key_name=paths.TLS_ENSURE.removeprefix("step:"),
        restart_on=(f"file:{CERT_INPUTS}", *[k for k in inputs if k.startswith("file:")
                                              and k not in (f"file:{CONFIG}", f"file:{AGENT}")]),
    ))
    # Each consumer's copy stays readable by its service alone (the agent writes them in
    # root-owned folders, so a fix in place follows no link).
    for user in consumers(spec):
        chain, key = paths.tls_copy(user)
        out += [Perms(chain, user=user, mode="444"), Perms(key, user=user, mode="400")]
    return out
