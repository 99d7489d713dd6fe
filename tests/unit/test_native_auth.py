"""The hub's native (sign-up) login, offline: the rendered config's authenticator is
NativeAuthenticator with JupyterHub's LocalAuthenticator, so an approved user's first login
makes a Unix account with a private home (the local and systemd spawners run servers as one),
and a sign-up named after a system account of the host is refused. tests/lab/
test_login_native_and_servers.py proves sign-up, approval, login and a kernel for real."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest
from jupyterhub.auth import LocalAuthenticator
from nativeauthenticator import NativeAuthenticator

from operations import hub as hub_ops
from pyinfra_jupyter.spec.hub import ADD_USER_CMD
from tests.support import first_login_commands
from tests.unit.test_hub_config import load, spec_for


def authenticator(tmp_path: Path, **auth):
    text = hub_ops.render_config(spec_for({"type": "native", **auth}))
    config = load(tmp_path, text, "--no-construct")  # as the deploy checks it
    # add_new_table=False: its constructor would otherwise open the hub's database.
    return config.JupyterHub.authenticator_class(add_new_table=False, config=config)


def test_the_config_names_a_local_native_authenticator(tmp_path):
    auth = authenticator(tmp_path)
    assert isinstance(auth, NativeAuthenticator) and isinstance(auth, LocalAuthenticator)
    assert type(auth).__name__ == "LocalNativeAuthenticator"
    assert auth.open_signup is False  # the spec's default: an admin approves each sign-up
    assert auth.minimum_password_length == 10
    assert auth.create_system_users is True and auth.add_user_cmd == list(ADD_USER_CMD)
    # Its login, sign-up and approval pages are NativeAuthenticator's.
    routes = dict(auth.get_handlers(None))
    assert {"/signup", "/authorize", "/authorize/([^/]*)"} <= set(routes)


def test_an_approved_users_first_login_makes_a_unix_account_with_a_private_home(
        tmp_path, monkeypatch):
    auth = authenticator(tmp_path)
    ran = first_login_commands(auth, monkeypatch, "dora")
    assert ran == [[*ADD_USER_CMD, "dora"]]
    assert "UMASK=0077" in ran[0]


@pytest.mark.parametrize("name", ["root", "daemon"])
def test_a_sign_up_named_after_a_system_account_is_blocked(tmp_path, name):
    assert pwd.getpwnam(name).pw_uid < 1000
    auth = authenticator(tmp_path)
    # Blocked, so the hub refuses it even under allow_all (it skips check_allowed then).
    assert auth.allow_all is True
    assert auth.check_blocked_users(name) is False


def test_a_new_name_or_a_users_own_account_is_not_blocked(tmp_path, monkeypatch):
    auth = authenticator(tmp_path)
    assert auth.check_blocked_users("nobody-here-yet-4711") is True

    class Dora:
        pw_uid = 1001

    monkeypatch.setattr(pwd, "getpwnam", lambda name: Dora)
    assert auth.check_blocked_users("dora") is True


def test_a_pod_hub_gets_the_plain_native_authenticator():
    auth = spec_for({"type": "native"}).hub.auth
    assert auth.pod_class_name() == "nativeauthenticator.NativeAuthenticator"
    assert "LocalAuthenticator" not in auth.pod_traits()
    assert auth.creates_system_users() is True


def test_its_login_page_works_on_a_jupyterhub_without_statsd(tmp_path):
    """NativeAuthenticator 1.3.0's POST /hub/login calls self.statsd, gone in JupyterHub 6
    (HTTP 500 for every login, found in the lab): the config swaps in a handler with a no-op
    timer whose `_render` also takes JupyterHub 6's `sync`."""
    import inspect

    from jupyterhub.handlers import BaseHandler
    from nativeauthenticator import handlers as native_handlers

    auth = authenticator(tmp_path)
    login = dict(auth.get_handlers(None))["/login"]
    assert not hasattr(BaseHandler, "statsd")  # the pinned JupyterHub has none
    assert issubclass(login, native_handlers.LoginHandler)
    assert login is not native_handlers.LoginHandler
    login.statsd.timer("login.authenticate").start().stop(send=False)
    assert "sync" in inspect.signature(login._render).parameters
    # Every other page is NativeAuthenticator's own.
    others = [h for route, h in auth.get_handlers(None) if route != "/login"]
    assert all(h.__module__ == "nativeauthenticator.handlers" for h in others)
