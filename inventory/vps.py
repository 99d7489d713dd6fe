"""An Ubuntu VPS reached over SSH (group data: group_data/vps.py, on top of group_data/all.py).

    pyinfra-jupyter check inventory/vps.py
    pyinfra inventory/vps.py deploy.py
"""

vps = [
    # A non-root login: `_sudo` has pyinfra run every operation through sudo.
    ("hub.example.org", {"ssh_user": "ubuntu", "ssh_key": "~/.ssh/id_ed25519", "_sudo": True}),
]
