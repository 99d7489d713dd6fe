"""Backups of a site's state on the host (`pyinfra-jupyter backup` / `restore`)."""

from __future__ import annotations

from pydantic import Field

from .base import Model


class BackupSpec(Model):
    """Backups live in /var/backups/pyinfra-jupyter/STAMP on the host (root's, 0700)."""

    keep: int = Field(5, ge=1, le=100, description="How many backups to keep on the host.")
