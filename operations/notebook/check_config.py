"""Check a notebook server's config before it replaces the live one (or before a restart on a
new venv): run on the host as the instance's user, with the instance's venv Python.

    python check_config.py CONFIG

Loads the config the way the server will and checks what a typo or an incompatible
jupyter_server would break: the types, the password identity provider (an argon2 hash, no
token), and reading the TLS files.
"""

import os
import ssl
import sys

from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.serverapp import ServerApp
from traitlets.config.loader import PyFileConfigLoader

directory, name = os.path.split(sys.argv[1])
config = PyFileConfigLoader(name, path=directory).load_config()
app = ServerApp(config=config)
provider = PasswordIdentityProvider(config=config)
assert provider.hashed_password.startswith("argon2:"), "no argon2 password hash"
assert not provider.token, "token login must be disabled"
ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(app.certfile, app.keyfile)
print(f"config ok: {app.ip}:{app.port} root_dir={app.root_dir}")
