"""Who may log in: system accounts to create, allow lists and admins.

Password files live on the controller: reading and making them is the controller's
preparation step (pyinfra_jupyter/controller.py), never the spec's.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import HubUser, Model, Text, UnixName


class Account(Model):
    """A system user created on the host (PAM logins, notebook-server owners)."""

    name: UnixName
    admin: bool = False
    groups: list[UnixName] = Field(default_factory=list)
    password: SecretStr | None = Field(None, description="Login password (PAM).")
    password_file: Text | None = Field(
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
        return self


class UsersSpec(Model):
    """JupyterHub 5+ lets nobody in without an allow rule: say who, explicitly."""

    accounts: list[Account] = Field(default_factory=list)
    allowed: list[HubUser] = Field(
        default_factory=list, description="Hub user names allowed to log in, besides accounts."
    )
    admins: list[HubUser] = Field(
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
