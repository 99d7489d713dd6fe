"""Who may log in: system accounts to create, allow lists and admins."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Model, UnixName


class Account(Model):
    """A system user created on the host (PAM logins, notebook-server owners)."""

    name: UnixName
    admin: bool = False
    groups: list[UnixName] = Field(default_factory=list)
    password: SecretStr | None = Field(None, description="Login password (PAM).")
    password_file: str | None = Field(
        None, description="A file on the controller holding the login password (mode 0600)."
    )
    generate_password: bool = Field(
        False,
        description="Make a random password into password_file (0600) when the file is missing.",
    )

    @field_validator("name")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value == "root":
            raise ValueError("root never logs in to Jupyter; name a normal user")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> Account:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.generate_password and self.password_file is None:
            raise ValueError("generate_password needs password_file (where to keep it)")
        if self.password_file is not None:
            path = Path(self.password_file).expanduser()
            if not path.exists() and self.generate_password:
                return self
            if not path.is_file():
                raise ValueError(f"password_file {self.password_file} does not exist")
            if path.stat().st_mode & 0o077:
                raise ValueError(
                    f"password_file {self.password_file} is readable by others: chmod 600 it"
                )
        return self

    def login_password(self) -> SecretStr | None:
        """The password, read from password_file when given there (made first if asked to)."""
        if self.password_file is None:
            return self.password
        path = Path(self.password_file).expanduser()
        if not path.exists() and self.generate_password:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # O_EXCL + 0600: never readable by others, never overwrite a concurrent writer.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(18) + "\n")
        return SecretStr(path.read_text().strip())


class UsersSpec(Model):
    """JupyterHub 5+ lets nobody in without an allow rule: say who, explicitly."""

    accounts: list[Account] = Field(default_factory=list)
    allowed: list[str] = Field(
        default_factory=list, description="Hub user names allowed to log in, besides accounts."
    )
    admins: list[str] = Field(
        default_factory=list, description="Hub admin user names, besides accounts with admin."
    )
    allow_all: bool = Field(
        False, description="Let in anyone the authenticator accepts (e.g. every PAM user)."
    )

    @field_validator("accounts")
    @classmethod
    def _unique(cls, accounts: list[Account]) -> list[Account]:
        seen: set[str] = set()
        for account in accounts:
            if account.name in seen:
                raise ValueError(f"account {account.name!r} is listed twice")
            seen.add(account.name)
        return accounts

    @property
    def admin_names(self) -> list[str]:
        names = [a.name for a in self.accounts if a.admin] + list(self.admins)
        return sorted(set(names))

    @property
    def allowed_names(self) -> list[str]:
        return sorted({a.name for a in self.accounts} | set(self.allowed))
