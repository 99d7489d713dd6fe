"""Our own facts, only where pyinfra has none."""

from __future__ import annotations

import re

from pyinfra.api import FactBase


class SystemdVersion(FactBase[int | None]):
    """The host's systemd version as a number (e.g. 252), or None without systemd."""

    def command(self) -> str:
        return "systemctl --version 2>/dev/null | head -n 1 || true"

    def process(self, output: list[str]) -> int | None:
        match = re.match(r"systemd (\d+)", output[0] if output else "")
        return int(match.group(1)) if match else None
