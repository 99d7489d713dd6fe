"""The lab: disposable Debian 12 hosts with systemd, sshd and a real network.

Hosts are systemd-nspawn containers booted from overlay copies of one cached
debootstrapped rootfs, each in its own network namespace on a lab bridge,
reachable over SSH through a loopback port and given package access through an
HTTP proxy. Nothing here knows about Jupyter. See docs/lab.md.
"""

from .lab import Lab, list_labs, network_spec
from .util import LabError

__all__ = ["Lab", "LabError", "list_labs", "network_spec"]
