"""The site spec: pydantic models for every component, and nothing that touches a host.

Group data holds one top-level key per component (pyinfra merges group data shallowly);
`build_spec(host.data)` turns them into one validated, immutable `SiteSpec`.
"""

from .site import COMPONENTS, SiteSpec, SpecError, build_spec, format_errors

__all__ = ["COMPONENTS", "SiteSpec", "SpecError", "build_spec", "format_errors"]
