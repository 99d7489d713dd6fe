"""JupyterHub: authentication, spawner, idle culler and where it keeps its state."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from .base import AbsPath, Model, Port, UnixName


class PamAuth(Model):
    """Log in with the host's system accounts (seeds 000, 004)."""

    type: Literal["pam"]
    admin_groups: list[UnixName] = Field(
        default_factory=list, description="Members of these groups are hub admins (seed 004)."
    )
    allowed_groups: list[UnixName] = Field(default_factory=list)


class NativeAuth(Model):
    """NativeAuthenticator: users sign up on the hub, admins approve them."""

    type: Literal["native"]
    open_signup: bool = False
    minimum_password_length: int = Field(10, ge=8)


class _OAuth(Model):
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    callback_url: AnyHttpUrl = Field(description="https://YOUR-HUB/hub/oauth_callback")

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if not (url.path or "").endswith("/hub/oauth_callback"):
            raise ValueError("must end with /hub/oauth_callback")
        return url


class GitHubAuth(_OAuth):
    type: Literal["github"]
    allowed_organizations: list[str] = Field(default_factory=list)


class GoogleAuth(_OAuth):
    type: Literal["google"]
    hosted_domain: list[str] = Field(default_factory=list)


class GenericOAuth(_OAuth):
    type: Literal["generic-oauth"]
    authorize_url: AnyHttpUrl
    token_url: AnyHttpUrl
    userdata_url: AnyHttpUrl
    username_claim: str = "preferred_username"
    scope: list[str] = Field(default_factory=lambda: ["openid", "profile"])


class LdapAuth(Model):
    type: Literal["ldap"]
    server_address: str = Field(min_length=1)
    server_port: Port = 636
    use_ssl: bool = True
    bind_dn_template: list[str] = Field(
        min_length=1, description="e.g. uid={username},ou=people,dc=example,dc=org"
    )
    allowed_groups: list[str] = Field(default_factory=list, description="Group DNs.")

    @field_validator("bind_dn_template")
    @classmethod
    def _has_username(cls, templates: list[str]) -> list[str]:
        for template in templates:
            if "{username}" not in template:
                raise ValueError(f"{template!r} has no {{username}} placeholder")
        return templates


class DummyAuth(Model):
    """For tests only: any user name, one shared password."""

    type: Literal["dummy"]
    password: SecretStr | None = None


AuthSpec = Annotated[
    PamAuth | NativeAuth | GitHubAuth | GoogleAuth | GenericOAuth | LdapAuth | DummyAuth,
    Field(discriminator="type"),
]


class LocalSpawner(Model):
    type: Literal["local"] = "local"


class SystemdSpawner(Model):
    """Each user server in its own systemd unit, with limits (needs systemd 243 or newer)."""

    type: Literal["systemd"]
    mem_limit: str | None = Field(None, pattern=r"^\d+[KMGT]?$", description="e.g. 2G")
    cpu_limit: float | None = Field(None, gt=0, description="CPU cores, e.g. 1.5")


SpawnerSpec = Annotated[LocalSpawner | SystemdSpawner, Field(discriminator="type")]


class IdleCuller(Model):
    """Stop user servers idle longer than `timeout` seconds (a hub-managed service)."""

    enabled: bool = True
    timeout: int = Field(3600, ge=60)
    every: int = Field(300, ge=10, description="Seconds between checks.")
    max_age: int = Field(0, ge=0, description="Stop servers older than this; 0: never.")


class HubSpec(Model):
    version: str | None = Field(
        None, pattern=r"^\d+\.\d+\.\d+$",
        description="JupyterHub release; default: the pin for the host's distro.",
    )
    jupyterlab_version: str | None = Field(None, pattern=r"^\d+\.\d+\.\d+$")
    prefix: AbsPath = Field("/opt/jupyterhub", description="The hub's venv.")
    state_dir: AbsPath = Field(
        "/var/lib/jupyterhub", description="sqlite database and cookie secret."
    )
    api_port: Port = Field(8081, description="Hub API, on loopback only.")
    default_url: str = Field("/lab", pattern=r"^/")
    auth: AuthSpec = Field(default_factory=lambda: PamAuth(type="pam"))
    spawner: SpawnerSpec = Field(default_factory=LocalSpawner)
    idle_culler: IdleCuller = Field(default_factory=IdleCuller)
    http_timeout: int = Field(120, ge=10, description="Seconds a user server may take to answer.")
    start_timeout: int = Field(120, ge=10)
