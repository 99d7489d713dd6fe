"""The one place that reads raw host data, and the order a site is deployed in.

`deploy_site(host, components)`: validate the spec (nothing touches the host if it is
invalid), prepare the controller's secrets, read the host once (HostFacts → Platform),
let every component describe what it wants (items), fetch one snapshot of all of it, then
apply each component's items in order under its own deploy name.

A component is a module with `NAME`, `wanted(spec) -> bool` and either `items(site)` (pure:
spec, platform and host facts in, items out) or `run(site, changed)` (its own operations,
for the firewall's guarded apply). It may define `reads(spec)` -> {"accounts": [...],
"lines": [(path, prefix)], "globs": [...]}: what planning must read from the host
(see HostFacts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError

from pyinfra_jupyter import controller
from pyinfra_jupyter.spec import SiteSpec, SpecError, build_spec

from . import paths
from .items import File, Item
from .ops import callstack, fleet
from .ops.apply import apply, prefetch
from .ops.facts import host_facts
from .ops.shell import Installs
from .platform import CPYTHON, SMALL_HOST_MB, Platform, platform_from_info

SYSTEM_PYTHON = "/usr/bin/python3"
# python.provider `source`: the pinned CPython, built in its own versioned prefix.
PYTHON_PREFIX = f"{paths.PYTHON_PREFIXES}/{CPYTHON.version}"


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".") if x.isdigit())


def minor(version: str) -> str:
    """'3.11.2' -> '3.11'."""
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True)
class Site:
    """Everything a component may know: the spec, the platform, and the host as it was at
    the start of the run."""

    spec: SiteSpec
    platform: Platform
    facts: dict = field(default_factory=dict)
    passwords: dict[str, SecretStr] = field(default_factory=dict)
    host_name: str = ""
    # Connected over SSH (the firewall then proves a new SSH connection gets in).
    over_ssh: bool = False
    # How many hosts this run deploys (python.wheels `auto` fetches wheels once for many).
    fleet_size: int = 1

    @property
    def installs(self) -> Installs:
        """How install steps run here: a swap file on a small host, piwheels on armhf."""
        small = 0 < self.platform.memory_mb < SMALL_HOST_MB
        python = self.spec.python
        wheels = python.wheels
        if wheels == "auto":
            wheels = "controller-or-index" if self.fleet_size > 1 else "index"
        return Installs(swap_mb=python.swap_mb if small else 0, keep_swap=python.keep_swap,
                        extra_index_urls=self.platform.pip_extra_index_urls,
                        wheels=wheels, arch=self.platform.arch, glibc=self.platform.glibc)

    def glob(self, pattern: str) -> list[str]:
        """What a component's glob pattern matched on the host (asked for by its reads)."""
        return list(self.facts.get("globs", {}).get(pattern, []))

    def line(self, path: str, prefix: str) -> str | None:
        """The first line of `path` starting with `prefix` (asked for by a component's reads)."""
        return self.facts.get("lines", {}).get((path, prefix))

    def account(self, name: str) -> dict | None:
        """An existing account's passwd entry (home, shell, uid), or None."""
        return self.facts.get("passwd", {}).get(name)

    # -- the Python the services' venvs are made with (the python component provides it) -----

    @property
    def system_python_version(self) -> str:
        """The major.minor of the host's python3 (the release's, before it is installed)."""
        return self.facts.get("python3") or self.platform.system_python

    @property
    def python_provider(self) -> str:
        """`system` or `source`: the spec's choice, or for `auto` the host's python3 when it
        is new enough."""
        chosen = self.spec.python.provider
        if chosen != "auto":
            return chosen
        if version_tuple(self.system_python_version) >= version_tuple(
                self.spec.python.min_version):
            return "system"
        return "source"

    @property
    def python_bin(self) -> str:
        """The interpreter the services' venvs are made with."""
        if self.python_provider == "source":
            return f"{PYTHON_PREFIX}/bin/python{minor(CPYTHON.version)}"
        return SYSTEM_PYTHON

    @property
    def python_version(self) -> str:
        """The major.minor of the Python the services' venvs are made with."""
        if self.python_provider == "source":
            return minor(CPYTHON.version)
        return self.system_python_version

    @property
    def hostname(self) -> str:
        return self.facts.get("hostname") or self.host_name

    @property
    def addresses(self) -> list[str]:
        return list(self.facts.get("addresses") or [])


def site_spec(host) -> SiteSpec:
    """The host's spec, or a DeployError listing `field.path: problem` lines (before any
    remote command): the spec itself, and the controller-side files it names."""
    try:
        spec = build_spec(host.data.dict())
    except SpecError as exc:
        problems = exc.problems
    else:
        problems = controller.problems(spec)
        if not problems:
            return spec
    lines = "\n".join(f"  {problem}" for problem in problems)
    raise DeployError(f"invalid site spec for {host.name}:\n{lines}")


def load_site(host, components, lock: bool = True) -> Site:
    """The host's Site; with `lock` (a deploy, not `verify`) the host's deploy lock is taken."""
    spec = site_spec(host)
    reads: dict[str, set] = {"accounts": set(), "lines": set(), "globs": set()}
    for component in components:
        if hasattr(component, "reads") and component.wanted(spec):
            for key, values in component.reads(spec).items():
                reads[key].update(values)
    facts = host_facts(host, reads["accounts"], reads["lines"], reads["globs"], lock=lock)
    if facts.get("locked"):
        raise DeployError(
            f"{host.name}: another deploy has been running on this host {facts['locked']} and "
            "did not finish within 15 minutes; nothing was changed. Try again when it is done."
        )
    platform = platform_from_info(facts)
    try:
        passwords = controller.login_passwords(spec)
    except (OSError, ValueError) as exc:
        raise DeployError(f"{host.name}: users.accounts: {exc}") from None
    return Site(spec=spec, platform=platform, facts=facts, passwords=passwords,
                host_name=host.name,
                over_ssh=type(host.connector).__name__ == "SSHConnector",
                fleet_size=max(1, host.state.inventory.len_activated_hosts()))


def deploy_site(host, components) -> None:
    callstack.install()
    fleet.install(host.state)
    site = load_site(host, components)
    wanted = [c for c in components if c.wanted(site.spec)]
    plans: dict[str, list[Item]] = {
        c.NAME: c.items(site) for c in wanted if hasattr(c, "items")
    }
    every = [item for items in plans.values() for item in items]
    plan_file = File(paths.VERIFY_PLAN, verify_plan(site, wanted),
                     label=f"Upload {paths.VERIFY_PLAN} (what `verify` checks)")
    # What components without items read (the firewall's unit, packages, rules and boot
    # files), in the same snapshot.
    extra: dict[str, list] = {}
    for component in wanted:
        if hasattr(component, "snapshot_reads"):
            for key, values in component.snapshot_reads(site).items():
                extra.setdefault(key, []).extend(values)
    prefetch([*every, plan_file], site.platform, extra)
    changed: dict[str, bool] = {}
    for component in wanted:
        if component.NAME in plans:
            deploy(component.TITLE)(apply)(plans[component.NAME], site.platform, changed,
                                           site.installs)
        else:
            deploy(component.TITLE)(component.run)(site, changed)
    deploy("Verify plan")(apply)([plan_file], site.platform, changed)


def site_items(site: Site, components) -> list[Item]:
    """Every item the site's components want, in deploy order (pure)."""
    return [item for c in components if c.wanted(site.spec) and hasattr(c, "items")
            for item in c.items(site)]


def verify_plan(site: Site, components) -> str:
    """What `verify` checks, as JSON: the items of the site once converged — without what
    only removing something the spec dropped needs (found by the host's globs), so the plan
    a removal run writes is the plan the next run writes."""
    import dataclasses
    import json

    from .plan import build

    steady = dataclasses.replace(site, facts={**site.facts, "globs": {}})
    plan = build(site.spec, site_items(steady, components), manager=site.platform.family.manager,
                 tls_names=site.spec.tls.cert_names(site.hostname, site.addresses))
    return json.dumps(plan, indent=1, sort_keys=True) + "\n"
