"""What the user must do outside the host: router forwards, DNS, what is not automated."""

from __future__ import annotations

from pyinfra_jupyter.spec import SiteSpec

from .. import paths
from ..items import File, Item
from ..site import Site

NAME = "notes"
TITLE = "Site notes"


def wanted(spec: SiteSpec) -> bool:
    return True


def site_notes(spec: SiteSpec) -> str:
    """Plain-text notes for a sysadmin: derived from the spec only, so they are testable."""
    lines = [f"pyinfra-jupyter site, mode {spec.mode}", ""]
    ports = spec.public_ports()
    lines.append("Public TCP ports: " + ", ".join(map(str, ports)))
    if spec.router.behind_nat:
        forwards = spec.router.forwards or []
        lines.append("")
        lines.append("Home router: forward these ports to "
                     f"{spec.router.lan_address or 'this host (give it a fixed LAN address)'}:")
        if forwards:
            lines += [f"  {f.proto} {f.external} -> {f.internal}" for f in forwards]
        else:
            lines += [f"  tcp {p} -> {p}" for p in ports]
    if spec.firewall.backend == "none":
        lines += ["", "Firewall: not managed here (firewall.backend = none). Open only the "
                  "public ports above and keep 49152-65535 closed to the outside."]
    if spec.network.proxy_has_credentials:
        lines += ["", "Proxy: its URL carries credentials, so users' notebook servers are not "
                  "given it (users could read it): they set their own proxy settings."]
    if spec.ddns.enabled:
        lines += ["", f"DDNS: provider {spec.ddns.provider} is configured in the spec but this "
                  "version does not install an updater yet: keep the name updated another way "
                  "(e.g. your router's DDNS client)."]
    return "\n".join(lines) + "\n"


def items(site: Site) -> list[Item]:
    return [File(paths.NOTES, site_notes(site.spec))]
