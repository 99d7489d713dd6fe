"""A CentOS 7 server (group data: group_data/centos7.py): a public notebook, firewalld."""

centos7 = [
    # A non-root login: `_sudo` has pyinfra run every operation through sudo.
    ("research.example.org", {"ssh_user": "centos", "ssh_port": 22, "_sudo": True}),
]
