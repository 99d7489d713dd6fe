"""pyinfra inventory for the running lab named by $PJ_LAB (default "pj").

    pyinfra-jupyter lab up 2
    pyinfra -y inventory/lab.py exec -- hostname

Hosts are in group ``lab_hosts`` (and, as pyinfra names a group after the
file, in ``lab``: group_data/lab.py applies to them). Each carries its SSH
forward and a ``network`` spec key with the lab's proxy and the controller's
CA certificates, which the deploy's network component applies.

Names starting with an underscore are private: pyinfra would otherwise take
every list in this module for a group.
"""

import sys as _sys
from pathlib import Path as _Path

from pyinfra.api.exceptions import InventoryError as _InventoryError

# Usable without installing the project: the repo root holds pyinfra_jupyter.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

from pyinfra_jupyter.lab import Lab as _Lab  # noqa: E402
from pyinfra_jupyter.lab import LabError as _LabError  # noqa: E402
from pyinfra_jupyter.lab import network_spec as _network_spec  # noqa: E402


def _hosts():
    try:
        lab = _Lab()
        status = lab.status()
    except _LabError as exc:
        raise _InventoryError(str(exc)) from None
    if not status.get("up") or not status["hosts"]:
        raise _InventoryError(
            f"lab {lab.name!r} is not up: run `pyinfra-jupyter lab up` first"
        )
    network = _network_spec(status)
    return [
        (
            h["name"],
            {
                "ssh_hostname": "127.0.0.1",
                "ssh_port": h["ssh_port"],
                "ssh_user": status["ssh_user"],
                "ssh_key": status["ssh_key"],
                "ssh_strict_host_key_checking": "no",
                "ssh_known_hosts_file": "/dev/null",
                "network": network,
                "lab_address": h["address"],
            },
        )
        for h in status["hosts"]
    ]


lab_hosts = _hosts()
