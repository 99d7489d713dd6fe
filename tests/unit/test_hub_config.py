"""The hub's rendered config: every auth type loads as JupyterHub loads it, without secrets.

Needs jupyterhub and the authenticators in this venv (the pins of operations/platform.py),
because the check script the deploy runs on the host is run here too.
"""

from __future__ import annotations

import json
import pwd
import subprocess
import sys
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from jupyterhub.auth import DummyAuthenticator
from pydantic import SecretStr

from operations import hub as hub_ops
from operations.ops.accounts import password_matches, sha512_crypt
from operations.platform import MODERN
from pyinfra_jupyter.spec import build_spec
from pyinfra_jupyter.spec.hub import Authenticator, SecretRef
from tests.support import make_site, platform, with_hub_prefix

SECRET = "s3cret-value-never-in-config"

ADMIN = {"name": "admin", "admin": True, "password": "pw-admin-123"}

AUTHS = {
    "pam": {"type": "pam", "admin_groups": ["wheel"], "allowed_groups": ["students"]},
    "native": {"type": "native", "open_signup": True},
    "github": {
        "type": "github", "client_id": "id", "client_secret": SECRET,
        "callback_url": "https://hub.example.org/hub/oauth_callback",
        "allowed_organizations": ["my-org"],
    },
    "google": {
        "type": "google", "client_id": "id", "client_secret": SECRET,
        "callback_url": "https://hub.example.org/hub/oauth_callback",
        "hosted_domain": ["example.org"],
    },
    "generic-oauth": {
        "type": "generic-oauth", "client_id": "id", "client_secret": SECRET,
        "callback_url": "https://hub.example.org/hub/oauth_callback",
        "authorize_url": "https://sso.example.org/auth",
        "token_url": "https://sso.example.org/token",
        "userdata_url": "https://sso.example.org/userinfo",
    },
    "ldap": {
        "type": "ldap", "server_address": "ldap.example.org",
        "bind_dn_template": ["uid={username},ou=people,dc=example,dc=org"],
    },
    "dummy": {"type": "dummy"},
    "dummy-password": {"type": "dummy", "password": SECRET},
}

PLATFORM = platform("debian12")


# The check imports what the config names and finds the commands it runs: point the hub's
# prefix at this venv, which has the same packages.
PREFIX = str(Path(sys.executable).parent.parent)


def spec_for(auth: dict, **hub):
    spec = build_spec({
        "mode": "hub",
        "hub": {"auth": auth, **hub},
        "users": {"accounts": [ADMIN], "allow_all": auth["type"] == "dummy"},
    })
    return with_hub_prefix(spec, PREFIX)


def load(tmp_path: Path, text: str, *extra: str):
    """Run the deploy's own check script on a rendered config; return the loaded config."""
    from traitlets.config.loader import PyFileConfigLoader

    path = tmp_path / "jupyterhub_config.py"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, str(hub_ops.CHECK_SOURCE), str(path), *extra], capture_output=True,
        text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "config ok" in result.stdout
    return PyFileConfigLoader(path.name, str(tmp_path)).load_config()


@pytest.mark.parametrize("name", sorted(AUTHS))
def test_every_auth_renders_a_config_that_loads(tmp_path, name):
    spec = spec_for(AUTHS[name])
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({k: v.get_secret_value()
                                   for k, v in hub_ops.secrets(spec).items()}))
    text = hub_ops.render_config(spec, secrets_path=str(secrets))
    assert SECRET not in text
    compile(text, "jupyterhub_config.py", "exec")
    config = load(tmp_path, text, *([] if spec.hub.auth.constructible else ["--no-construct"]))

    hub = config.JupyterHub
    assert config.ConfigurableHTTPProxy.should_start is False
    assert config.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert hub.hub_bind_url == "http://127.0.0.1:8081"
    assert hub.cleanup_servers is False
    assert hub.cookie_secret_file == "/var/lib/jupyterhub/jupyterhub_cookie_secret"
    assert config.Spawner.default_url == "/lab"
    assert config.Authenticator.admin_users == ["admin"]
    assert "admin" in config.Authenticator.allowed_users
    if name.startswith(("github", "google", "generic")):
        assert config.OAuthenticator.client_secret == SECRET
    if name == "dummy-password":
        assert config.SharedPasswordAuthenticator.user_password == SECRET


def test_pam_groups_and_culler_scopes(tmp_path):
    config = load(tmp_path, hub_ops.render_config(
        spec_for(AUTHS["pam"], idle_culler={"timeout": 600, "every": 60})
    ))
    assert config.PAMAuthenticator.admin_groups == ["wheel"]
    assert config.PAMAuthenticator.allowed_groups == ["students"]
    (culler,) = config.JupyterHub.services
    assert "--timeout=600" in culler["command"] and "--cull-every=60" in culler["command"]
    (role,) = config.JupyterHub.load_roles
    assert role["services"] == ["idle-culler"]
    assert "admin:users" not in role["scopes"]
    assert {"list:users", "read:servers", "delete:servers"} <= set(role["scopes"])


@pytest.mark.parametrize("name", sorted(AUTHS))
def test_every_auth_refuses_the_hosts_system_accounts(tmp_path, name, monkeypatch):
    """Whatever says who someone is (LDAP, an OAuth provider, a sign-up, PAM), the spawner
    runs their server as the Unix account of that name: a system account's is refused."""
    spec = spec_for(AUTHS[name])
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({k: v.get_secret_value()
                                   for k, v in hub_ops.secrets(spec).items()}))
    config = load(tmp_path, hub_ops.render_config(spec, secrets_path=str(secrets)),
                  *([] if spec.hub.auth.constructible else ["--no-construct"]))
    cls = config.JupyterHub.authenticator_class
    # The class the spec names, under its own name, with the guard first.
    assert cls.__mro__[1].__name__ == "RefuseSystemAccounts"
    assert cls.__name__ == spec.hub.auth.class_name().rsplit(".", 1)[-1]
    # add_new_table=False: NativeAuthenticator's constructor would open the hub's database.
    auth = cls(config=config, **({"add_new_table": False} if name == "native" else {}))
    for system in ("root", "daemon", "nobody"):  # UIDs 0, 1 and 65534 (above UID_MAX)
        assert auth.check_blocked_users(system) is False, system
    people = {"dora": 1001, "eve": 1002}

    def getpwnam(user):
        if user not in people:
            raise KeyError(user)
        return type("pw", (), {"pw_uid": people[user]})

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    # A person's account, and a name with none yet, go on to the authenticator's own rule
    # (Google's needs its hosted domain in the model).
    model = {"name": "x", "auth_state": {"google_user": {"hd": "example.org"}}}
    assert auth.check_blocked_users("dora", model) is True
    assert auth.check_blocked_users("new-user-4711", model) is True
    auth.blocked_users = {"eve"}
    assert auth.check_blocked_users("eve", model) is False


def test_no_secrets_means_no_secrets_file():
    spec = spec_for(AUTHS["pam"])
    assert hub_ops.secrets(spec) == {}
    assert "_secrets" not in hub_ops.render_config(spec)


def test_systemd_spawner_limits(tmp_path):
    spec = spec_for(AUTHS["pam"], spawner={"type": "systemd", "mem_limit": "2G", "cpu_limit": 1.5})
    config = load(tmp_path, hub_ops.render_config(spec))
    assert config.JupyterHub.spawner_class == "systemdspawner.SystemdSpawner"
    assert config.SystemdSpawner.mem_limit == "2G"
    assert config.SystemdSpawner.cpu_limit == 1.5
    # Users' servers are isolated from each other and from sudo.
    assert config.SystemdSpawner.isolate_tmp is True
    assert config.SystemdSpawner.isolate_devices is True
    assert config.SystemdSpawner.disable_user_sudo is True
    assert "jupyterhub-systemdspawner==" + MODERN["jupyterhub-systemdspawner"] in (
        hub_ops.packages(spec, PLATFORM))


def test_a_broken_config_fails_the_check(tmp_path):
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c = get_config()\nc.JupyterHub.authenticator_class = "no.such.Auth"\n'
                    'c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"\n')
    result = subprocess.run([sys.executable, str(hub_ops.CHECK_SOURCE), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no" in result.stderr


@pytest.mark.parametrize("name", sorted(AUTHS))
def test_packages_are_pinned(name):
    for requirement in hub_ops.packages(spec_for(AUTHS[name]), PLATFORM):
        assert "==" in requirement


def test_sha512_crypt_matches_glibc_test_vectors():
    # From Ulrich Drepper's SHA-crypt specification.
    assert sha512_crypt("Hello world!", "$6$saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4"
        "OTLiBFdcbYEdFCoEOfaS35inz1"
    )
    assert sha512_crypt("Hello world!", "$6$rounds=10000$saltstringsaltstring") == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/"
        "UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
    )
    made = sha512_crypt("pw")
    assert password_matches("pw", made)
    assert not password_matches("px", made)
    assert not password_matches("pw", "$y$j9T$something")  # yescrypt: reset it


def test_units_render_hardened():
    spec = spec_for(AUTHS["pam"])
    hub_unit = hub_ops.render_unit(spec, PLATFORM)
    for line in ("PrivateTmp=yes", "KillMode=process", "PrivateDevices=yes",
                 "ProtectSystem=full", "ProtectKernelTunables=yes", "RestrictSUIDSGID=yes"):
        assert line in hub_unit
    assert f"ExecStart={PREFIX}/bin/jupyterhub --config=/etc/jupyterhub/" in hub_unit
    # An authenticator that creates system users at first login needs /etc writable.
    github = hub_ops.render_unit(spec_for(AUTHS["github"]), PLATFORM)
    assert "ProtectSystem=yes" in github

    from operations import proxy as proxy_ops

    tls13 = spec.model_copy(update={"tls": spec.tls.model_copy(update={"min_version": "1.3"})})
    proxy_unit = proxy_ops.render_unit(tls13, PLATFORM)
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "User=jupyter-proxy",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "--ssl-key=/etc/pyinfra-jupyter/tls/for/jupyter-proxy/privkey.pem",
                 "--api-ip=127.0.0.1 --api-port=8001", "--port=443", "--tls-min-v1.3"):
        assert line in proxy_unit
    assert "SupplementaryGroups" not in proxy_unit


@pytest.mark.parametrize("release", ["centos7", "ubuntu1604", "ubuntu1804", "debian12"])
def test_units_use_only_what_the_hosts_systemd_knows(release):
    """CentOS 7 has systemd 219, Ubuntu 16.04 229: directives they do not know are left out,
    not silently ignored; the proxy runs as root bounded to one capability where systemd
    cannot hand an unprivileged user CAP_NET_BIND_SERVICE."""
    from operations import proxy as proxy_ops

    plat = platform(release)
    spec = spec_for(AUTHS["pam"])
    hub_unit = hub_ops.render_unit(spec, plat)
    proxy_unit = proxy_ops.render_unit(spec, plat)
    version = plat.systemd.version
    hub_lines, proxy_lines = hub_unit.splitlines(), proxy_unit.splitlines()
    assert ("ProtectHostname=yes" in hub_lines) == (version >= 242)
    assert ("ProtectKernelTunables=yes" in proxy_lines) == (version >= 232)
    assert ("ProtectSystem=strict" in proxy_lines) == (version >= 232)
    assert ("AmbientCapabilities=CAP_NET_BIND_SERVICE" in proxy_lines) == (version >= 229)
    assert ("User=jupyter-proxy" in proxy_lines) == (version >= 229)
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in proxy_lines


class FakeAuth(Authenticator):
    """An authenticator variant defined here only: the hub component renders it with no
    change anywhere else (its class, secret and traits come from the model)."""

    type: Literal["fake"]
    greeting: str = "hello"
    token: SecretStr = SecretStr("fake-token-never-rendered")

    authenticator_class: ClassVar[str] = "jupyterhub.auth.DummyAuthenticator"

    def secrets(self):
        return {"fake_token": self.token}

    def grants_access(self) -> bool:
        return True

    def traits(self):
        return {"DummyAuthenticator": {"password": SecretRef("fake_token")},
                "Authenticator": {"auto_login": False}}


@pytest.mark.parametrize("name", sorted(AUTHS))
def test_the_hub_may_write_etc_only_for_an_authenticator_that_makes_system_users(name):
    spec = spec_for(AUTHS[name])
    makes = spec.hub.auth.creates_system_users()
    assert makes is (name in ("github", "google", "generic-oauth", "ldap", "native"))
    unit = hub_ops.render_unit(spec, PLATFORM)
    assert f"ProtectSystem={'yes' if makes else 'full'}\n" in unit


def test_a_new_authenticator_variant_needs_no_change_elsewhere(tmp_path):
    spec = spec_for(AUTHS["pam"])
    spec = spec.model_copy(update={"hub": spec.hub.model_copy(update={"auth": FakeAuth(type="fake")})})
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"fake_token": "fake-token-never-rendered"}))
    text = hub_ops.render_config(spec, secrets_path=str(secrets))
    assert "fake-token-never-rendered" not in text
    config = load(tmp_path, text)
    assert config.JupyterHub.authenticator_class.__mro__[2] is DummyAuthenticator
    assert config.DummyAuthenticator.password == "fake-token-never-rendered"
    assert config.Authenticator.auto_login is False
    # ... and the deploy's items carry its secret in a 0600 file.
    site = make_site({}, spec=spec)
    files = {item.path: item for item in hub_ops.items(site) if hasattr(item, "content")}
    assert files[hub_ops.SECRETS].secret and files[hub_ops.SECRETS].mode == "600"
