"""What the controller prepares before a deploy: the secrets that live on this machine.

The spec is pure data; the files it names on the controller (login password files) are
read — and made, when the spec asks for generated passwords — here, in one explicit step
that `pyinfra-jupyter check` runs read-only and the deploy runs before any host is touched.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from pydantic import SecretStr

from .spec import SiteSpec


def _path(raw: str) -> Path:
    try:
        return Path(raw).expanduser()
    except RuntimeError as exc:  # `~nosuchuser/...`
        raise ValueError(f"cannot expand {raw!r}: {exc}") from None


def _account_problem(raw: str, generate: bool) -> str | None:
    try:
        path = _path(raw)
    except ValueError as exc:
        return str(exc)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None if generate else f"{raw} does not exist (or set generate_password = True)"
    except OSError as exc:
        return f"cannot read {raw}: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return f"{raw} is not a regular file"
    if info.st_mode & 0o077:
        return f"{raw} is readable by others: chmod 600 it"
    return None


def problems(spec: SiteSpec) -> list[str]:
    """`field.path: message` lines for controller-side files the spec names (read-only)."""
    found = []
    for index, account in enumerate(spec.users.accounts):
        if account.password_file is None:
            continue
        problem = _account_problem(account.password_file, account.generate_password)
        if problem:
            found.append(f"users.accounts.{index}.password_file: {problem}")
    return found


def login_passwords(spec: SiteSpec) -> dict[str, SecretStr]:
    """Each account's login password, by account name; generated password files are made
    here (random, 0600, never overwritten). Call `problems` first."""
    passwords: dict[str, SecretStr] = {}
    for account in spec.users.accounts:
        if account.password is not None:
            passwords[account.name] = account.password
        elif account.password_file is not None:
            passwords[account.name] = _read_or_make(_path(account.password_file),
                                                     account.generate_password)
    return passwords


def _read_or_make(path: Path, generate: bool) -> SecretStr:
    if generate and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # O_EXCL + 0600: never readable by others, never overwrite a concurrent writer.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(18) + "\n")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as handle:
        value = handle.read().strip()
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{path}: the password must be one line of printable characters")
    return SecretStr(value)
