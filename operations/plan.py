"""The site's items as a plan `verify` checks: what must be on the host, and how.

Built from the same items the deploy applies, so what we deploy is what users verify. The
deploy keeps it on the host (`paths.VERIFY_PLAN`, world-readable: it holds no secret — for a
secret file only its owner and mode, never a digest) so that the checks also run from
testinfra without the spec; `pyinfra-jupyter verify` builds it afresh from the spec.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pyinfra_jupyter.spec import SiteSpec

from . import paths
from .items import (
    Absent,
    Directory,
    File,
    Group,
    Item,
    NpmPackage,
    Packages,
    Perms,
    Service,
    User,
    Venv,
)

VERSION = 1


def build(spec: SiteSpec, items: list[Item], *, manager: str, tls_names: list[str]) -> dict:
    plan: dict[str, Any] = {
        "version": VERSION, "mode": spec.mode, "manager": manager,
        "files": [], "dirs": [], "absent": [], "venvs": [], "npm": [], "packages": [],
        "users": [], "groups": [], "units": [],
        "public_ports": spec.public_ports(),
        "https_ports": ([spec.proxy.port] if spec.mode == "hub"
                        else [i.port for i in spec.notebook.instances]),
        "loopback_ports": spec.loopback_ports(),
        "http_port": spec.tls.http_port,
        "tls": {"type": spec.tls.type, "names": tls_names},
        "timers": [f"{paths.TLS_RENEW}.timer"] + ([f"{paths.DDNS_UNIT}.timer"]
                                                   if spec.ddns.enabled else []),
        "ddns_names": spec.ddns.names(),
        # Files others write whose owner and mode matter: the certificate pair the agent
        # keeps (root only), each consumer's own copy, and the items' Perms.
        "kept_files": [{"path": paths.TLS_KEY, "user": "root", "mode": "600"},
                     {"path": paths.TLS_CERT, "user": "root", "mode": None}]
        + [{"path": path, "user": user, "mode": mode} for user in paths.tls_consumers(spec)
           for path, mode in zip(paths.tls_copy(user), ("444", "400"), strict=True)],
    }
    for item in items:
        if isinstance(item, File) and item.path != paths.VERIFY_PLAN:
            plan["files"].append({
                "path": item.path, "user": item.user, "group": item.group, "mode": item.mode,
                # A digest of a secret could be brute-forced offline: owner and mode only.
                "sha256": None if item.secret else hashlib.sha256(item.data).hexdigest(),
            })
        elif isinstance(item, Directory):
            plan["dirs"].append({"path": item.path, "user": item.as_user or item.user,
                                 "mode": item.mode})
        elif isinstance(item, Absent):
            plan["absent"].append(item.path)
        elif isinstance(item, Perms):
            plan["kept_files"].append({"path": item.path, "user": item.user, "mode": item.mode})
        elif isinstance(item, Venv):
            plan["venvs"].append({"path": item.path, "python_version": item.python_version,
                                  "requirements": list(item.requirements)})
        elif isinstance(item, NpmPackage):
            plan["npm"].append({"prefix": item.prefix, "package": item.package,
                                "version": item.version})
        elif isinstance(item, Packages):
            plan["packages"] += [n for n in item.names if n not in plan["packages"]]
        elif isinstance(item, User):
            plan["users"].append(item.name)
        elif isinstance(item, Group):
            plan["groups"].append(item.name)
        elif isinstance(item, Service):
            plan["units"].append({"unit": item.unit, "enabled": item.enabled,
                                  "running": item.running, "port": item.port})
    # An item removed and later made again (a notebook instance renamed) is not absent.
    present = {f["path"] for f in plan["files"]} | {d["path"] for d in plan["dirs"]}
    plan["absent"] = [p for p in plan["absent"] if p not in present]
    return plan
