"""A Raspberry Pi at home on the LAN (group data: group_data/raspberrypi.py)."""

raspberrypi = [
    # A non-root login: `_sudo` has pyinfra run every operation through sudo.
    ("192.168.1.50", {"ssh_user": "pi", "ssh_key": "~/.ssh/id_ed25519", "_sudo": True}),
]
