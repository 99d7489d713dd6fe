"""JupyterHub: authentication, spawner, idle culler and where it keeps its state.

Each authenticator and spawner variant carries its own behaviour — the class JupyterHub
loads, the packages it needs, its secrets, whether it is itself an allow rule, and its
config traits — so the hub config renders any of them generically and adding a variant
touches its model (and its tests) only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import Field, SecretStr, field_validator

from .base import (
    Domain,
    HostName,
    HttpsUrl,
    Model,
    Port,
    SystemPath,
    Text,
    Token,
    UnixName,
    UrlTarget,
    Version,
)


@dataclass(frozen=True)
class SecretRef:
    """A config value read at start from the hub's 0600 secrets file, never rendered."""

    name: str


Traits = dict[str, dict[str, Any]]  # {"ClassName": {"trait": value}}


# Every login ends in a Unix account: the local and systemd spawners run the user's server
# as the account of that name (an existing one, or one the Local* authenticators make). A
# name from LDAP, an OAuth provider or a sign-up is whoever's choice, and PAM would let a
# guessed root password in: a name whose account is one of the system's (root, daemon,
# www-data, nobody: a UID outside login.defs' UID_MIN..UID_MAX) is blocked, whatever the
# authenticator. Rendered into the hub's config, which names the class through it.
SYSTEM_ACCOUNTS_GUARD = '''\
import pwd

from traitlets.utils.importstring import import_item


def _login_defs(key, default):
    try:
        with open("/etc/login.defs") as defs:
            for line in defs:
                words = line.split()
                if len(words) >= 2 and words[0] == key and words[1].isdigit():
                    return int(words[1])
    except OSError:
        pass
    return default


# The UIDs of people's accounts on this host; every other account is the system's.
USER_UIDS = range(_login_defs("UID_MIN", 1000), _login_defs("UID_MAX", 60000) + 1)


class RefuseSystemAccounts:
    """Refuses a login named after a system account of this host."""

    def check_blocked_users(self, username, authentication=None):
        # Blocked, not "not allowed": the hub skips check_allowed under allow_all, never this.
        try:
            uid = pwd.getpwnam(username).pw_uid
        except KeyError:
            uid = None  # no account yet: made at this first login
        if uid is not None and uid not in USER_UIDS:
            self.log.warning("Refused %s: a system account of this host", username)
            return False
        return super().check_blocked_users(username, authentication)


def refuse_system_accounts(base):
    """`base` (a class, or its dotted name) with RefuseSystemAccounts first."""
    if isinstance(base, str):
        base = import_item(base)
    return type(base.__name__, (RefuseSystemAccounts, base), {"__doc__": base.__doc__})
'''


class Authenticator(Model):
    """What every authenticator variant tells the hub component (override what differs)."""

    authenticator_class: ClassVar[str]
    # pip distributions it needs besides jupyterhub; versions come from the platform's pins.
    requirements: ClassVar[tuple[str, ...]] = ()
    # The config check constructs the authenticator to run its validators; not for those
    # whose constructor has side effects (NativeAuthenticator opens its database).
    constructible: ClassVar[bool] = True
    # Accepts any user name (test authenticators): the site must say allow_all explicitly.
    needs_allow_all: ClassVar[bool] = False
    # Logs users in with their system password: accounts' passwords are set on the host.
    uses_system_passwords: ClassVar[bool] = False
    # Python the hub's config runs before naming the class: a class it defines there (then
    # `authenticator_class` is that class's name, not an import path).
    config_code: ClassVar[str | None] = None

    def class_name(self) -> str:
        return self.authenticator_class

    def secrets(self) -> dict[str, SecretStr]:
        """Secret values the config reads from the secrets file, by name."""
        return {}

    def grants_access(self) -> bool:
        """True when the authenticator's own settings are an allow rule (groups, orgs...)."""
        return False

    def admits_everyone_it_accepts(self) -> bool:
        """True when it authorises users itself, so the hub must let all it accepts in."""
        return False

    def traits(self) -> Traits:
        return {}

    def creates_system_users(self) -> bool:
        """True when it adds a Unix account at a user's first login (the hub then writes
        /etc/passwd and friends): JupyterHub's LocalAuthenticator with create_system_users."""
        return bool(self.traits().get("LocalAuthenticator", {}).get("create_system_users"))

    # -- a hub whose users have no Unix account on its host (servers in pods: z2jh) ----------

    # The same authenticator without its Local* layer, which makes a system user at first
    # login; None: the class itself.
    pod_authenticator_class: ClassVar[str | None] = None
    # What else of this authenticator's lives in the hub's database (it moves with it).
    pod_database_holds: ClassVar[tuple[str, ...]] = ()

    def pod_class_name(self) -> str:
        return self.pod_authenticator_class or self.class_name()

    def pod_traits(self) -> Traits:
        """`traits()` without the settings that manage system users: there are none to make."""
        return {cls: values for cls, values in self.traits().items()
                if cls != "LocalAuthenticator"}

    def pod_gaps(self) -> list[tuple[str, str]]:
        """(field, why) for what it relies on that such a hub does not have."""
        return []


class PamAuth(Authenticator):
    """Log in with the host's system accounts."""

    type: Literal["pam"]
    admin_groups: list[UnixName] = Field(
        default_factory=list, description="Members of these groups are hub admins."
    )
    allowed_groups: list[UnixName] = Field(default_factory=list)

    authenticator_class: ClassVar[str] = "jupyterhub.auth.PAMAuthenticator"
    uses_system_passwords: ClassVar[bool] = True

    def grants_access(self) -> bool:
        return bool(self.allowed_groups)

    def traits(self) -> Traits:
        return {"PAMAuthenticator": {"admin_groups": list(self.admin_groups),
                                     "allowed_groups": list(self.allowed_groups)}}

    def pod_traits(self) -> Traits:
        # Unix groups of the host: a hub pod has none.
        return {}

    def pod_gaps(self) -> list[tuple[str, str]]:
        gaps = [("hub.auth", "PAM checks the host's system accounts and passwords, and a hub pod "
                 "has none: nobody can log in until hub.config.JupyterHub.authenticator_class "
                 "names another authenticator (native, an OAuth provider, LDAP)")]
        for name, groups, users in (("admin_groups", self.admin_groups, "users.admins"),
                                    ("allowed_groups", self.allowed_groups, "users.allowed")):
            if groups:
                gaps.append((f"hub.auth.{name}", f"Unix groups of the host: list their "
                             f"members in {users}, or use your new authenticator's own groups"))
        return gaps


# NativeAuthenticator keeps its users in the hub's database and knows nothing of Unix
# accounts, and the local and systemd spawners run each user's server as one: without
# LocalAuthenticator an approved user logs in and their server cannot start (no such user).
# The class below adds it, as LDAP's does, so an approved user's first login makes the
# account (private home); a sign-up can never become a system account of the host
# (SYSTEM_ACCOUNTS_GUARD below, as for every login).
# And NativeAuthenticator 1.3.0 (its latest release) times each POST /hub/login with the
# handler's `statsd`, which JupyterHub 6 removed: every login answered HTTP 500
# (AttributeError), and the error page itself failed (its `_render` refuses JupyterHub 6's
# `sync`). Its login handler is swapped for one with a no-op timer and a `_render` that
# takes `sync`, only while JupyterHub has no statsd.
LOCAL_NATIVE_CLASS = '''\
from jupyterhub.auth import LocalAuthenticator
from jupyterhub.handlers import BaseHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native_handlers
from tornado.escape import url_escape
from tornado.httputil import url_concat


class _NoTimer:
    def timer(self, *args, **kwargs):
        return self

    def start(self):
        return self

    def stop(self, *args, **kwargs):
        pass


class NativeLoginHandler(native_handlers.LoginHandler):
    """NativeAuthenticator's login page on a JupyterHub without statsd (6+)."""

    statsd = _NoTimer()

    def _render(self, login_error=None, username=None, sync=False, **ignored):
        return self.render_template(
            "native-login.html",
            sync=sync,
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url),
                {"next": self.get_argument("next", "")},
            ),
        )


class LocalNativeAuthenticator(NativeAuthenticator, LocalAuthenticator):
    """Sign-ups an admin approves; a Unix account (private home) made at first login."""

    def get_handlers(self, app):
        handlers = super().get_handlers(app)
        if hasattr(BaseHandler, "statsd"):
            return handlers
        return [(route, NativeLoginHandler if handler is native_handlers.LoginHandler
                 else handler) for route, handler in handlers]

'''


class NativeAuth(Authenticator):
    """NativeAuthenticator: users sign up on the hub, admins approve them."""

    type: Literal["native"]
    open_signup: bool = False
    minimum_password_length: int = Field(10, ge=8)

    authenticator_class: ClassVar[str] = "LocalNativeAuthenticator"
    config_code: ClassVar[str | None] = LOCAL_NATIVE_CLASS
    pod_authenticator_class: ClassVar[str | None] = "nativeauthenticator.NativeAuthenticator"
    requirements: ClassVar[tuple[str, ...]] = ("jupyterhub-nativeauthenticator",)
    constructible: ClassVar[bool] = False
    pod_database_holds: ClassVar[tuple[str, ...]] = (
        "NativeAuthenticator's sign-ups and passwords",)

    def grants_access(self) -> bool:
        return self.open_signup

    def admits_everyone_it_accepts(self) -> bool:
        # Approval (or open sign-up) is its own allow rule.
        return True

    def traits(self) -> Traits:
        return {"NativeAuthenticator": {"open_signup": self.open_signup,
                                        "minimum_password_length": self.minimum_password_length},
                "LocalAuthenticator": {"create_system_users": True,
                                       "add_user_cmd": list(ADD_USER_CMD)}}


# How LocalAuthenticator (OAuth, LDAP, native) makes an account at a user's first login (JupyterHub
# appends the name), instead of its default (Debian's `adduser`, which gives 0755 homes
# before Debian 12 and is `useradd` under another name, refusing `--gecos`, on RHEL):
# useradd everywhere, a user group, and a home only its owner can read (UMASK 077 makes it
# 0700 unless login.defs sets HOME_MODE, the admin's choice; every shadow-utils knows UMASK,
# HOME_MODE is 4.8+, not CentOS 7's).
ADD_USER_CMD = ("useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
                "--key", "UMASK=0077")


class _OAuth(Authenticator):
    client_id: Token
    client_secret: SecretStr
    callback_url: HttpsUrl = Field(description="https://YOUR-HUB/hub/oauth_callback")

    requirements: ClassVar[tuple[str, ...]] = ("oauthenticator",)

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, url: str) -> str:
        if not url.split("?")[0].endswith("/hub/oauth_callback"):
            raise ValueError("must end with /hub/oauth_callback")
        return url

    def secrets(self) -> dict[str, SecretStr]:
        return {"oauth_client_secret": self.client_secret}

    def traits(self) -> Traits:
        return {
            "OAuthenticator": {"client_id": self.client_id,
                               "client_secret": SecretRef("oauth_client_secret"),
                               "oauth_callback_url": self.callback_url},
            # The local spawner runs each server as a Unix user: make one at first login,
            # with a private home. JupyterHub's default is Debian's `adduser`, whose home
            # mode is /etc/adduser.conf's (0755 on Debian 11 and on hosts upgraded from it)
            # and whose flags RHEL's adduser (useradd) refuses. A umask, not HOME_MODE:
            # every shadow-utils release knows UMASK (HOME_MODE is 4.8+, not CentOS 7's).
            "LocalAuthenticator": {"create_system_users": True,
                                   "add_user_cmd": list(ADD_USER_CMD)},
        }


class GitHubAuth(_OAuth):
    type: Literal["github"]
    allowed_organizations: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,39}(:[A-Za-z0-9_.-]{1,100})?$")]] = Field(
        default_factory=list, description="GitHub organizations (or org:team) allowed in."
    )

    # The Local* variants create a system user at first login.
    authenticator_class: ClassVar[str] = "oauthenticator.github.LocalGitHubOAuthenticator"
    pod_authenticator_class: ClassVar[str | None] = "oauthenticator.github.GitHubOAuthenticator"

    def grants_access(self) -> bool:
        return bool(self.allowed_organizations)

    def traits(self) -> Traits:
        github: dict[str, Any] = {"allowed_organizations": list(self.allowed_organizations)}
        if self.allowed_organizations:
            # GitHub answers "is a member" for private memberships (its default) only to a
            # token with read:org; without it those members would be refused.
            github["scope"] = ["read:org"]
        return {**super().traits(), "GitHubOAuthenticator": github}


class GoogleAuth(_OAuth):
    type: Literal["google"]
    hosted_domain: list[Domain] = Field(default_factory=list)

    authenticator_class: ClassVar[str] = "oauthenticator.google.LocalGoogleOAuthenticator"
    pod_authenticator_class: ClassVar[str | None] = "oauthenticator.google.GoogleOAuthenticator"

    def grants_access(self) -> bool:
        return bool(self.hosted_domain)

    def traits(self) -> Traits:
        return {**super().traits(), "GoogleOAuthenticator": {
            "hosted_domain": list(self.hosted_domain)}}


class GenericOAuth(_OAuth):
    type: Literal["generic-oauth"]
    authorize_url: HttpsUrl
    token_url: HttpsUrl
    userdata_url: HttpsUrl
    username_claim: Token = "preferred_username"
    scope: list[Token] = Field(default_factory=lambda: ["openid", "profile"])

    authenticator_class: ClassVar[str] = "oauthenticator.generic.LocalGenericOAuthenticator"
    pod_authenticator_class: ClassVar[str | None] = "oauthenticator.generic.GenericOAuthenticator"

    def traits(self) -> Traits:
        return {**super().traits(), "GenericOAuthenticator": {
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "userdata_url": self.userdata_url,
            "username_claim": self.username_claim,
            "scope": list(self.scope),
        }}


# LDAPAuthenticator knows nothing of Unix accounts, and the local spawner runs each user's
# server as one: this class adds JupyterHub's LocalAuthenticator (the Local*OAuthenticator
# pattern) so a first login makes the account. Its group rule stays LDAP's: allowed_groups
# holds group DNs, which LocalAuthenticator would otherwise look up as Unix groups (and
# fail on, for a user with no account yet). Rendered into the hub's config, before it is
# named as the authenticator class.
LOCAL_LDAP_CLASS = '''\
from jupyterhub.auth import LocalAuthenticator
from ldapauthenticator import LDAPAuthenticator


class LocalLDAPAuthenticator(LDAPAuthenticator, LocalAuthenticator):
    """LDAP logins; a Unix account (private home) made at a user's first login."""

    def check_allowed_groups(self, username, authentication=None):
        return False  # LDAP group DNs, checked by LDAPAuthenticator.check_allowed
'''


class LdapAuth(Authenticator):
    type: Literal["ldap"]
    server_address: HostName
    server_port: Port = 636
    use_ssl: bool = True
    bind_dn_template: list[Text] = Field(
        min_length=1, description="e.g. uid={username},ou=people,dc=example,dc=org"
    )
    allowed_groups: list[Text] = Field(default_factory=list, description="Group DNs.")

    authenticator_class: ClassVar[str] = "LocalLDAPAuthenticator"
    config_code: ClassVar[str | None] = LOCAL_LDAP_CLASS
    pod_authenticator_class: ClassVar[str | None] = "ldapauthenticator.LDAPAuthenticator"
    requirements: ClassVar[tuple[str, ...]] = ("jupyterhub-ldapauthenticator",)

    @field_validator("bind_dn_template")
    @classmethod
    def _has_username(cls, templates: list[str]) -> list[str]:
        for template in templates:
            if "{username}" not in template:
                raise ValueError(f"{template!r} has no {{username}} placeholder")
        return templates

    def grants_access(self) -> bool:
        return bool(self.allowed_groups)

    def traits(self) -> Traits:
        return {
            "LDAPAuthenticator": {
                "server_address": self.server_address,
                "server_port": self.server_port,
                "tls_strategy": "on_connect" if self.use_ssl else "before_bind",
                # ldap3's Tls defaults to CERT_NONE: any certificate, any name, would do, and
                # users' passwords would go to whoever answers. Validate the server's chain
                # against the system store (which holds network.ca_certificates; the hub's
                # unit points SSL_CERT_FILE at it) and its name (ldap3 checks server_address
                # against the certificate once the chain is validated).
                "tls_kwargs": {"validate": int(ssl.CERT_REQUIRED)},
                "bind_dn_template": list(self.bind_dn_template),
                "allowed_groups": list(self.allowed_groups),
            },
            "LocalAuthenticator": {"create_system_users": True,
                                   "add_user_cmd": list(ADD_USER_CMD)},
        }


class DummyAuth(Authenticator):
    """For tests only: any user name, one shared password."""

    type: Literal["dummy"]
    password: SecretStr | None = None

    authenticator_class: ClassVar[str] = "jupyterhub.auth.DummyAuthenticator"
    needs_allow_all: ClassVar[bool] = True

    def class_name(self) -> str:
        # DummyAuthenticator.password is deprecated since JupyterHub 5.3.
        if self.password is not None:
            return "jupyterhub.authenticators.shared.SharedPasswordAuthenticator"
        return self.authenticator_class

    def secrets(self) -> dict[str, SecretStr]:
        return {"dummy_password": self.password} if self.password is not None else {}

    def traits(self) -> Traits:
        if self.password is None:
            return {}
        return {"SharedPasswordAuthenticator": {"user_password": SecretRef("dummy_password")}}


AuthSpec = Annotated[
    PamAuth | NativeAuth | GitHubAuth | GoogleAuth | GenericOAuth | LdapAuth | DummyAuth,
    Field(discriminator="type"),
]


class Limits(NamedTuple):
    """Per-user caps; None: none."""

    memory: str | None  # digits with an optional K, M, G or T (powers of 1024), as systemd's
    cpu: float | None  # cores


class Spawner(Model):
    spawner_class: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]] = ()
    # Platform capabilities (operations/platform.py names them) the variant cannot work without.
    needs: ClassVar[tuple[str, ...]] = ()

    def traits(self) -> Traits:
        return {}

    def limits(self) -> Limits:
        """What each user's server may use at most, whatever enforces it (an export needs it)."""
        return Limits(None, None)


class LocalSpawner(Spawner):
    type: Literal["local"] = "local"

    spawner_class: ClassVar[str] = "jupyterhub.spawner.LocalProcessSpawner"


class SystemdSpawner(Spawner):
    """Each user server in its own systemd unit, with limits (needs a recent systemd)."""

    type: Literal["systemd"]
    mem_limit: str | None = Field(None, pattern=r"^\d{1,6}[KMGT]?$", description="e.g. 2G")
    cpu_limit: float | None = Field(None, gt=0, le=1024, description="CPU cores, e.g. 1.5")

    spawner_class: ClassVar[str] = "systemdspawner.SystemdSpawner"
    requirements: ClassVar[tuple[str, ...]] = ("jupyterhub-systemdspawner",)
    needs: ClassVar[tuple[str, ...]] = ("transient_unit_limits",)

    def traits(self) -> Traits:
        settings: dict[str, Any] = {
            # Users' servers never see each other's /tmp or the host's devices, and cannot
            # gain privileges through sudo.
            "isolate_tmp": True,
            "isolate_devices": True,
            "disable_user_sudo": True,
        }
        if self.mem_limit:
            settings["mem_limit"] = self.mem_limit
        if self.cpu_limit:
            settings["cpu_limit"] = self.cpu_limit
        return {"SystemdSpawner": settings}

    def limits(self) -> Limits:
        return Limits(self.mem_limit, self.cpu_limit)


SpawnerSpec = Annotated[LocalSpawner | SystemdSpawner, Field(discriminator="type")]


class IdleCuller(Model):
    """Stop user servers idle longer than `timeout` seconds (a hub-managed service)."""

    enabled: bool = True
    timeout: int = Field(3600, ge=60, le=31_536_000)
    every: int = Field(300, ge=10, le=86_400, description="Seconds between checks.")
    max_age: int = Field(0, ge=0, le=31_536_000, description="Stop servers older than this; 0: never.")


class HubSpec(Model):
    version: Version | None = Field(
        None, description="JupyterHub release; default: the pin for the host's distro."
    )
    jupyterlab_version: Version | None = None
    prefix: SystemPath = Field("/opt/jupyterhub", description="The hub's venv.")
    state_dir: SystemPath = Field(
        "/var/lib/jupyterhub", description="sqlite database and cookie secret."
    )
    api_port: Port = Field(8081, description="Hub API, on loopback only.")
    default_url: UrlTarget = "/lab"
    auth: AuthSpec = Field(default_factory=lambda: PamAuth(type="pam"))
    spawner: SpawnerSpec = Field(default_factory=LocalSpawner)
    idle_culler: IdleCuller = Field(default_factory=IdleCuller)
    http_timeout: int = Field(120, ge=10, le=3600,
                              description="Seconds a user server may take to answer.")
    start_timeout: int = Field(120, ge=10, le=3600)
