"""What the user must do outside the host: router forwards, DNS, checks, what not to expose.

The notes are Markdown derived from the spec and the host's facts (its LAN address and MAC,
what the DDNS updater last saw), so they are testable line by line. They are kept on the
host (`/etc/pyinfra-jupyter/NOTES.md`, pointed to from the login message) and on the
controller (`notes/<host>.md` beside the inventory's working directory), where the person
who configures the home router reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyinfra.api import FunctionCommand, operation

from pyinfra_jupyter.spec import SiteSpec

from .. import paths
from ..items import Absent, Directory, File, Item, Step
from ..site import Site

NAME = "notes"
TITLE = "Site notes"
MOTD = "/etc/motd.d/pyinfra-jupyter"
CONTROLLER_DIR = "notes"
CGNAT = "100.64.0.0/10"


def wanted(spec: SiteSpec) -> bool:
    return True


def _public_name(spec: SiteSpec, site: Site | None) -> str:
    names = spec.ddns.names() or spec.tls.public_names()
    if names:
        return names[0]
    return (site.facts.get("lan_address") if site else None) or "this-host"


def _https_port(spec: SiteSpec) -> int:
    return spec.proxy.port if spec.mode == "hub" else spec.notebook.instances[0].port


def _url(spec: SiteSpec, name: str) -> str:
    port = _https_port(spec)
    base = f"https://{name}" + ("" if port == 443 else f":{port}")
    return base + ("/" if spec.mode == "hub" else spec.notebook.instances[0].base_url)


def default_forwards(spec: SiteSpec) -> list[tuple[int, int, str, str]]:
    """(external, internal, proto, why): HTTPS to each public HTTPS port, and 80 only when
    ACME HTTP-01 validates through it."""
    out = []
    if spec.mode == "hub":
        out.append((443, spec.proxy.port, "tcp", "HTTPS (JupyterHub)"))
    else:
        for instance in spec.notebook.instances:
            external = 443 if len(spec.notebook.instances) == 1 else instance.port
            out.append((external, instance.port, "tcp", f"HTTPS (notebook {instance.name})"))
    if spec.tls.needs_webroot() and spec.tls.http_port:
        out.append((80, spec.tls.http_port, "tcp", "ACME HTTP-01 certificate checks, redirect"))
    return out


def _label(field: str) -> str:
    """'hub.api_port' -> 'the hub API'."""
    return f"the {field.split('.')[0]} API" if field.endswith(".api_port") else field


def _cgnat(site: Site | None) -> str | None:
    """What the DDNS updater last saw that rules out port forwarding, or None."""
    import ipaddress

    spec = site.spec if site else None
    state = (site.facts.get("ddns_state") if site else None) or {}
    seen = state.get("address") or state.get("ipv4")
    if not seen:
        return None
    try:
        address = ipaddress.ip_address(seen)
    except ValueError:
        return None
    if address in ipaddress.ip_network(CGNAT):
        return (f"the address the internet sees, {seen}, is in {CGNAT} (carrier-grade NAT): "
                "your provider shares one public address between customers")
    wan = spec.router.wan_address if spec else None
    if wan is not None and str(wan) != seen:
        return (f"the address the internet sees, {seen}, is not your router's WAN address "
                f"{wan}: something else translates addresses before your router")
    return None


def site_notes(spec: SiteSpec, site: Site | None = None) -> str:
    """The notes for one host, as Markdown."""
    facts = site.facts if site else {}
    host = site.hostname if site else "this host"
    name = _public_name(spec, site)
    lines = [f"# pyinfra-jupyter: {host}", "",
             f"Mode **{spec.mode}**. Open {_url(spec, name)} in a browser.", ""]

    lines += ["## Ports", ""]
    public = ", ".join(f"{p}/tcp" for p in spec.public_ports())
    lines.append(f"- Public (the firewall lets them in): {public}.")
    closed = ["49152-65535 (kernels)"] + [f"{port} ({_label(what)})" for what, port in
                                         spec.loopback_ports().items()]
    lines.append(f"- Never reachable from outside (loopback only): {', '.join(closed)}.")
    ssh = ", ".join(str(p) for p in spec.firewall.ssh_ports)
    lines.append(f"- SSH: {ssh}/tcp from {', '.join(spec.firewall.ssh_sources)}.")
    if spec.firewall.backend == "none":
        lines += ["", "**Firewall: not managed here** (`firewall.backend = none`). Open only the "
                  "public ports above and keep 49152-65535 closed to the outside."]
    lines.append("")

    router = spec.router
    if router.behind_nat:
        lan = str(router.lan_address or facts.get("lan_address") or "this host's LAN address")
        interface, mac = facts.get("lan_interface"), facts.get("lan_mac")
        lines += ["## Home router", ""]
        where = f"interface {interface}, MAC {mac}" if interface and mac else "its network card"
        lines.append(f"This host is **{lan}** on your LAN ({where}). Give it a fixed address: "
                     "a DHCP reservation for that MAC in the router.")
        lines += ["", "Forward these ports on the router to this host:", "",
                  "| outside port | protocol | to | inside port | what for |",
                  "|---|---|---|---|---|"]
        if router.forwards:
            rows = [(f.external, f.internal, f.proto, "as the spec says") for f in router.forwards]
        else:
            rows = default_forwards(spec)
        if router.forward_ssh:
            rows.append((spec.firewall.ssh_ports[0], spec.firewall.ssh_ports[0], "tcp", "SSH"))
        lines += [f"| {e} | {p} | {lan} | {i} | {w} |" for e, i, p, w in rows]
        never = ["49152-65535 (kernels: unauthenticated)"]
        never += [f"{port} ({_label(what)})" for what, port in spec.loopback_ports().items()]
        if not router.forward_ssh:
            never.append(f"{ssh} (SSH, unless you want to log in from outside)")
        lines += ["", f"Never forward: {', '.join(never)}.", "",
                  f"Check from outside your home (a phone on mobile data): open "
                  f"{_url(spec, name)}.", ""]

    ddns = spec.ddns
    if ddns.enabled:
        lines += ["## Dynamic DNS", "",
                  f"`{', '.join(ddns.names())}` follows this host's public address: provider "
                  f"{ddns.provider}, updated every {ddns.interval_minutes} minutes by "
                  "`pyinfra-jupyter-ddns.timer` (`journalctl -u pyinfra-jupyter-ddns` shows "
                  "each update).",
                  f"Check: `dig +short {ddns.names()[0]}` prints your public address.", ""]
    problem = _cgnat(site)
    if problem:
        lines += ["## Port forwarding cannot work here", "",
                  f"**Warning:** {problem}. Forwards on your router never reach this host. Use "
                  "`tls.challenge = 'dns-01'` for the certificate and reach the hub through a "
                  "tunnel (e.g. a VPS or a tunnel service), or ask your provider for a public "
                  "address.", ""]
    if spec.network.proxy_has_credentials:
        lines += ["## Proxy", "",
                  "The proxy URL carries credentials, so users' notebook servers are not given "
                  "it (users could read it): they set their own proxy settings.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


@operation()
def controller_file(path: str, content: str):
    """
    Keep a file on the controller (where pyinfra runs), e.g. the notes a person reads there.

    + path: the file on the controller
    + content: its text
    """
    target = Path(path)
    if target.is_file() and target.read_text() == content:
        from pyinfra import host

        host.noop(f"{path} (on this machine) is up to date")
        return
    yield FunctionCommand(_write_local, (path, content), {})


def _write_local(path: str, content: str) -> bool:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.new")
    temp.write_text(content)
    os.replace(temp, target)
    return True


def items(site: Site) -> list[Item]:
    notes = site_notes(site.spec, site)
    out: list[Item] = [
        File(paths.NOTES, notes, label=f"Upload {paths.NOTES} (what to do outside the host)"),
        Absent(f"{paths.ETC}/NOTES.txt", label="Remove the old NOTES.txt"),
    ]
    if site.platform.release.motd_dir:
        out.append(Directory(site.platform.release.motd_dir, mode="755"))
        out.append(File(f"{site.platform.release.motd_dir}/pyinfra-jupyter",
                        f"pyinfra-jupyter: router, DNS and checks for this site are in "
                        f"{paths.NOTES}\n"))
    out.append(Step(controller_file,
                    f"Keep the notes on this machine in {CONTROLLER_DIR}/{site.host_name}.md",
                    {"path": f"{CONTROLLER_DIR}/{site.host_name}.md", "content": notes}))
    return out
