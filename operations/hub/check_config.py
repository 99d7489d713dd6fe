"""Check a JupyterHub config before it replaces the live one.

Run on the host by the hub's own Python (uploaded by pyinfra-jupyter):

    python check_config.py CONFIG [--no-construct]

Loads the config as JupyterHub would, imports the authenticator and spawner it names and
constructs the authenticator (which runs its traits' validators) unless `--no-construct`
says its constructor has side effects (NativeAuthenticator opens its database), and checks
that the commands of its services exist.
"""

import os
import sys

from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

path = sys.argv[1]
construct = "--no-construct" not in sys.argv[2:]
config = PyFileConfigLoader(os.path.basename(path), os.path.dirname(path)).load_config()
hub = config.JupyterHub
for trait in ("authenticator_class", "spawner_class"):
    # A dotted name, or a class the config defines itself (LocalLDAPAuthenticator).
    cls = hub[trait] if isinstance(hub[trait], type) else import_item(hub[trait])
    if trait == "authenticator_class" and construct:
        cls(config=config)
for svc in hub.get("services", []):
    command = svc.get("command") or []
    if command:
        os.stat(command[0])
    if "-m" in command:
        __import__(command[command.index("-m") + 1])
print("config ok:", path)
