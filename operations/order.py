"""The components of a site, in the order they are deployed (and verified, and removed in
reverse). deploy.py runs them; `pyinfra-jupyter verify` reads what they want."""

from . import ddns, firewall, hub, network, notebook, notes, proxy, python, selinux, tls, users

COMPONENTS = [network, python, users, firewall, tls, proxy, hub, notebook, selinux, ddns,
              notes]
