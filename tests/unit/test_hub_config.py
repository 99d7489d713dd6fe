"""The hub's rendered config: every auth type loads as JupyterHub loads it, without secrets.

Needs jupyterhub and the authenticators in this venv (the pins of operations/platforms.py),
because the check script the deploy runs on the host is run here too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from operations import hub as hub_ops
from operations.common import template
from operations.platforms import MODERN, Platform
from operations.spec import build_spec

pytest.importorskip("jupyterhub")

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

PLATFORM = Platform(distro="debian", version=(12, 0), arch="x86_64", systemd=252, pins=MODERN)


# The check imports what the config names and finds the commands it runs: point the hub's
# prefix at this venv, which has the same packages.
PREFIX = str(Path(sys.executable).parent.parent)


def spec_for(auth: dict, **hub):
    return build_spec({
        "mode": "hub",
        "hub": {"auth": auth, "prefix": PREFIX, **hub},
        "users": {"accounts": [ADMIN], "allow_all": auth["type"] == "dummy"},
    })


def load(tmp_path: Path, text: str):
    """Run the deploy's own check script on a rendered config; return the loaded config."""
    from traitlets.config.loader import PyFileConfigLoader

    path = tmp_path / "jupyterhub_config.py"
    path.write_text(text)
    check = tmp_path / "check_config.py"
    check.write_text(hub_ops.CHECK_CONFIG)
    result = subprocess.run(
        [sys.executable, str(check), str(path)], capture_output=True, text=True, cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "config ok" in result.stdout
    return PyFileConfigLoader(path.name, str(tmp_path)).load_config()


@pytest.mark.parametrize("name", sorted(AUTHS))
def test_every_auth_renders_a_config_that_loads(tmp_path, name):
    spec = spec_for(AUTHS[name])
    secrets = tmp_path / "secrets.json"
    secrets.write_text(__import__("json").dumps(hub_ops.hub_secrets(spec)))
    text = hub_ops.render_config(spec, secrets_path=str(secrets))
    assert SECRET not in text
    compile(text, "jupyterhub_config.py", "exec")
    config = load(tmp_path, text)

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


def test_no_secrets_means_no_secrets_file():
    spec = spec_for(AUTHS["pam"])
    assert hub_ops.hub_secrets(spec) == {}
    assert "_secrets" not in hub_ops.render_config(spec)


def test_systemd_spawner_limits(tmp_path):
    spec = spec_for(AUTHS["pam"], spawner={"type": "systemd", "mem_limit": "2G", "cpu_limit": 1.5})
    config = load(tmp_path, hub_ops.render_config(spec))
    assert config.JupyterHub.spawner_class == "systemdspawner.SystemdSpawner"
    assert config.SystemdSpawner.mem_limit == "2G"
    assert config.SystemdSpawner.cpu_limit == 1.5
    assert "jupyterhub-systemdspawner==" + MODERN.systemdspawner in hub_ops.hub_packages(
        spec, PLATFORM
    )


def test_a_broken_config_fails_the_check(tmp_path):
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c = get_config()\nc.JupyterHub.authenticator_class = "no.such.Auth"\n'
                    'c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"\n')
    check = tmp_path / "check_config.py"
    check.write_text(hub_ops.CHECK_CONFIG)
    result = subprocess.run([sys.executable, str(check), str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "no" in result.stderr


@pytest.mark.parametrize("name", sorted(AUTHS))
def test_packages_are_pinned(name):
    for requirement in hub_ops.hub_packages(spec_for(AUTHS[name]), PLATFORM):
        assert "==" in requirement


def test_sha512_crypt_matches_glibc_test_vectors():
    # From Ulrich Drepper's SHA-crypt specification.
    assert hub_ops.sha512_crypt("Hello world!", "$6$saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4"
        "OTLiBFdcbYEdFCoEOfaS35inz1"
    )
    assert hub_ops.sha512_crypt("Hello world!", "$6$rounds=10000$saltstringsaltstring") == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/"
        "UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
    )
    made = hub_ops.sha512_crypt("pw")
    assert hub_ops.password_matches("pw", made)
    assert not hub_ops.password_matches("px", made)
    assert not hub_ops.password_matches("pw", "$y$j9T$something")  # yescrypt: reset it


def _render_unit(component: str, name: str, **context) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(Path(template(component, name)).read_text()).render(**context)


def test_units_render_hardened():
    spec = spec_for(AUTHS["pam"])
    hub_unit = _render_unit("hub", "jupyterhub.service", hub=spec.hub, config=hub_ops.CONFIG,
                            token_env="/etc/x.env", version="6.1.1")
    assert "PrivateTmp=yes" in hub_unit and "KillMode=process" in hub_unit
    assert f"ExecStart={PREFIX}/bin/jupyterhub --config=/etc/jupyterhub/" in hub_unit
    proxy_unit = _render_unit(
        "proxy", "configurable-http-proxy.service", proxy=spec.proxy, version="4.6.3",
        node="/usr/bin/node", tls_min_flag="--tls-min-v1.3", entrypoint="/opt/chp/bin/chp",
        service_user="jupyter-proxy", tls_group="jupyter-tls", tls_cert="/c.pem", tls_key="/k.pem",
        token_env="/etc/x.env", hub_api_port=8081,
    )
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE", "SupplementaryGroups=jupyter-tls",
                 "--api-ip=127.0.0.1 --api-port=8001", "--port=443", "--tls-min-v1.3"):
        assert line in proxy_unit
