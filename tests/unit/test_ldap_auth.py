"""The hub's LDAP login, offline: the rendered config's authenticator validates the server's
certificate (real TLS handshakes on loopback), keeps LDAP's group rule, and makes a Unix
account with a private home at a user's first login. tests/lab/test_login_ldap.py proves
it against a real slapd."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path

import pytest
from jupyterhub.auth import LocalAuthenticator
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError
from ldapauthenticator import LDAPAuthenticator

from operations import hub as hub_ops
from pyinfra_jupyter.spec.hub import ADD_USER_CMD
from tests.ldap_support import BIND_DN_TEMPLATE, CA, Directory
from tests.support import first_login_commands, platform
from tests.unit.test_hub_config import load, spec_for

GROUP = Directory.group_dn("jupyter-users")


def ldap_spec(port: int = 636, address: str = "ldap.example.org"):
    return spec_for({"type": "ldap", "server_address": address, "server_port": port,
                     "bind_dn_template": [BIND_DN_TEMPLATE], "allowed_groups": [GROUP]})


def authenticator(tmp_path: Path, **spec):
    config = load(tmp_path, hub_ops.render_config(ldap_spec(**spec)))
    return config.JupyterHub.authenticator_class(config=config)


def test_the_config_names_a_local_ldap_authenticator_that_validates_certificates(tmp_path):
    auth = authenticator(tmp_path)
    assert isinstance(auth, LDAPAuthenticator) and isinstance(auth, LocalAuthenticator)
    assert type(auth).__name__ == "LocalLDAPAuthenticator"
    assert auth.tls_kwargs == {"validate": ssl.CERT_REQUIRED}
    assert auth.tls_strategy.name == "on_connect" and auth.server_port == 636
    assert auth.bind_dn_template == [BIND_DN_TEMPLATE]
    assert auth.allowed_groups == [GROUP]


class TlsListener:
    """A TLS server on loopback with `cert`/`key`: completes handshakes, records what it
    receives, then closes (it speaks no LDAP)."""

    def __init__(self, cert: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.handshakes = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes += 1
                    tls.settimeout(2)
                    self.received += tls.recv(65536)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pki(tmp_path):
    ca = CA()
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(ca.pem)
    return ca, bundle


def _bind(auth, password: str = "never-sent-to-an-impostor"):
    try:
        return auth.get_connection("uid=alice,ou=people,dc=lab,dc=test", password)
    except LDAPException as exc:
        return exc


@pytest.mark.parametrize("case", ["untrusted CA", "another name", "trusted"])
def test_ldaps_refuses_a_certificate_it_cannot_validate(tmp_path, monkeypatch, pki, case):
    """Before the fix ldap3's Tls defaulted to CERT_NONE: all three handshakes succeeded and
    the user's password went to whoever answered."""
    ca, bundle = pki
    names = ["ldap.elsewhere.test"] if case == "another name" else ["127.0.0.1"]
    signer = CA("an untrusted CA") if case == "untrusted CA" else ca
    listener = TlsListener(*signer.server(tmp_path / "srv", names))
    # The system store as the hub's unit gives it (SSL_CERT_FILE): here, only the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    try:
        result = _bind(authenticator(tmp_path, port=listener.port, address="127.0.0.1"))
    finally:
        listener.close()
    if case == "trusted":
        # The handshake passed; what fails is that the listener speaks no LDAP.
        assert listener.handshakes == 1
        assert "certificate" not in str(result).lower(), result
        return
    assert isinstance(result, LDAPSocketOpenError), result
    expected = "CERTIFICATE_VERIFY_FAILED" if case == "untrusted CA" else "doesn't match"
    assert expected in str(result), result
    assert b"never-sent-to-an-impostor" not in listener.received


def test_the_group_rule_is_ldaps_and_needs_no_unix_account(tmp_path):
    auth = authenticator(tmp_path)
    member = {"name": "nobody-here-yet", "auth_state": {"ldap_groups": [GROUP]}}
    outsider = {"name": "nobody-here-either", "auth_state": {"ldap_groups": []}}
    # LocalAuthenticator alone would look the DN up as a Unix group of a user with no
    # account yet (KeyError); LDAP's check decides.
    assert asyncio.run(auth.check_allowed(member["name"], member)) is True
    assert asyncio.run(auth.check_allowed(outsider["name"], outsider)) is False


def test_a_first_login_makes_a_unix_account_with_a_private_home(tmp_path, monkeypatch):
    auth = authenticator(tmp_path)
    assert auth.create_system_users is True
    ran = first_login_commands(auth, monkeypatch, "alice")
    assert ran == [[*ADD_USER_CMD, "alice"]]
    assert ran[0][:2] == ["useradd", "--create-home"] and "UMASK=0077" in ran[0]


@pytest.mark.parametrize("release", ["debian12", "centos7"])
def test_the_hub_validates_tls_against_the_platforms_system_store(release):
    plat = platform(release)
    unit = hub_ops.render_unit(ldap_spec(), plat)
    assert f"Environment=SSL_CERT_FILE={plat.family.ca_bundle}\n" in unit
    # It makes Unix accounts: /etc is writable for the hub.
    assert "ProtectSystem=yes\n" in unit


def test_a_pod_hub_gets_the_plain_ldap_authenticator():
    auth = ldap_spec().hub.auth
    assert auth.pod_class_name() == "ldapauthenticator.LDAPAuthenticator"
    traits = auth.pod_traits()
    assert "LocalAuthenticator" not in traits
    assert traits["LDAPAuthenticator"]["tls_kwargs"] == {"validate": ssl.CERT_REQUIRED}
