"""Single-user Jupyter servers (JupyterLab on Jupyter Server), one or more named instances."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Model, Package, Port, Slug, SystemPath, UnixName, UrlPath, UserPath, Version


class NotebookInstance(Model):
    """One server: its own user, port, directory, password and systemd unit."""

    name: Slug = "default"
    user: UnixName = "jupyter"
    port: Port = 8888
    ip: str = Field("0.0.0.0", description="Address to listen on; '*' means all.")
    root_dir: UserPath | None = Field(
        None, description="Notebook directory, made and owned by the instance user; "
        "default ~USER/notebooks."
    )
    base_url: UrlPath = "/"
    password_hash: str | None = Field(
        None,
        description="argon2 hash as made by jupyter_server.auth.passwd(); never a plaintext.",
    )
    password: SecretStr | None = Field(None, description="A password the deploy hashes (argon2).")
    packages: list[Package] = Field(default_factory=list, description="Extra kernel packages.")
    allow_remote_access: bool = True

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value in ("*", ""):
            return "0.0.0.0"
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address (or '*')") from None
        return value

    @field_validator("user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value == "root":
            raise ValueError("a notebook server never runs as root: name a dedicated user")
        return value

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("sha1:"):
            raise ValueError(
                "sha1 password hashes (the old notebook's format) are fast to brute-force and no "
                "longer made by Jupyter: give an argon2 hash from "
                "`python -c 'from jupyter_server.auth import passwd; print(passwd())'`, "
                "or give `password` and let the deploy hash it"
            )
        if not re.fullmatch(
            r"argon2:\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+",
            value,
        ):
            raise ValueError("must be an argon2 hash ('argon2:$argon2id$...') from passwd()")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> NotebookInstance:
        if (self.password_hash is None) == (self.password is None):
            raise ValueError("give exactly one of password_hash and password")
        return self

    @property
    def notebook_dir(self) -> str:
        return self.root_dir or f"/home/{self.user}/notebooks"


class NotebookSpec(Model):
    jupyterlab_version: Version | None = Field(
        None,
        description="JupyterLab release; default: the pin for the host's distro.",
    )
    notebook7: bool = Field(
        False, description="Also install Notebook 7 (the classic document UI at /tree)."
    )
    prefix: SystemPath = Field("/opt/jupyter", description="Where each instance's venv lives.")
    instances: list[NotebookInstance] = Field(default_factory=list)

    @field_validator("instances")
    @classmethod
    def _unique(cls, instances: list[NotebookInstance]) -> list[NotebookInstance]:
        for attr in ("name", "port"):
            seen: set = set()
            for instance in instances:
                value = getattr(instance, attr)
                if value in seen:
                    raise ValueError(f"two instances have the {attr} {value!r}")
                seen.add(value)
        return instances

    @field_validator("instances")
    @classmethod
    def _separate_dirs(cls, instances: list[NotebookInstance]) -> list[NotebookInstance]:
        # One instance's directory inside (or equal to) another's flips its owner on every
        # run and has root create and chmod paths inside a tree another user controls. Two
        # servers of one user may share one directory.
        for j, later in enumerate(instances):
            for i, earlier in enumerate(instances[:j]):
                a, b = earlier.notebook_dir.split("/"), later.notebook_dir.split("/")
                if a[:len(b)] != b and b[:len(a)] != a or a == b and earlier.user == later.user:
                    continue
                how = "is" if a == b else "is inside" if len(b) > len(a) else "contains"
                raise ValueError(
                    f"instances.{j}.root_dir {later.notebook_dir!r} {how} "
                    f"instances.{i}.root_dir {earlier.notebook_dir!r} (instances "
                    f"{earlier.name!r} and {later.name!r}); give each instance a directory "
                    "of its own, not inside another's"
                )
        return instances
