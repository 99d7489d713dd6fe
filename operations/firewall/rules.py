"""The firewall rule set, derived from the site spec alone: no pyinfra, no backend syntax.

Evaluation model every backend renders faithfully (and `RuleSet.admits` implements):

1. loopback, established/related traffic and the ICMP/ICMPv6 (and DHCPv6 client) essentials
   are accepted — backends render these themselves;
2. `closed` ports (the kernel range 49152-65535, the hub and proxy API ports) are dropped
   from anything that is not loopback, whatever else says — explicit, so a stray accept
   elsewhere cannot open them;
3. `allow` rules accept a port range + protocol from a source network;
4. everything else inbound is dropped (default deny).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pyinfra_jupyter.spec import SiteSpec
from pyinfra_jupyter.spec.base import KERNEL_PORTS

WORLD4 = "0.0.0.0/0"
WORLD6 = "::/0"
WORLD = (WORLD4, WORLD6)
KERNEL_RANGE = (KERNEL_PORTS.start, KERNEL_PORTS.stop - 1)


class RulesError(ValueError):
    """The spec asks for something the firewall cannot do safely (one line per problem)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, order=True)
class PortRange:
    first: int
    last: int

    def __post_init__(self) -> None:
        if not 1 <= self.first <= self.last <= 65535:
            raise ValueError(f"bad port range {self.first}-{self.last}")

    def __contains__(self, port: int) -> bool:
        return self.first <= port <= self.last

    def overlaps(self, other: PortRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    @property
    def single(self) -> bool:
        return self.first == self.last

    def text(self, sep: str = "-") -> str:
        return str(self.first) if self.single else f"{self.first}{sep}{self.last}"

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True, order=True)
class Allow:
    """Accept `proto` traffic to `ports` from `source` (a CIDR; WORLD4/WORLD6 = anyone)."""

    ports: PortRange
    proto: str
    source: str
    comment: str = field(default="", compare=False)

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.source).version

    @property
    def world(self) -> bool:
        return self.source in WORLD

    def __str__(self) -> str:
        who = f"anyone (IPv{self.family})" if self.world else self.source
        return f"allow {self.proto} {self.ports} from {who}"


@dataclass(frozen=True, order=True)
class Closed:
    """Drop `proto` traffic to `ports` unless it comes in on loopback."""

    ports: PortRange
    proto: str
    comment: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"drop {self.proto} {self.ports} from outside the host"


@dataclass(frozen=True)
class RuleSet:
    allow: tuple[Allow, ...]
    closed: tuple[Closed, ...]

    def admits(self, address: str, port: int, proto: str = "tcp") -> bool:
        """Would a NEW connection from `address` (arriving on a real interface) get in?

        Loopback's blanket accept is deliberately not applied: a deploy that reaches SSH
        from 127.0.0.1 comes through a forward or tunnel whose real client we cannot see.
        """
        addr = ipaddress.ip_address(address)
        if any(port in c.ports and c.proto == proto for c in self.closed):
            return False
        return any(
            port in a.ports and a.proto == proto
            and addr.version == a.family and addr in ipaddress.ip_network(a.source)
            for a in self.allow
        )

    def world_pairs(self) -> list[tuple[PortRange, str, tuple[int, ...]]]:
        """World-open (ports, proto) with the families they are open to: (4, 6) for both."""
        seen: dict[tuple[PortRange, str], set[int]] = {}
        for a in self.allow:
            if a.world:
                seen.setdefault((a.ports, a.proto), set()).add(a.family)
        return [(p, proto, tuple(sorted(fams))) for (p, proto), fams in sorted(seen.items())]

    def sourced(self) -> list[Allow]:
        return [a for a in self.allow if not a.world]

    def comment_for(self, ports: PortRange, proto: str) -> str:
        for a in self.allow:
            if a.ports == ports and a.proto == proto:
                return a.comment
        return ""

    def describe(self) -> list[str]:
        return [str(c) for c in self.closed] + [str(a) for a in self.allow]


def _allow(ports: PortRange, proto: str, sources: list[str], comment: str) -> list[Allow]:
    return [Allow(ports, proto, str(ipaddress.ip_network(s, strict=False)), comment)
            for s in sources]


def build(spec: SiteSpec, ssh_port: int | None = None) -> RuleSet:
    """The rule set for `spec`; `ssh_port` is the port this deploy is connected on.

    Raises RulesError when the spec's own ports contradict each other (an extra `allow`
    or an SSH port inside a loopback-only port). The connected port is checked separately,
    by `check_ssh`, so that a lockout gets its own clear message.
    """
    fw = spec.firewall
    closed = [
        Closed(PortRange(*KERNEL_RANGE), proto, "Jupyter kernels: loopback only")
        for proto in ("tcp", "udp")
    ]
    for name, port in sorted(spec.loopback_ports().items(), key=lambda kv: kv[1]):
        closed.append(Closed(PortRange(port, port), "tcp", f"{name}: loopback only"))

    allow: list[Allow] = []
    ssh_ports = list(dict.fromkeys([*([ssh_port] if ssh_port else []), *fw.ssh_ports]))
    for port in ssh_ports:
        allow += _allow(PortRange(port, port), "tcp", fw.ssh_sources, "SSH")
    for port in spec.public_ports():
        allow += _allow(PortRange(port, port), "tcp", list(WORLD), "public")
    for extra in fw.allow:
        allow += _allow(PortRange(extra.port, extra.to_port or extra.port), extra.proto,
                        extra.sources, extra.comment or "firewall.allow")

    problems = []
    for a in allow:
        if ssh_port is not None and a.comment == "SSH" and a.ports.first == ssh_port:
            continue  # the connected port: check_ssh says it better
        for c in closed:
            if a.proto == c.proto and a.ports.overlaps(c.ports):
                problems.append(
                    f"firewall: {a} contradicts '{c.comment}' ({c.ports}/{c.proto} must never "
                    "be reachable from outside the host)"
                )
    if problems:
        raise RulesError(sorted(set(problems)))

    unique: dict[Allow, Allow] = {}
    for a in allow:
        unique.setdefault(a, a)
    return RuleSet(allow=tuple(sorted(unique)), closed=tuple(sorted(closed)))


def check_ssh(rules: RuleSet, client: str | None, port: int | None) -> None:
    """Refuse (RulesError) a rule set that would not let this deploy's SSH connection in."""
    if port is None:
        return
    address = client or WORLD4.split("/")[0]
    if rules.admits(address, port, "tcp"):
        return
    closed = [c for c in rules.closed if port in c.ports and c.proto == "tcp"]
    if closed:
        why = f"port {port} is loopback-only in the spec ({closed[0].comment})"
        fix = "move sshd to another port, or the conflicting service off it"
    else:
        why = f"{address} is not in firewall.ssh_sources"
        fix = f"add {address} (or a network holding it) to firewall.ssh_sources"
    raise RulesError([
        f"firewall: refusing to apply rules that would cut this deploy's SSH connection "
        f"(from {address} to port {port}): {why}; {fix}. Nothing was changed."
    ])
