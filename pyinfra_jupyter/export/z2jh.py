"""Zero to JupyterHub: a hub site's Helm values, and the guide that moves it to Kubernetes.

A class that outgrows one machine moves to the standard engine for a hub on many machines,
the Zero to JupyterHub (z2jh) Helm chart, rather than to a cluster manager of ours. This
module is pure: a validated SiteSpec (and, when asked, secrets read from the running host)
in; the values, the guide and the findings out. It touches no host and no file.

What the chart cannot express is a finding: the guide lists it and the command prints it,
so nothing the spec says is silently dropped. Authenticators map generically through their
own `pod_*` methods (the class and traits for users who are not Unix accounts), spawners
through `limits()`.

Secret values stay wrapped (`Secret`) inside the values until `plain(values, reveal=True)`
for the 0600 values file; the guide, golden files and the command's output only ever see a
placeholder.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from .. import paths
from ..spec import SiteSpec
from ..spec.hub import SecretRef

# JupyterHub in the chart's hub image: the chart's appVersion this export was written and
# tested against (tests/data/z2jh/README.md names the chart commit).
CHART_APP_VERSION = "5.5.0"
# The chart's singleuser.memory.guarantee: kept, unless the site's limit is lower (Kubernetes
# refuses a request above the limit).
MEMORY_GUARANTEE = "1G"
# Without a guarantee Kubernetes reserves the whole CPU limit for every user; the host
# reserved nothing, so reserve a tenth of a core (or the limit, if lower).
CPU_GUARANTEE = 0.1
# Spec fields about how the host installs and runs its services: the chart's images and
# services carry their own (the guide's "nothing to set" row). Every other field is mapped
# or reported (tests/unit/test_export_z2jh.py walks the spec's fields).
NOTHING_TO_SET = ("hub.prefix", "hub.state_dir", "hub.api_port", "proxy.api_port",
                  "proxy.node", "python.min_version", "python.provider", "python.optimize",
                  "python.swap_mb", "python.keep_swap", "python.wheels")
# Users' pods run as this uid and group (the chart's singleuser.uid and fsGid).
POD_UID, POD_GID = 1000, 100
# Where the host's hub and proxy keep what sessions need: the deploy's own names.
PROXY_TOKEN_ENV = paths.PROXY_TOKEN_ENV
HUB_UNIT, PROXY_UNIT = paths.HUB_UNIT, paths.PROXY_UNIT


def cookie_secret_file(spec: SiteSpec) -> str:
    return paths.hub_cookie_secret(spec.hub.state_dir)


@dataclass(frozen=True)
class Secret:
    """A secret leaf of the values: its value reaches the 0600 values file only."""

    what: str
    value: SecretStr


@dataclass(frozen=True)
class Finding:
    """A spec setting the values do not carry over, and what to do instead."""

    field: str
    message: str

    def line(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class HostSecrets:
    """Read from the running host (--reuse-secrets), so logins survive the move."""

    cookie_secret: SecretStr  # hex, as JupyterHub writes its cookie_secret_file
    proxy_token: SecretStr


@dataclass
class Export:
    """One host's export: the values (secrets wrapped), the guide, what did not carry over."""

    values: dict[str, Any]
    guide: str
    findings: list[Finding]


class NotAHub(ValueError):
    """The site is a notebook server: the chart runs a JupyterHub, there is nothing to move."""


@dataclass
class _Out:
    """What the mappers build: values, the guide's table rows, findings."""

    values: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def set(self, path: str, value: Any) -> None:
        node = self.values
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    def row(self, spec: str, values: str, how: str = "") -> None:
        self.rows.append((spec, values, how))

    def gap(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message))


def export(spec: SiteSpec, name: str, secrets: HostSecrets | None = None) -> Export:
    """The values, guide and findings for one hub host; raises NotAHub for a notebook site."""
    if spec.mode != "hub":
        raise NotAHub("mode 'notebook': Zero to JupyterHub runs a JupyterHub and this site is "
                      "a notebook server; only hub sites can be exported")
    out = _Out()
    out.row("`mode = 'hub'`", "the chart", "a hub pod, a proxy pod, one pod per user's server")
    _auth(spec, out)
    _hub(spec, out)
    _limits(spec, out)
    _culler(spec, out)
    _tls(spec, out)
    _tls_common(spec, out)
    _secrets(secrets, out)
    _host_only(spec, out)
    dockerfile = _dockerfile(spec, out)
    return Export(out.values, _guide(spec, name, out, dockerfile, secrets is not None),
                  out.findings)


# -- mappers ------------------------------------------------------------------------------


def _auth(spec: SiteSpec, out: _Out) -> None:
    auth, users = spec.hub.auth, spec.users
    cls = auth.pod_class_name()
    out.set("hub.config.JupyterHub.authenticator_class", cls)
    secrets = auth.secrets()
    for section, traits in auth.pod_traits().items():
        for trait, value in traits.items():
            if isinstance(value, SecretRef):
                value = Secret(f"hub.config.{section}.{trait}", secrets[value.name])
            out.set(f"hub.config.{section}.{trait}", value)
    how = [f"the host's `{auth.class_name()}` made a Unix user at first login; pods need "
           "none"] if cls != auth.class_name() else []
    how += ["its secrets in the values file only"] if secrets else []
    settings = "; its settings under `hub.config`" if auth.pod_traits() else ""
    out.row(f"`hub.auth` ({auth.type})",
            f"`hub.config.JupyterHub.authenticator_class`: `{cls}`{settings}", "; ".join(how))
    # Stated explicitly, as on the host (operations/hub): JupyterHub 5+ lets nobody in
    # without an allow rule.
    out.set("hub.config.Authenticator.allowed_users", users.allowed_names)
    out.set("hub.config.Authenticator.admin_users", users.admin_names)
    out.set("hub.config.Authenticator.allow_all",
            users.allow_all or auth.admits_everyone_it_accepts())
    out.row("`users.allowed`, `users.admins`, `users.accounts`, `users.allow_all`",
            "`hub.config.Authenticator.allowed_users`, `admin_users`, `allow_all`",
            "stated explicitly")
    # The chart's default is true; the host's hub never let admins into users' servers.
    out.set("hub.config.JupyterHub.admin_access", False)
    out.row("(admins cannot open users' servers)", "`hub.config.JupyterHub.admin_access: false`",
            "the chart's default is true")
    for where, why in auth.pod_gaps():
        out.gap(where, why)
    if users.accounts:
        out.gap("users.accounts", "system accounts (their passwords and groups) have no "
                "equivalent in pods; their names stay in allowed_users / admin_users")


def _hub(spec: SiteSpec, out: _Out) -> None:
    hub = spec.hub
    out.set("hub.baseUrl", "/")
    out.row("the hub at `/`", "`hub.baseUrl: /`")
    out.set("hub.db.type", "sqlite-pvc")
    out.row(f"`{paths.hub_database(hub.state_dir)}`", "`hub.db.type: sqlite-pvc`",
            "copy the database into the hub's volume (steps below)")
    out.set("singleuser.defaultUrl", hub.default_url)
    out.row("`hub.default_url`", f"`singleuser.defaultUrl: {hub.default_url}`")
    out.set("singleuser.startTimeout", hub.start_timeout)
    out.set("hub.config.KubeSpawner.http_timeout", hub.http_timeout)
    out.row("`hub.start_timeout`, `hub.http_timeout`",
            "`singleuser.startTimeout`, `hub.config.KubeSpawner.http_timeout`")
    out.row(", ".join(f"`{name}`" for name in NOTHING_TO_SET),
            "(the chart's images and services)", "nothing to set: how the host installs and "
            "runs its services, which the chart's images carry (their own Python and Node.js)")
    out.row("`uninstall.keep_backup`, `uninstall.keep_homes`", "(`helm uninstall`)",
            "the release goes with `helm uninstall`; the users' volumes and the hub database's "
            "volume stay until their PersistentVolumeClaims are deleted by hand")
    if hub.version:
        out.gap("hub.version", f"the chart's hub image runs JupyterHub {CHART_APP_VERSION}, "
                f"not {hub.version}")
    if spec.proxy.version:
        out.gap("proxy.version", "the chart picks configurable-http-proxy's image "
                "(proxy.chp.image.tag)")
    if not (hub.version or spec.proxy.version):
        out.row("`hub.version`, `proxy.version`", "(the chart's images)",
                f"JupyterHub {CHART_APP_VERSION} and the chart's configurable-http-proxy")
    if spec.proxy.port != 443:
        out.gap("proxy.port", f"the proxy-public service listens on 443, not {spec.proxy.port}")
    if spec.proxy.ip:
        out.gap("proxy.ip", "the address to listen on is the load balancer's "
                "(proxy.service.loadBalancerIP, if your cloud lets you choose)")
    if spec.proxy.port == 443 and not spec.proxy.ip:
        out.row("`proxy.port`, `proxy.ip`", "(the proxy-public service)",
                "port 443 on the load balancer's address")


def _byte_size(size: str) -> int:
    units = {"K": 1, "M": 2, "G": 3, "T": 4}
    if size[-1] in units:
        return int(size[:-1]) * 1024 ** units[size[-1]]
    return int(size)


def _limits(spec: SiteSpec, out: _Out) -> None:
    spawner = spec.hub.spawner
    limits = spawner.limits()
    if limits.memory:
        # KubeSpawner reads K/M/G/T as powers of 1024, like systemd; plain digits are bytes,
        # which it only takes as a number.
        limit: str | int = int(limits.memory) if limits.memory.isdigit() else limits.memory
        lower = _byte_size(limits.memory) < _byte_size(MEMORY_GUARANTEE)
        out.set("singleuser.memory", {"limit": limit,
                                      "guarantee": limit if lower else MEMORY_GUARANTEE})
    if limits.cpu:
        out.set("singleuser.cpu", {"limit": limits.cpu,
                                   "guarantee": min(limits.cpu, CPU_GUARANTEE)})
    if limits.memory or limits.cpu:
        out.row("`hub.spawner.mem_limit`, `hub.spawner.cpu_limit`",
                "`singleuser.memory`, `singleuser.cpu` (limit, guarantee)",
                f"guarantee: what the scheduler reserves per user (memory {MEMORY_GUARANTEE} "
                f"or the limit if lower, CPU {CPU_GUARANTEE} core or the limit if lower)")
    else:
        out.row("no per-user limits (`hub.spawner.mem_limit`, `hub.spawner.cpu_limit`)",
                "(chart default)",
                "no limits; the chart reserves 1G of memory per user")
    out.row(f"`hub.spawner` ({spawner.type})", "KubeSpawner",
            "each server in its own pod: private /tmp and devices, no privilege escalation")


def _culler(spec: SiteSpec, out: _Out) -> None:
    culler = spec.hub.idle_culler
    cull: dict[str, Any] = {"enabled": culler.enabled}
    if culler.enabled:
        # As on the host: stop servers (admins' too), never delete users.
        cull.update(timeout=culler.timeout, every=culler.every, maxAge=culler.max_age,
                    users=False, adminUsers=True)
    out.set("cull", cull)
    out.row("`hub.idle_culler`", "`cull.enabled`, `timeout`, `every`, `maxAge`")


def _wrap_secrets(value: Any, path: str) -> Any:
    """SecretStr leaves of a variant's values, wrapped (the 0600 values file only)."""
    if isinstance(value, SecretStr):
        return Secret(path, value)
    if isinstance(value, Mapping):
        return {k: _wrap_secrets(v, f"{path}.{k}") for k, v in value.items()}
    return value


def _tls(spec: SiteSpec, out: _Out) -> None:
    """Generic: each TLS variant knows how the chart's proxy serves it (`pod_proxy`)."""
    pod = spec.tls.pod_proxy()
    for key, value in pod.values.items():
        out.set(f"proxy.{key}", _wrap_secrets(value, f"proxy.{key}"))
    out.row(*pod.row)
    for where, why in pod.gaps:
        out.gap(where, why)


def _tls_common(spec: SiteSpec, out: _Out) -> None:
    tls = spec.tls
    if tls.min_version != "1.2":
        out.gap("tls.min_version", f"TLS {tls.min_version} only: the chart's proxies accept "
                "TLS 1.2 and newer (Traefik: proxy.traefik.extraDynamicConfig tls options)")
    else:
        out.row("`tls.min_version = '1.2'`", "(the chart's proxies)", "TLS 1.2 and newer")
    if tls.http_port is None and not tls.pod_issues_certificate:
        out.set("proxy.service.disableHttpPort", True)
        out.row("`tls.http_port: null`", "`proxy.service.disableHttpPort: true`")
    elif tls.http_port not in (None, 80):
        out.gap("tls.http_port", f"the proxy-public service answers plain HTTP on 80, not "
                f"{tls.http_port}")
    else:
        out.row("`tls.http_port`", "(the proxy-public service)", "plain HTTP on 80")


def _secrets(secrets: HostSecrets | None, out: _Out) -> None:
    if secrets is None:
        out.row("the cookie secret, the proxy's token", "(left out)",
                "helm makes new ones and keeps them; everyone logs in again")
        return
    out.set("hub.cookieSecret", Secret("hub.cookieSecret", secrets.cookie_secret))
    out.set("proxy.secretToken", Secret("proxy.secretToken", secrets.proxy_token))
    out.row("the cookie secret, the proxy's token", "`hub.cookieSecret`, `proxy.secretToken`",
            "read from the host (`--reuse-secrets`): logins survive the move")


# Components the chart has no place for: mentioned when the site sets them.
_HOST_ONLY = {
    "firewall": "the host's firewall has no equivalent: the load balancer (proxy.service) and "
                "the chart's NetworkPolicies (on by default) decide what is reachable",
    "ddns": "the DDNS updater keeps the name on the host's address: point the name at the "
            "proxy-public service's external address instead (kubectl get service "
            "proxy-public), and stop the updater",
    "router": "forwards on a home router have no equivalent: users reach the cluster's load "
              "balancer",
    "network": "download proxies, CA certificates and timeouts configure the host's installs: "
               "a cluster needs them in its nodes' and image builds' settings (and "
               "singleuser.extraEnv for users' servers)",
    "notebook": "notebook-server settings are not used by a hub",
}


def _host_only(spec: SiteSpec, out: _Out) -> None:
    out.gap("backup.keep", f"`pyinfra-jupyter backup` keeps the last {spec.backup.keep} "
            "backups on the host; the chart makes none: back up the hub's volume (hub-db-dir) "
            "and users' volumes with your cluster's tools (VolumeSnapshots, Velero)")
    for component, why in _HOST_ONLY.items():
        default = SiteSpec.model_fields[component].get_default(call_default_factory=True)
        if getattr(spec, component) != default:
            out.gap(component, why)


def _dockerfile(spec: SiteSpec, out: _Out) -> str | None:
    """The single-user image's Dockerfile when the site installs more than the chart's image
    carries (None: the chart's image will do)."""
    python, lab = spec.python, spec.hub.jupyterlab_version
    os_packages = list(python.os_packages) + (["build-essential"] if python.build_tools else [])
    pip = ([f"jupyterlab=={lab}"] if lab else []) + list(python.packages)
    out.row("`python.packages`, `python.os_packages`, `python.build_tools`, "
            "`hub.jupyterlab_version`", "`singleuser.image`",
            "build the image below" if os_packages or pip else "the chart's image")
    if not (os_packages or pip):
        return None
    lines = [
        "# Users' servers: Jupyter's docker-stacks base image (user jovyan, uid 1000, gid 100)",
        "# plus this site's packages. Pin a dated tag instead of latest.",
        "FROM quay.io/jupyter/base-notebook:latest",
    ]
    if os_packages:
        lines += [
            "USER root",
            "RUN apt-get update \\",
            " && apt-get install -y --no-install-recommends "
            + " ".join(map(shlex.quote, os_packages)) + " \\",
            " && rm -rf /var/lib/apt/lists/*",
            "USER ${NB_UID}",
        ]
    if pip:
        lines.append("RUN pip install --no-cache-dir " + " ".join(map(shlex.quote, pip)))
    return "\n".join(lines) + "\n"


# -- output -----------------------------------------------------------------------------------


def plain(values: Any, reveal: bool) -> Any:
    """The values as YAML-ready data: secrets revealed (for the 0600 file) or a placeholder."""
    if isinstance(values, Mapping):
        return {key: plain(value, reveal) for key, value in values.items()}
    if isinstance(values, list | tuple):
        return [plain(value, reveal) for value in values]
    if isinstance(values, Secret):
        return values.value.get_secret_value() if reveal else f"<secret: {values.what}>"
    return values


def values_yaml(values: Mapping[str, Any], name: str, reveal: bool) -> str:
    """The values file's text; with reveal=False (golden files, previews) no secret in it."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        # PEM blocks as literal blocks, as the chart's documentation writes them.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                       style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    header = (f"# Zero to JupyterHub values for {name}, exported from its site spec by\n"
              f"# `pyinfra-jupyter export z2jh`; see {safe_name(name)}.guide.md. May hold "
              "secrets:\n# keep it mode 0600 and out of version control.\n")
    body = yaml.dump(plain(values, reveal), Dumper=Dumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True, width=100)
    return header + body


def _secret_paths(values: Any) -> set[str]:
    if isinstance(values, Mapping):
        return set().union(*(_secret_paths(v) for v in values.values()))
    if isinstance(values, list | tuple):
        return set().union(*(_secret_paths(v) for v in values))
    return {values.what} if isinstance(values, Secret) else set()


def safe_name(host: str) -> str:
    """A file name for a host name ('@vagrant/debian' -> 'vagrant-debian')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", host).strip("-.") or "host"


def _guide(spec: SiteSpec, name: str, out: _Out, dockerfile: str | None, reused: bool) -> str:
    base = safe_name(name)
    hub = spec.hub
    lines = [
        f"# Moving {name} to Zero to JupyterHub",
        "",
        f"Exported by `pyinfra-jupyter export z2jh` from the site spec of {name}, for the Zero "
        f"to JupyterHub Helm chart whose appVersion is JupyterHub {CHART_APP_VERSION}. The "
        f"values are in `{base}.values.yaml` (mode 0600: it may hold secrets; keep it out of "
        "version control).",
        "",
        "## What carries over",
        "",
        "| site spec | z2jh values | how |",
        "|---|---|---|",
        *(f"| {s} | {v} | {h} |" for s, v, h in out.rows),
        "",
        "## Not carried over",
        "",
    ]
    if out.findings:
        lines += [f"- `{f.field}`: {f.message}" for f in out.findings]
    else:
        lines.append("Nothing: every setting of this site has a place in the values.")
    lines += [
        "",
        "Always, whatever the site:",
        "",
        "- **System accounts.** Users are not Unix accounts in pods: every server runs as "
        f"`jovyan` (uid {POD_UID}, gid {POD_GID}) with its home at `/home/jovyan`. Notebooks "
        "that name `/home/<user>/...` need the new path.",
        "- **Home directories** move with the steps below: copied into each user's volume and "
        f"re-owned to {POD_UID}:{POD_GID}, or served from NFS with `subPath: \"{{username}}\"`.",
        f"- **The database** (`{paths.hub_database(hub.state_dir)}`) moves into the hub's volume "
        "(`hub.db.type: sqlite-pvc`): users, admins, tokens"
        + "".join(f", and {what}" for what in hub.auth.pod_database_holds) + ".",
        "",
        "## Secrets",
        "",
    ]
    if reused:
        lines.append("`hub.cookieSecret` and `proxy.secretToken` were read from the running "
                     "host (`--reuse-secrets`) and are in the values file only: with the "
                     "database moved too, people stay logged in.")
    else:
        lines.append("`hub.cookieSecret` and `proxy.secretToken` are left out: helm makes new "
                     "ones at install and keeps them across upgrades, and everyone logs in "
                     "again once. To keep logins, export again with `--reuse-secrets` (reads "
                     f"`{cookie_secret_file(spec)}` and `{PROXY_TOKEN_ENV}` over SSH).")
    spec_secrets = sorted(_secret_paths(out.values) - {"hub.cookieSecret", "proxy.secretToken"})
    if spec_secrets:
        lines += ["", f"From the spec, {', '.join(f'`{s}`' for s in spec_secrets)}: in the "
                  "values file only; this guide and the command's output never show them."]
    lines += ["", "## Users' image", ""]
    if dockerfile:
        lines += [
            "The site installs packages users' kernels need: build this image, push it to a "
            "registry the cluster can pull from, and set `singleuser.image.name` and "
            "`singleuser.image.tag` in the values.",
            "",
            "```dockerfile",
            dockerfile.rstrip("\n"),
            "```",
        ]
    else:
        lines.append("No extra packages: the chart's single-user image will do.")
    lines += ["", "## Steps", ""]
    lines += _steps(spec, base)
    return "\n".join(lines) + "\n"


def _steps(spec: SiteSpec, base: str) -> list[str]:
    hub, tls = spec.hub, spec.tls
    names = ", ".join(tls.public_names()) or "your hub's name"
    db = paths.hub_database(hub.state_dir)
    helper = (
        "kubectl -n jhub run {pod} --image=busybox --restart=Never --overrides='"
        '{{"spec":{{"containers":[{{"name":"{pod}","image":"busybox","command":["sleep",'
        '"3600"],"volumeMounts":[{{"name":"v","mountPath":"/v"}}]}}],"volumes":[{{"name":'
        '"v","persistentVolumeClaim":{{"claimName":"{claim}"}}}}]}}}}\''
    )
    return [
        f"1. **Versions.** On the host, `sudo {hub.prefix}/bin/jupyterhub --version`. The "
        f"chart's hub runs JupyterHub {CHART_APP_VERSION}: a database written by a newer "
        "JupyterHub may not open in an older one. If the host's is newer, pick a chart "
        "release with that JupyterHub or start the cluster with a new database (skip step 5).",
        "2. **Image.** If the site needs one (above), build and push it and set "
        "`singleuser.image` in the values.",
        "3. **Install** (with `helm search repo jupyterhub/jupyterhub --versions`, pick the "
        f"chart release whose APP VERSION is {CHART_APP_VERSION}):",
        "",
        "   ```sh",
        "   helm repo add jupyterhub https://hub.jupyter.org/helm-chart/ && helm repo update",
        "   helm upgrade --install jhub jupyterhub/jupyterhub --version CHART_VERSION \\",
        f"     --namespace jhub --create-namespace --values {base}.values.yaml",
        "   ```",
        "",
        "4. **Stop the host's hub.** Stop users' servers first (admin page, *Stop All*): "
        "they outlive the hub. Then:",
        "",
        "   ```sh",
        f"   sudo systemctl stop {HUB_UNIT} {PROXY_UNIT}",
        "   pgrep -af jupyterhub-singleuser   # prints nothing once every server is stopped",
        "   ```",
        "",
        "5. **Database** into the hub's volume `hub-db-dir`, with the hub pod stopped:",
        "",
        "   ```sh",
        "   kubectl -n jhub scale deployment hub --replicas=0",
        "   " + helper.format(pod="db-copy", claim="hub-db-dir"),
        f"   sudo cat {db} | kubectl -n jhub exec -i db-copy -- sh -c 'cat > "
        "/v/jupyterhub.sqlite'",
        "   kubectl -n jhub exec db-copy -- chown 1000:1000 /v/jupyterhub.sqlite",
        "   kubectl -n jhub delete pod db-copy",
        "   kubectl -n jhub scale deployment hub --replicas=1",
        "   ```",
        "",
        "6. **Home directories**, one of:",
        "   - *Each user's own volume* (the chart's default, `singleuser.storage.type: "
        "dynamic`): a user's claim `claim-<user>` appears the first time their server starts; "
        "start and stop it (or make the claim yourself), then for each user:",
        "",
        "     ```sh",
        "     " + helper.format(pod="home-copy", claim="claim-USER"),
        "     sudo tar -C /home/USER -cf - . | kubectl -n jhub exec -i home-copy -- tar -C /v "
        "-xf -",
        f"     kubectl -n jhub exec home-copy -- chown -R {POD_UID}:{POD_GID} /v",
        "     kubectl -n jhub delete pod home-copy",
        "     ```",
        "",
        "     (KubeSpawner escapes unusual characters in `<user>`: `kubectl -n jhub get pvc` "
        "shows the names.)",
        "   - *One NFS share*, a directory per user: copy `/home/USER` to `SHARE/USER`, "
        f"`chown -R {POD_UID}:{POD_GID}` it, make a PersistentVolumeClaim `home-nfs` for the "
        "share, and add to the values:",
        "",
        "     ```yaml",
        "     singleuser:",
        "       storage:",
        "         type: static",
        "         static:",
        "           pvcName: home-nfs",
        '           subPath: "{username}"',
        "     ```",
        "",
        f"7. **DNS.** Point {names} at the external address of "
        "`kubectl -n jhub get service proxy-public`"
        + (" (the certificate is issued once it resolves there)" if tls.pod_issues_certificate else "")
        + "; an OAuth callback URL stays valid while the name stays the same.",
        "8. **Check.** Log in as an admin; the admin page lists the users from the host.",
        "9. **Keep the host** stopped but intact until the cluster has served a class: to go "
        f"back, scale the hub to 0, point DNS at the host and `sudo systemctl start "
        f"{PROXY_UNIT} {HUB_UNIT}`.",
    ]
