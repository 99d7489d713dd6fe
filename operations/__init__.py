"""The pyinfra layer of pyinfra-jupyter (not an installed package: deploy.py imports it).

    site.py      reads host data once: spec, host facts → Platform; deploys components in order
    platform.py  the distro table: package manager, paths, systemd capabilities, pins
    paths.py     contracts between components: paths, unit names, users
    items.py     desired state as plain data (files, directories, venvs, units, accounts...)
    ops/         facts, the item operations and the runner, our own operations
    <component>/ network python users firewall tls proxy hub notebook ddns notes agent
"""
