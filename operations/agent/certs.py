"""Certificates and keys (cryptography): load, inspect, make, compare."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re

from .common import UTC, is_ip, normalize_name, utcnow


def _x509():
    from cryptography import x509

    return x509

def load_certs(pem: bytes) -> list:
    x509 = _x509()
    if hasattr(x509, "load_pem_x509_certificates"):
        return x509.load_pem_x509_certificates(pem)
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    if not blocks:
        raise ValueError("no certificate found")
    return [x509.load_pem_x509_certificate(b) for b in blocks]

def load_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)

def not_before(cert) -> dt.datetime:
    t = getattr(cert, "not_valid_before_utc", None)
    return t if t is not None else cert.not_valid_before.replace(tzinfo=UTC)

def not_after(cert) -> dt.datetime:
    t = getattr(cert, "not_valid_after_utc", None)
    return t if t is not None else cert.not_valid_after.replace(tzinfo=UTC)

def one_third_renew_after(cert) -> dt.datetime:
    """Renew when less than a third of the lifetime remains (scales from 6-day to 1-year certs)."""
    nb, na = not_before(cert), not_after(cert)
    return na - (na - nb) / 3

def cert_names(cert) -> list[str]:
    x509 = _x509()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [normalize_name(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return sorted(set(names))

def name_covered(name: str, cert_name_list: list[str]) -> bool:
    if name in cert_name_list:
        return True
    if is_ip(name) or "." not in name:
        return False
    return "*." + name.split(".", 1)[1] in cert_name_list

def issuer_str(cert) -> str:
    x509 = _x509()
    cns = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    orgs = cert.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    parts = [str(a.value) for a in orgs + cns]
    return ", ".join(parts) or cert.issuer.rfc4514_string()

def public_der(obj) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pub = obj.public_key() if hasattr(obj, "public_key") else obj
    return pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

def key_matches(key, cert) -> bool:
    return public_der(key) == public_der(cert)

def ari_cert_id(cert) -> str:
    """RFC 9773 certificate identifier: base64url(AKI keyIdentifier) '.' base64url(serial DER)."""
    x509 = _x509()
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    # DER INTEGER content octets: big-endian two's complement, so room for the sign bit.
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")

    return b64(aki.key_identifier) + "." + b64(serial_bytes)

def new_private_key(key_type: str):
    if key_type == "rsa":
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())

def key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

def cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)

def make_self_signed(names: list[str], key, days: int):
    x509 = _x509()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    attrs = []
    if len(names[0]) <= 64:  # CN is limited to 64 characters; SANs are what clients check
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, names[0]))
    subject = x509.Name(attrs)
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if is_ip(n) else x509.DNSName(n) for n in names]
    now = utcnow()
    pub = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        # A little backdating keeps hosts with slightly slow clocks from rejecting it.
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pub), critical=False)
    )
    return builder.sign(key, hashes.SHA256())
