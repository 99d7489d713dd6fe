"""Helpers for offline tests: platforms of the distros we target, and a Site without a host."""

from __future__ import annotations

import http.server
import threading

from pydantic import SecretStr

from operations.platform import platform_from_info
from operations.site import Site
from pyinfra_jupyter.spec import build_spec

# (distro, major, minor, systemd, python3) as those releases ship them.
RELEASES = {
    "centos7": ("centos", 7, 9, 219, "3.6"),
    "ubuntu1604": ("ubuntu", 16, 4, 229, "3.5"),
    "ubuntu1804": ("ubuntu", 18, 4, 237, "3.6"),
    "ubuntu2004": ("ubuntu", 20, 4, 245, "3.8"),
    "ubuntu2204": ("ubuntu", 22, 4, 249, "3.10"),
    "ubuntu2404": ("ubuntu", 24, 4, 255, "3.12"),
    "debian11": ("debian", 11, 0, 247, "3.9"),
    "debian12": ("debian", 12, 0, 252, "3.11"),
    "debian13": ("debian", 13, 0, 257, "3.13"),
    "raspbian11": ("raspbian", 11, 0, 247, "3.9"),
    "raspbian12": ("raspbian", 12, 0, 252, "3.11"),
}


def host_facts(release: str = "debian12", arch: str = "x86_64", **more) -> dict:
    distro, major, minor, systemd, python = RELEASES[release]
    facts = {"id": distro, "version": (major, minor), "arch": arch, "systemd": systemd,
             "python3": python, "hostname": "lab1", "addresses": ["10.231.1.11"],
             "passwd": {}, "lines": {}, "globs": {}, "memory_mb": 2048}
    facts.update(more)
    return facts


def platform(release: str = "debian12", arch: str = "x86_64"):
    return platform_from_info(host_facts(release, arch))


def make_site(data: dict, release: str = "debian12", facts: dict | None = None,
              passwords: dict[str, str] | None = None, spec=None) -> Site:
    spec = spec if spec is not None else build_spec(data)
    all_facts = host_facts(release)
    all_facts.update(facts or {})
    return Site(spec=spec, platform=platform_from_info(all_facts), facts=all_facts,
                passwords={k: SecretStr(v) for k, v in (passwords or {}).items()},
                host_name="lab1")


def with_hub_prefix(spec, prefix: str):
    """The spec with the hub's venv somewhere a test controls (no validation: a test venv
    may live under /tmp, which a real spec refuses)."""
    return spec.model_copy(update={"hub": spec.hub.model_copy(update={"prefix": prefix})})


def self_signed_pem(name: str = "test.example.org", expired: bool = False) -> tuple[str, str]:
    """(certificate PEM, private key PEM) of a throwaway self-signed certificate for `name`
    (its subject and its one DNS name), valid for 30 days from now, or (`expired`) until
    yesterday."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=31 if expired else 0))
            .not_valid_after(now + datetime.timedelta(days=-1 if expired else 30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


class LocalServer:
    """An in-process HTTP server on a free loopback port, for the fakes below."""

    def serve(self, handler) -> None:
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def first_login_commands(auth, monkeypatch, name: str) -> list[list[str]]:
    """The commands a LocalAuthenticator `auth` runs to make `name`'s Unix account at a
    first login (JupyterHub's Popen recorded, nothing run)."""
    import asyncio

    import jupyterhub.auth

    ran: list[list[str]] = []

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            ran.append(cmd)
            self.returncode = 0

        def wait(self):
            return 0

    monkeypatch.setattr(jupyterhub.auth, "Popen", FakePopen)
    monkeypatch.setattr(auth, "system_user_exists", lambda user: False)
    asyncio.run(auth.add_user(type("User", (), {"name": name})()))
    return ran
