"""Upload a file through a staged copy: checked before it goes live, secrets never shown.

pyinfra's files.put / files.template print whole files with `--diff` (the dry-run preview
users rely on) and write the destination in place. For configs that a running service
reads, and for tokens, keys and password hashes, we want neither: this operation uploads
to a staged copy created 0600 before a byte is written, optionally runs a check on it, and
only then moves it over the live file in one rename. A failed check leaves the live file
(and the service that reads it) untouched.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from io import StringIO

from pydantic import SecretStr
from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import File, Sha256File


def staged_path(dest: str) -> str:
    """Where the new file waits: beside the live one, same suffix (loaders may need `.py`)."""
    directory, name = posixpath.split(dest)
    return posixpath.join(directory, f".pyinfra-new.{name}")


@operation()
def staged_file(
    dest: str,
    content: str | SecretStr,
    user: str = "root",
    group: str = "root",
    mode: str = "644",
    check: str | None = None,
):
    """
    Upload `content` to `dest` via a staged copy; check it first; never print secrets.

    + dest: the live path on the host
    + content: the text; a SecretStr is never shown (not even with --diff)
    + user / group / mode: the file's owner and mode, set on the staged copy before the move
    + check: a shell command run on the staged copy (`{path}` is replaced by its path);
      if it fails, the staged copy is removed and the live file stays as it was

    **Example:**

    .. code:: python

        staged_file(name="Upload the hub config", dest="/etc/jupyterhub/jupyterhub_config.py",
                    content=text, check="/opt/jupyterhub/bin/python check.py {path}")
    """
    secret = isinstance(content, SecretStr)
    text = content.get_secret_value() if secret else content
    info = host.get_fact(File, path=dest)
    same_content = bool(info) and host.get_fact(Sha256File, path=dest) == _sha256(text)
    same_meta = bool(info) and (info.get("user"), info.get("group"), info.get("mode")) == (
        user, group, int(str(mode)),
    )
    if same_content and same_meta:
        host.noop(f"{dest} is up to date")
        return
    if same_content:
        # Only ownership or mode drifted: fix them in place, nothing to check.
        yield StringCommand(f"chown {user}:{group} {shlex.quote(dest)}")
        yield StringCommand(f"chmod {mode} {shlex.quote(dest)}")
        return

    if secret:
        logger.info(f"    {dest}: will be written (secret: contents not shown)")
    staged = shlex.quote(staged_path(dest))
    yield StringCommand(f"umask 077 && rm -f {staged} && : > {staged}")
    yield FileUploadCommand(StringIO(text), staged_path(dest))
    yield StringCommand(f"chown {user}:{group} {staged} && chmod {mode} {staged}")
    if check:
        yield StringCommand(
            # replace, not format: a check may hold code with braces of its own.
            f"{check.replace('{path}', staged)} || {{ rm -f {staged}; exit 1; }}"
        )
    yield StringCommand(f"mv -f {staged} {shlex.quote(dest)}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
