"""Shared building blocks of the site spec: the strict base model and field types."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# The port range the notebook docs reserve for kernels (ZeroMQ, loopback only).
KERNEL_PORTS = range(49152, 65536)


class Model(BaseModel):
    """Every spec model: unknown keys are errors (typos fail), values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Port = Annotated[int, Field(ge=1, le=65535)]

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PKG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*([<>=!~]=?[A-Za-z0-9.*+-]+(,[<>=!~]=?[A-Za-z0-9.*+-]+)*)?$")


def _unix_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid Unix user or group name "
            "(lowercase letters, digits, '_' or '-', starting with a letter or '_', at most 32)"
        )
    return value


def _slug(value: str) -> str:
    if not _SLUG_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (lowercase letters, digits and '-', at most 31)"
        )
    return value


def _domain(value: str) -> str:
    name = value.rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL_RE.match(x) for x in labels):
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is an IP address, not a domain name")
    return name


def _email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _abs_path(value: str) -> str:
    if not value.startswith("/") or "\n" in value:
        raise ValueError(f"{value!r} must be an absolute path")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from None


def _package(value: str) -> str:
    if not _PKG_RE.match(value):
        raise ValueError(f"{value!r} is not a package name (optionally with a version specifier)")
    return value


UnixName = Annotated[str, AfterValidator(_unix_name)]
Slug = Annotated[str, AfterValidator(_slug)]
Domain = Annotated[str, AfterValidator(_domain)]
Email = Annotated[str, AfterValidator(_email)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Package = Annotated[str, AfterValidator(_package)]
