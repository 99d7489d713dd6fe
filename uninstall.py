"""Take the site off a host: everything the deploy installed goes; people's home directories
and the last backup stay (the spec's `uninstall` section can say otherwise).

    pyinfra inventory/<site>.py uninstall.py --dry    # lists every removal first
    pyinfra inventory/<site>.py uninstall.py

What goes and what stays, and why: operations/uninstall.py.
"""

import sys
from pathlib import Path

from pyinfra import host

# The pyinfra layer lives beside this file (it is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from operations.order import COMPONENTS  # noqa: E402
from operations.uninstall import uninstall_site  # noqa: E402

uninstall_site(host, COMPONENTS)
