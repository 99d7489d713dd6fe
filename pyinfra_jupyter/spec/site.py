"""The whole site: one key per component, and the rules that span components."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from .backup import BackupSpec
from .base import KERNEL_PORTS, Model
from .ddns import DdnsSpec, NoDdns
from .firewall import FirewallSpec
from .hub import HubSpec
from .network import NetworkSpec
from .notebook import NotebookSpec
from .proxy import ProxySpec
from .python import PythonSpec
from .router import RouterSpec
from .tls import SelfSignedTls, TlsSpec
from .uninstall import UninstallSpec
from .users import UsersSpec


class SpecError(ValueError):
    """An invalid site spec: one `field.path: what is wrong` line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class SiteSpec(Model):
    """Everything a site is; group data holds one top-level key per field."""

    mode: Literal["notebook", "hub"] = "hub"
    python: PythonSpec = Field(default_factory=PythonSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    firewall: FirewallSpec = Field(default_factory=FirewallSpec)
    tls: TlsSpec = Field(default_factory=lambda: SelfSignedTls(type="self-signed"))
    proxy: ProxySpec = Field(default_factory=ProxySpec)
    hub: HubSpec = Field(default_factory=HubSpec)
    notebook: NotebookSpec = Field(default_factory=NotebookSpec)
    users: UsersSpec = Field(default_factory=UsersSpec)
    ddns: DdnsSpec = Field(default_factory=NoDdns)
    router: RouterSpec = Field(default_factory=RouterSpec)
    backup: BackupSpec = Field(default_factory=BackupSpec)
    uninstall: UninstallSpec = Field(default_factory=UninstallSpec)

    # -- derived values every component agrees on ------------------------------------------

    def public_ports(self) -> list[int]:
        """TCP ports the world must reach: HTTPS (per mode) and the plain-HTTP redirect."""
        if self.mode == "hub":
            ports = [self.proxy.port]
        else:
            ports = [i.port for i in self.notebook.instances]
        if self.tls.http_port is not None:
            ports.append(self.tls.http_port)
        return ports

    def loopback_ports(self) -> dict[str, int]:
        """Ports that must never be reachable from outside the host."""
        if self.mode == "hub":
            return {"hub.api_port": self.hub.api_port, "proxy.api_port": self.proxy.api_port}
        return {}

    # -- rules that span components ----------------------------------------------------------

    @model_validator(mode="after")
    def _cross_component_rules(self) -> SiteSpec:
        problems = self._port_problems() + self._mode_problems() + self._tls_problems()
        if problems:
            raise SpecError(problems)
        return self

    def _port_problems(self) -> list[str]:
        named: list[tuple[str, int]] = []
        if self.mode == "hub":
            named += [
                ("proxy.port", self.proxy.port),
                ("proxy.api_port", self.proxy.api_port),
                ("hub.api_port", self.hub.api_port),
            ]
        else:
            named += [
                (f"notebook.instances.{i}.port", inst.port)
                for i, inst in enumerate(self.notebook.instances)
            ]
        if self.tls.http_port is not None:
            named.append(("tls.http_port", self.tls.http_port))
        problems = []
        seen: dict[int, str] = {}
        for name, port in named:
            if port in KERNEL_PORTS:
                problems.append(
                    f"{name}: {port} is in 49152-65535, the range kernels use on loopback; "
                    "pick a port below 49152"
                )
            if port in seen:
                problems.append(f"{name}: {port} is already used by {seen[port]}")
            seen.setdefault(port, name)
        for port in self.firewall.ssh_ports:
            if port in seen:
                problems.append(f"firewall.ssh_ports: {port} is also {seen[port]}")
            if port in KERNEL_PORTS:
                problems.append(
                    f"firewall.ssh_ports: {port} is in 49152-65535, which stays reachable from "
                    "loopback only (kernels); move sshd below 49152"
                )
        return problems

    def _mode_problems(self) -> list[str]:
        if self.mode == "notebook" and not self.notebook.instances:
            return ["notebook.instances: mode 'notebook' needs at least one instance"]
        if self.mode == "hub":
            return self._hub_access_problems()
        return []

    def _hub_access_problems(self) -> list[str]:
        auth, users = self.hub.auth, self.users
        group_rule = auth.grants_access()
        if not (users.allow_all or users.allowed_names or group_rule):
            return [
                "users: JupyterHub 5+ lets nobody log in without an allow rule: list "
                "users.accounts or users.allowed, an allowed group or organization in hub.auth, "
                "or set users.allow_all = True"
            ]
        if auth.needs_allow_all and not users.allow_all:
            return [f"users.allow_all: the {auth.type} authenticator accepts any user name; "
                    "set allow_all = True to say so"]
        if not users.allow_all and not group_rule:
            stray = sorted(set(users.admin_names) - set(users.allowed_names))
            if stray:
                return [
                    f"users.admins: {', '.join(stray)} must also be allowed to log in "
                    "(add to users.allowed or users.accounts)"
                ]
        return []

    def _tls_problems(self) -> list[str]:
        return self.tls.site_problems(self.ddns)


COMPONENTS = tuple(SiteSpec.model_fields)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "spec"


def format_errors(exc: ValidationError) -> list[str]:
    """One `field.path: message` line per pydantic error, without pydantic's decoration."""
    problems = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, SpecError):
            problems.extend(inner.problems)
            continue
        message = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        if error["type"] == "extra_forbidden":
            message = "unknown key (typo?)"
        problems.append(f"{_loc(error['loc'])}: {message}")
    return problems


# Host data that is not the site spec: pyinfra's global arguments (`_sudo`), connector
# settings, the lab's own keys, and the user's own data, which takes an `x_` prefix.
FOREIGN_PREFIXES = ("_", "ssh_", "docker_", "dockerssh_", "vagrant_", "chroot_", "winrm_",
                    "local_", "terraform_", "lab_", "x_")


def unknown_top_level_keys(data: Mapping[str, Any]) -> list[str]:
    """Top-level data keys that are neither a component nor known foreign data."""
    problems = []
    for key in data:
        if key in COMPONENTS or key.startswith(FOREIGN_PREFIXES):
            continue
        close = difflib.get_close_matches(key, COMPONENTS, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else (
            f"the spec's keys are {', '.join(COMPONENTS)}; prefix data of your own with 'x_'")
        problems.append(f"{key}: unknown key, {hint}")
    return problems


def build_spec(data: Mapping[str, Any]) -> SiteSpec:
    """The site spec from a host's (merged) data; raises SpecError listing every problem."""
    problems = unknown_top_level_keys(data)
    problems += [
        f"{key}: is None; remove the key to get the default, or give a value"
        for key in COMPONENTS if key in data and data[key] is None
    ]
    raw = {key: data[key] for key in COMPONENTS if key in data and data[key] is not None}
    try:
        spec = SiteSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(problems + format_errors(exc)) from None
    if problems:
        raise SpecError(problems)
    return spec
