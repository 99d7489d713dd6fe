"""A Raspberry Pi at home: a family hub behind the router, DuckDNS name, DNS-01 (seeds 001, 004)."""

ddns = {
    "provider": "duckdns",
    "domain": "ourfamily.duckdns.org",
    "token": "replace-with-your-duckdns-token",
}

tls = {
    "type": "acme",
    "email": "parent@example.org",
    "domains": ["ourfamily.duckdns.org"],
    # Many ISPs block port 80 at home: prove the name through DuckDNS's TXT API instead.
    "challenge": "dns-01",
}

router = {
    "behind_nat": True,
    "lan_address": "192.168.1.50",
    "forwards": [{"external": 443, "internal": 443}],
}

hub = {"auth": {"type": "pam", "admin_groups": ["sudo"]}}

users = {
    "accounts": [
        {"name": "parent", "admin": True, "password_file": "~/.config/pyinfra-jupyter/parent",
         "generate_password": True},
        {"name": "kid", "password_file": "~/.config/pyinfra-jupyter/kid",
         "generate_password": True},
    ],
}

# numpy on ARM wants the ATLAS libraries (seed 004).
python = {"packages": ["numpy"], "os_packages": ["libatlas-base-dev"]}
