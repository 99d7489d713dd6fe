"""A CentOS 7 server (group data: group_data/centos7.py): a public notebook, firewalld."""

centos7 = [
    ("research.example.org", {"ssh_user": "centos", "ssh_port": 22}),
]
