"""Vagrant test machines (see inventory/Vagrantfile): the default hub, and a reachable port."""

# Vagrant forwards the guests' 443 to the host: see inventory/Vagrantfile.
tls = {"type": "self-signed", "names": ["localhost", "127.0.0.1"]}
