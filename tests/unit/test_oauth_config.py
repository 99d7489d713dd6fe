"""OAuth logins offline: the rendered configs, loaded into the classes oauthenticator uses.

GitHub and Google run the same oauthenticator machinery as the generic-OAuth login that
tests/lab/test_login_oidc.py proves against a real OpenID Connect provider; what differs is
their fixed endpoints and their allow rules. Both are checked here on the authenticator
objects JupyterHub would build from the rendered config (oauthenticator as pinned in
operations/platform.py), with the provider's API calls stubbed where a rule makes one.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config.loader import PyFileConfigLoader

from operations import hub as hub_ops
from pyinfra_jupyter.spec import build_spec
from tests.support import platform, with_hub_prefix

SECRET = "client-secret-never-in-config"
PREFIX = str(Path(sys.executable).parent.parent)
CALLBACK = "https://hub.example.org/hub/oauth_callback"
OAUTH = {"client_id": "the-client", "client_secret": SECRET, "callback_url": CALLBACK}


@pytest.fixture(autouse=True)
def _no_endpoint_overrides(monkeypatch):
    # oauthenticator reads these to point GitHub / Google elsewhere (GitHub Enterprise...).
    for name in ("GITHUB_URL", "GITHUB_HOST", "GITHUB_HTTP", "GOOGLE_API_URL",
                 "OAUTH2_AUTHORIZE_URL", "OAUTH2_TOKEN_URL", "OAUTH2_USERDATA_URL",
                 "HOSTED_DOMAIN", "OAUTH_TLS_VERIFY"):
        monkeypatch.delenv(name, raising=False)


def authenticator(tmp_path: Path, auth: dict, users: dict | None = None):
    """The authenticator JupyterHub builds from the config the deploy renders for `auth`,
    after the deploy's own check script accepted that config."""
    spec = with_hub_prefix(build_spec({"mode": "hub", "hub": {"auth": auth},
                                       "users": users or {}}), PREFIX)
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({k: v.get_secret_value()
                                   for k, v in hub_ops.secrets(spec).items()}))
    text = hub_ops.render_config(spec, secrets_path=str(secrets))
    assert SECRET not in text
    (tmp_path / "jupyterhub_config.py").write_text(text)
    # (The deploy's check script loads every auth's config: tests/unit/test_hub_config.py.)
    config = PyFileConfigLoader("jupyterhub_config.py", str(tmp_path)).load_config()
    return config.JupyterHub.authenticator_class(config=config)


def test_github_points_at_github_and_carries_the_organizations(tmp_path):
    auth = authenticator(tmp_path, {"type": "github", **OAUTH,
                                    "allowed_organizations": ["my-org", "other-org:teachers"]})
    assert type(auth).__name__ == "LocalGitHubOAuthenticator"
    assert auth.authorize_url == "https://github.com/login/oauth/authorize"
    assert auth.token_url == "https://github.com/login/oauth/access_token"
    assert auth.userdata_url == "https://api.github.com/user"
    assert (auth.client_id, auth.client_secret) == ("the-client", SECRET)
    assert auth.oauth_callback_url == CALLBACK
    assert auth.allowed_organizations == {"my-org", "other-org:teachers"}
    # Members whose membership is private (GitHub's default) count only with read:org.
    assert "read:org" in auth.scope
    assert auth.validate_server_cert is True


def test_github_asks_githubs_api_about_each_organization_and_refuses_non_members(tmp_path):
    auth = authenticator(tmp_path, {"type": "github", **OAUTH,
                                    "allowed_organizations": ["my-org", "other-org:teachers"]})
    asked: list[str] = []
    members = {"https://api.github.com/orgs/other-org/teams/teachers/members/ada"}

    async def httpfetch(url, **kwargs):
        asked.append(url)
        return SimpleNamespace(code=204 if url in members else 404, body=b"{}")

    auth.httpfetch = httpfetch
    model = {"admin": False,
             "auth_state": {"token_response": {"access_token": "t", "token_type": "bearer"}}}
    assert asyncio.run(auth.check_allowed("ada", model)) is True
    assert "https://api.github.com/orgs/other-org/teams/teachers/members/ada" in asked
    asked.clear()
    assert asyncio.run(auth.check_allowed("eve", model)) is False
    assert sorted(asked) == ["https://api.github.com/orgs/my-org/members/eve",
                             "https://api.github.com/orgs/other-org/teams/teachers/members/eve"]


def test_github_without_organizations_asks_for_no_extra_scope(tmp_path):
    auth = authenticator(tmp_path, {"type": "github", **OAUTH}, {"allowed": ["ada"]})
    assert auth.scope == []
    assert auth.allowed_users == {"ada"}


def test_google_points_at_google_and_carries_the_hosted_domain(tmp_path):
    auth = authenticator(tmp_path, {"type": "google", **OAUTH,
                                    "hosted_domain": ["example.org"]})
    assert type(auth).__name__ == "LocalGoogleOAuthenticator"
    assert auth.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert auth.token_url == "https://www.googleapis.com/oauth2/v4/token"
    assert auth.userdata_url == "https://www.googleapis.com/oauth2/v1/userinfo"
    assert (auth.client_id, auth.client_secret) == ("the-client", SECRET)
    assert auth.hosted_domain == ["example.org"]
    assert {"openid", "email"} <= set(auth.scope)


def test_google_blocks_accounts_outside_the_hosted_domain(tmp_path):
    auth = authenticator(tmp_path, {"type": "google", **OAUTH,
                                    "hosted_domain": ["example.org"]})

    def model(hd: str) -> dict:
        return {"auth_state": {auth.user_auth_state_key: {"hd": hd, "email": f"ada@{hd}", "domain": hd,
                                        "verified_email": True}}}

    assert auth.check_blocked_users("ada", model("example.org")) is True
    assert auth.check_blocked_users("ada", model("gmail.com")) is False
    assert auth.check_blocked_users("ada", model("")) is False


def test_generic_oauth_uses_the_spec_endpoints_and_claim(tmp_path):
    auth = authenticator(tmp_path, {
        "type": "generic-oauth", **OAUTH,
        "authorize_url": "https://sso.example.org/auth",
        "token_url": "https://sso.example.org/token",
        "userdata_url": "https://sso.example.org/userinfo",
        "username_claim": "nickname",
    }, {"allowed": ["ada"]})
    assert type(auth).__name__ == "LocalGenericOAuthenticator"
    assert (auth.authorize_url, auth.token_url, auth.userdata_url) == (
        "https://sso.example.org/auth", "https://sso.example.org/token",
        "https://sso.example.org/userinfo")
    assert auth.username_claim == "nickname"
    assert auth.user_info_to_username({"nickname": "ada", "sub": "u-1"}) == "ada"
    assert auth.allowed_users == {"ada"} and auth.allow_all is False


@pytest.mark.parametrize("kind", ["github", "google", "generic-oauth"])
def test_oauth_users_get_an_account_with_a_private_home_whatever_adduser_conf_says(
        tmp_path, kind):
    """JupyterHub's default add_user_cmd is Debian's `adduser`, whose home mode comes from
    /etc/adduser.conf: 0755 on Debian 11 and on hosts upgraded from it (the conffile stays),
    and RHEL's `adduser` (useradd) refuses its -q/--gecos flags. The deploy names useradd
    with a umask of 077, which every shadow-utils release knows (HOME_MODE only 4.8+)."""
    extra = {"github": {}, "google": {}, "generic-oauth": {
        "authorize_url": "https://sso.example.org/auth",
        "token_url": "https://sso.example.org/token",
        "userdata_url": "https://sso.example.org/userinfo"}}[kind]
    auth = authenticator(tmp_path, {"type": kind, **OAUTH, **extra}, {"allowed": ["ada"]})
    assert auth.create_system_users is True
    assert auth.add_user_cmd == ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
                                 "--key", "UMASK=0077"]
    assert "ProtectSystem=yes\n" in hub_ops.render_unit(
        build_spec({"mode": "hub", "hub": {"auth": {"type": kind, **OAUTH, **extra}},
                    "users": {"allowed": ["ada"]}}), platform("debian12"))
