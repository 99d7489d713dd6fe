"""The one place that reads raw host data: it builds the validated spec for a host."""

from __future__ import annotations

from pyinfra.api.exceptions import DeployError

from .spec import SiteSpec, SpecError, build_spec


def site_spec(host) -> SiteSpec:
    """The host's spec, or a DeployError listing `host: field.path: problem` lines."""
    try:
        return build_spec(host.data.dict())
    except SpecError as exc:
        lines = "\n".join(f"  {problem}" for problem in exc.problems)
        raise DeployError(f"invalid site spec for {host.name}:\n{lines}") from None
