"""Upload a secret file without its content ever reaching pyinfra's output.

pyinfra's files.put/files.template print the whole file with `--diff` (the dry-run preview
users rely on); for tokens, keys and password hashes that would leak the secret. This
operation compares SHA-256 sums instead and says only "contents not shown".
"""

from __future__ import annotations

import hashlib
from io import BytesIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations.util import files as file_utils


@operation()
def secret_file(dest: str, content: str, user: str = "root", group: str = "root",
                mode: str = "600"):
    """
    Upload a file whose content is secret; only its checksum is ever compared or shown.

    + dest: path on the host
    + content: the file's content (call SecretStr.get_secret_value() only here)
    + user / group / mode: ownership and mode (default root:root 0600)

    **Example:**

    .. code:: python

        secret_file(name="Upload the proxy token", dest="/etc/chp/token.env",
                    content=f"CONFIGPROXY_AUTH_TOKEN={token}\\n")
    """
    data = content.encode()
    current = host.get_fact(Sha256File, path=dest)
    info = host.get_fact(File, path=dest)
    if current != hashlib.sha256(data).hexdigest():
        logger.info(f"    {dest}: will be written (secret: contents not shown)")
        yield FileUploadCommand(BytesIO(data), dest,
                                remote_temp_filename=host.get_temp_filename(dest))
        yield file_utils.chown(dest, user, group)
        yield file_utils.chmod(dest, mode)
        return
    changed = False
    if not info or info.get("user") != user or info.get("group") != group:
        yield file_utils.chown(dest, user, group)
        changed = True
    # The File fact gives the mode as the octal digits read as an int: 0600 -> 600.
    if not info or info.get("mode") != int(str(mode)):
        yield file_utils.chmod(dest, mode)
        changed = True
    if not changed:
        host.noop(f"secret file {dest} is up to date")
