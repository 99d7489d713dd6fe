"""A systemd-enabled Docker container (see inventory/Dockerfile): the default hub site.

Containers usually cannot manage the host's firewall: leave it to Docker's port publishing.
"""

firewall = {"backend": "none"}
