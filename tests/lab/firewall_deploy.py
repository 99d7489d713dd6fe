"""The firewall component alone, for the firewall lab tests: network (proxy, CA) then firewall.

    pyinfra INVENTORY tests/lab/firewall_deploy.py

JupyterHub is not needed to prove the rules, so this skips python/tls/hub and keeps the
test quick; the site is built exactly as deploy.py builds it.
"""

from pyinfra import host

from operations import firewall, network
from operations.site import deploy_site

deploy_site(host, [network, firewall])
