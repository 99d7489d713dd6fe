"""A real LDAP directory for tests: a throwaway CA, server certificates, and Debian's slapd
(OpenLDAP) configured from a slapd.conf and loaded with slapadd.

Shared by the LDAP unit tests (TLS handshakes on loopback) and the lab test (slapd in the
lab namespace, the hub's LDAPAuthenticator logging users in over LDAPS).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUFFIX = "dc=lab,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
BIND_DN_TEMPLATE = f"uid={{username}},{PEOPLE}"


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    """A throwaway certificate authority that signs server certificates."""

    def __init__(self, name: str = "pyinfra-jupyter test LDAP CA"):
        now = dt.datetime.now(dt.timezone.utc)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return _pem(self.cert).decode()

    def server(self, directory: Path, names: list[str]) -> tuple[Path, Path]:
        """A server certificate for `names` (DNS names or IP addresses) and its key, written
        as cert.pem / key.pem (0600) into `directory`."""
        now = dt.datetime.now(dt.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / "cert.pem", directory / "key.pem"
        cert_path.write_bytes(_pem(cert) + _pem(self.cert))
        key_path.write_bytes(_key_pem(key))
        os.chmod(key_path, 0o600)
        return cert_path, key_path


def ssha(password: str) -> str:
    """An OpenLDAP {SSHA} userPassword value (what slappasswd makes)."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass
class Directory:
    """People (uid -> password) and groups (cn -> member uids) under dc=lab,dc=test."""

    people: dict[str, str]
    groups: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def user_dn(uid: str) -> str:
        return BIND_DN_TEMPLATE.format(username=uid)

    @staticmethod
    def group_dn(cn: str) -> str:
        return f"cn={cn},{GROUPS}"

    def ldif(self) -> str:
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: lab\n"
            "o: lab\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        ]
        for uid, password in self.people.items():
            entries.append(f"dn: {self.user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                           f"cn: {uid}\nsn: {uid}\nuserPassword: {ssha(password)}\n")
        for cn, members in self.groups.items():
            lines = "".join(f"member: {self.user_dn(m)}\n" for m in members)
            entries.append(f"dn: {self.group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n"
                           + lines)
        return "\n".join(entries)


def slapd_conf(workdir: Path, cert: Path, key: Path) -> Path:
    """slapd.conf for an mdb database of dc=lab,dc=test in `workdir`, LDAPS with cert/key.
    Passwords can only be used to bind; bound users read the directory (groups included),
    anonymous users nothing."""
    rootpw = ssha(secrets.token_urlsafe(16))  # nobody binds as the root DN
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    conf = workdir / "slapd.conf"
    conf.write_text(
        "".join(f"include /etc/ldap/schema/{s}.schema\n"
                for s in ("core", "cosine", "nis", "inetorgperson"))
        + f"modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {workdir}/slapd.pid\nargsfile {workdir}/slapd.args\n"
        f"TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
        "TLSProtocolMin 3.3\n"
        f"database mdb\nmaxsize 16777216\nsuffix \"{SUFFIX}\"\n"
        f"rootdn \"cn=admin,{SUFFIX}\"\nrootpw {rootpw}\ndirectory {workdir}/db\n"
        "access to attrs=userPassword by anonymous auth by self auth by * none\n"
        "access to * by users read by * none\n"
    )
    return conf
