"""Turn a host into a public Jupyter service, from the site spec in group_data/.

    pyinfra inventory/<site>.py deploy.py

Thin on purpose. The components, in order (operations/order.py): network → python → users
→ firewall → tls → proxy → hub | notebook → selinux → ddns → notes. `deploy_site` validates the spec
(nothing runs on any host if it is invalid), reads the host once, and applies each
component the site's mode wants (operations/site.py).
"""

import sys
from pathlib import Path

from pyinfra import host

# The pyinfra layer lives beside this file (it is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from operations.order import COMPONENTS  # noqa: E402
from operations.site import deploy_site  # noqa: E402

deploy_site(host, COMPONENTS)
