"""The firewall component alone, for the firewall lab tests: network (proxy, CA) then firewall.

    pyinfra INVENTORY tests/lab/firewall_deploy.py

JupyterHub is not needed to prove the rules, so this skips python/tls/hub and keeps the
test quick; the spec and platform are built exactly as deploy.py builds them.
"""

from pyinfra import host

from operations.firewall import deploy_firewall
from operations.network import deploy_network
from operations.platforms import get_platform
from operations.site import site_spec

spec = site_spec(host)
platform = get_platform(host)

deploy_network(spec.network, platform)
deploy_firewall(spec, platform)
