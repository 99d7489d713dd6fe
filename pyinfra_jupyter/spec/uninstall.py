"""What `pyinfra inventory/<site>.py uninstall.py` keeps (uninstall.py, operations/uninstall.py)."""

from __future__ import annotations

from pydantic import Field

from .base import Model


class UninstallSpec(Model):
    """The uninstall removes what the deploy installed; these say what it keeps."""

    keep_backup: bool = Field(
        True,
        description="Keep the backup the uninstall takes first (and only it) in "
        "/var/backups/pyinfra-jupyter. false: remove every backup.",
    )
    keep_homes: bool = Field(
        True,
        description="Keep the accounts the deploy made for people (users.accounts, notebook "
        "instance users) and their home directories. false: delete those accounts with their "
        "homes (notebooks included).",
    )
