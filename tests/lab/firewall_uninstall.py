"""The firewall component's uninstall alone (tests/lab/test_firewall.py): network then firewall,
removed as uninstall.py removes a whole site.

    pyinfra INVENTORY tests/lab/firewall_uninstall.py
"""

from pyinfra import host

from operations import firewall, network
from operations.uninstall import uninstall_site

uninstall_site(host, [network, firewall])
