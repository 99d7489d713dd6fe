"""Shared building blocks of the site spec: the strict base model and its field types.

Every string a spec carries ends up somewhere dangerous: a shell line, a systemd unit, a
Python or JSON config, a path root creates. Two defences, both here:

- `Model` rejects control characters (newline, CR, NUL, tab, DEL, Unicode line separators)
  in every string field, secrets included; only fields marked `multiline` (PEM blocks)
  may hold newlines. A line break can therefore never add a line to a unit or a config.
- Fields that reach a shell, a unit or a path are typed with a safe alphabet, checked with
  a full match (`re.fullmatch`, so a trailing newline never slips through `$`). Free text
  (`Text`) is escaped by its destination instead (Python `repr`, JSON).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

# The port range the notebook docs reserve for kernels (ZeroMQ, loopback only).
KERNEL_PORTS = range(49152, 65536)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_CONTROL_PEM = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029]")  # \n allowed
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte", "\t": "a tab"}


def _control_problem(text: str, multiline: bool) -> str | None:
    found = (_CONTROL_PEM if multiline else _CONTROL).search(text)
    if not found:
        return None
    char = found.group()
    what = _NAMES.get(char, f"the control character U+{ord(char):04X}")
    return f"contains {what} (position {found.start()}); control characters are not allowed"


def _check_strings(value: Any, multiline: bool) -> None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        problem = _control_problem(value, multiline)
        if problem:
            raise ValueError(problem)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _check_strings(item, multiline)
            except ValueError as exc:
                raise ValueError(f"item {index} {exc}") from None


class Model(BaseModel):
    """Every spec model: unknown keys are errors (typos fail), values are immutable, and no
    string holds a control character (except `multiline` fields, which may hold newlines)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info) -> Any:
        field = cls.model_fields.get(info.field_name)
        extra = (field.json_schema_extra if field else None) or {}
        _check_strings(value, multiline=isinstance(extra, dict) and bool(extra.get("multiline")))
        return value


def multiline(**kwargs: Any) -> Any:
    """A Field that may hold newlines (PEM blocks); other control characters stay refused."""
    return Field(json_schema_extra={"multiline": True}, **kwargs)


def _full(pattern: str, what: str):
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{value!r} {what}")
        return value

    return check


Port = Annotated[int, Field(ge=1, le=65535)]

UnixName = Annotated[str, AfterValidator(_full(
    r"[a-z_][a-z0-9_-]{0,31}",
    "is not a valid Unix user or group name (lowercase letters, digits, '_' or '-', "
    "starting with a letter or '_', at most 32)",
))]
Slug = Annotated[str, AfterValidator(_full(
    r"[a-z0-9][a-z0-9-]{0,30}",
    "is not a valid name (lowercase letters, digits and '-', at most 31)",
))]
# JupyterHub user names from any authenticator (GitHub logins, e-mail-like names, LDAP uids).
HubUser = Annotated[str, AfterValidator(_full(
    r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}",
    "is not a hub user name (letters, digits and . _ @ + -, at most 128)",
))]
# Printable ASCII without spaces or quotes: client ids, claim names, OAuth scopes.
Token = Annotated[str, AfterValidator(_full(
    r"[A-Za-z0-9._:/@+=~-]{1,200}",
    "may only hold letters, digits and . _ : / @ + = ~ - (no spaces or quotes)",
))]
# Free text, escaped by its destination (a Python or JSON string literal); never a shell.
Text = Annotated[str, Field(max_length=500)]
# Firewall rule comments end up in nft/iptables/ufw rules: a small, quote-free alphabet.
Comment = Annotated[str, AfterValidator(_full(
    r"[A-Za-z0-9 ._:/()-]{0,64}",
    "is not a valid comment (letters, digits, spaces and . _ : / ( ) -, at most 64)",
))]
# OS package names (Debian and RPM): never starting with '-', which apt/yum read as an option.
OsPackage = Annotated[str, AfterValidator(_full(
    r"[A-Za-z0-9][A-Za-z0-9+._-]{0,99}",
    "is not an OS package name (letters, digits and + . _ -, not starting with '-')",
))]
Package = Annotated[str, AfterValidator(_full(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?"
    r"((==|>=|<=|~=|!=|>|<)[A-Za-z0-9.*+!-]+(,(==|>=|<=|~=|!=|>|<)[A-Za-z0-9.*+!-]+)*)?",
    "is not a package name (optionally with extras and a version specifier, no spaces)",
))]
Version = Annotated[str, AfterValidator(_full(r"\d{1,4}\.\d{1,4}\.\d{1,4}", "is not a version like 1.2.3"))]

_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _domain(value: str) -> str:
    name = value.rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL_RE.fullmatch(x) for x in labels):
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is an IP address, not a domain name")
    return name


def _host(value: str) -> str:
    """A DNS name (one label is fine: 'localhost', 'ldap') or an IP address."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.rstrip(".").lower()
    if len(name) > 253 or not all(_LABEL_RE.fullmatch(x) for x in name.split(".")):
        raise ValueError(f"{value!r} is neither a host name nor an IP address")
    return name


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from None


_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def _email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value) or len(value) > 254:
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


# -- paths ------------------------------------------------------------------------------------

_PATH_RE = re.compile(r"(/[A-Za-z0-9._+-]+)+")
# Trees root must never create, chown or chmod things in for us: system directories, kernel
# interfaces, and places other users can write (their homes, temporary directories).
_FORBIDDEN_TREES = ("/proc", "/sys", "/dev", "/run", "/boot", "/tmp", "/var/tmp", "/home",
                    "/root", "/lost+found", "/mnt", "/media")
# Directories that exist for the system: a spec path may live below them, never be one.
_SYSTEM_DIRS = frozenset({
    "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/usr", "/var", "/opt",
    "/srv", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share",
    "/usr/include", "/usr/src", "/usr/local", "/usr/local/bin", "/usr/local/sbin",
    "/usr/local/lib", "/usr/local/share", "/var/lib", "/var/log", "/var/cache", "/var/spool",
    "/var/mail", "/var/backups", "/var/opt", "/var/local", "/var/www", "/etc/systemd",
    "/etc/ssh", "/etc/ssl", "/etc/pki", "/etc/pam.d", "/etc/security", "/etc/sudoers.d",
    "/etc/default", "/etc/apt", "/etc/yum.repos.d", "/etc/cron.d", "/etc/profile.d",
    "/etc/jupyter", "/etc/jupyterhub", "/etc/pyinfra-jupyter", "/opt/pyinfra-jupyter",
    "/var/lib/pyinfra-jupyter", "/var/lib/systemd",
})


def _path_syntax(value: str) -> list[str]:
    if not _PATH_RE.fullmatch(value) or len(value) > 200:
        raise ValueError(
            f"{value!r} is not an absolute path of letters, digits and . _ + - "
            "(no spaces, quotes, '%', '//' or trailing '/')"
        )
    parts = value.split("/")[1:]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"{value!r} must not contain '.' or '..' components")
    return parts


def _system_path(value: str) -> str:
    """A directory root creates and owns: never a system directory, never in another
    user's reach (homes, /tmp), never a kernel interface."""
    _path_syntax(value)
    for tree in _FORBIDDEN_TREES:
        if value == tree or value.startswith(tree + "/"):
            raise ValueError(
                f"{value!r} is under {tree}, which root must not manage for the service "
                "(system or other users' space); use e.g. /opt/NAME, /srv/NAME or /var/lib/NAME"
            )
    if value in _SYSTEM_DIRS:
        raise ValueError(f"{value!r} is a system directory; name a directory of its own below it")
    return value


def _user_path(value: str) -> str:
    """A directory a service's own user creates and owns (root never touches it): anywhere
    but system directories and kernel interfaces."""
    _path_syntax(value)
    for tree in ("/proc", "/sys", "/dev", "/run", "/boot"):
        if value == tree or value.startswith(tree + "/"):
            raise ValueError(f"{value!r} is under {tree}")
    if value in _SYSTEM_DIRS or value in ("/home", "/tmp", "/var/tmp", "/root"):
        raise ValueError(f"{value!r} is a system directory; name a directory of its own below it")
    return value


def _url_path(value: str) -> str:
    if not re.fullmatch(r"/([A-Za-z0-9._~-]+/)*", value):
        raise ValueError(f"{value!r} must be a URL path like '/' or '/name/' (ending in '/')")
    return value


def _url_target(value: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9._~/?=&-]*", value):
        raise ValueError(f"{value!r} must be a URL path starting with '/', e.g. /lab")
    return value


Domain = Annotated[str, AfterValidator(_domain)]
HostName = Annotated[str, AfterValidator(_host)]
IpAddress = Annotated[str, AfterValidator(_ip)]
Email = Annotated[str, AfterValidator(_email)]
SystemPath = Annotated[str, AfterValidator(_system_path)]
UserPath = Annotated[str, AfterValidator(_user_path)]
Cidr = Annotated[str, AfterValidator(_cidr)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
UrlTarget = Annotated[str, AfterValidator(_url_target)]


PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def pem_certificates(value: str, what: str) -> str:
    """`value` when it holds PEM certificates cryptography can read (one or a chain)."""
    from cryptography import x509

    if PEM_BEGIN not in value:
        raise ValueError(f"{what} is not a PEM certificate (no '{PEM_BEGIN}' line)")
    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError as exc:
        raise ValueError(f"{what} is not a readable PEM certificate: {exc}") from None
    return value


def https_url(value: str, what: str = "URL") -> str:
    """Validate an https:// URL (no credentials, no spaces); returns it unchanged."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https:// {what}")
    if parts.username or parts.password:
        raise ValueError(f"the {what} must not carry credentials")
    if not re.fullmatch(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+", value):
        raise ValueError(f"{value!r} holds characters a URL cannot")
    _host(parts.hostname)
    return value


HttpsUrl = Annotated[str, AfterValidator(https_url)]


def api_url(value: str) -> str:
    """An API base URL for a service that receives a token: https://, or http:// only to a
    private or loopback address (a test double on the LAN), never plain HTTP to the internet."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme == "http" and parts.hostname:
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            address = None
        if address is None or not (address.is_private or address.is_loopback):
            raise ValueError(
                f"{value!r}: a token would cross the internet in clear; use https:// "
                "(plain http:// is only accepted to a private or loopback IP address)"
            )
        return https_url("https" + value[4:], "API URL") and value
    return https_url(value, "API URL")


ApiUrl = Annotated[str, AfterValidator(api_url)]
