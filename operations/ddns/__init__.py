"""Dynamic DNS updater. Validated by the spec; the updater itself arrives with the DDNS work."""

from __future__ import annotations

from pyinfra_jupyter.spec import SiteSpec

from ..items import Item
from ..site import Site

NAME = "ddns"
TITLE = "Dynamic DNS"


def wanted(spec: SiteSpec) -> bool:
    return False


def items(site: Site) -> list[Item]:
    return []
