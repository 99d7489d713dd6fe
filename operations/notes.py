"""What the user must do outside the host: router forwards, DNS, what is not automated."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from .common import text
from .platforms import Platform
from .spec import SiteSpec

NOTES = "/etc/pyinfra-jupyter/NOTES.txt"


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
    if spec.ddns.provider != "none":
        lines += ["", f"DDNS: provider {spec.ddns.provider} is configured in the spec but this "
                  "version does not install an updater yet: keep the name updated another way "
                  "(e.g. your router's DDNS client)."]
    return "\n".join(lines) + "\n"


@deploy("Site notes")
def deploy_notes(spec: SiteSpec, platform: Platform) -> None:
    files.put(name=f"Upload {NOTES}", src=text(site_notes(spec)), dest=NOTES, mode="644")
