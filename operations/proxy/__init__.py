"""configurable-http-proxy: the hub's public HTTPS entry point, as its own service.

The proxy runs apart from the hub (the hub has `should_start = False`), so restarting the
hub never drops users' connections. It is installed from npm into its own prefix, runs as
an unprivileged system user that may read only its own copy of the TLS key and bind the
public port (CAP_NET_BIND_SERVICE only), and shares one auth token with the hub through an
environment file that the host makes once (0600 root).
"""

from __future__ import annotations

from pyinfra.api.exceptions import DeployError

from pyinfra_jupyter.spec import SiteSpec

from .. import paths
from ..items import Absent, File, Item, NpmPackage, Packages, Service, Step, Venv
from ..ops.accounts import host_secret
from ..ops.render import render
from ..platform import NODE_MIN, NODE_WHEEL, NODE_WHEELS, Platform, npm_for
from ..site import Site

NAME = "proxy"
TITLE = "Install and run configurable-http-proxy"

PREFIX = "/opt/configurable-http-proxy"
UNIT_FILE = f"{paths.UNIT_DIR}/{paths.PROXY_UNIT}"
NODE = "/usr/bin/node"
# proxy.node "wheel": Node from PyPI's nodejs-bin wheel, in a venv of its own.
NODE_VENV = f"{paths.OPT}/node"
ENTRYPOINT = f"{PREFIX}/lib/node_modules/configurable-http-proxy/bin/configurable-http-proxy"


def wanted(spec: SiteSpec) -> bool:
    return spec.mode == "hub"


def version(spec: SiteSpec, platform: Platform) -> str:
    return spec.proxy.version or platform.pin("configurable-http-proxy")


def node_provider(spec: SiteSpec, platform: Platform) -> str:
    """`system` or `wheel`: the spec's choice, or for `auto` the distro's Node when its
    release ships one new enough for the pinned proxy."""
    if spec.proxy.node != "auto":
        return spec.proxy.node
    return "system" if platform.release.node >= NODE_MIN else "wheel"


def node_major(spec: SiteSpec, platform: Platform) -> int:
    if node_provider(spec, platform) == "wheel":
        return int(NODE_WHEEL[1].split(".")[0])
    return platform.release.node


def node_bin(site: Site) -> str:
    if node_provider(site.spec, site.platform) == "wheel":
        return f"{NODE_VENV}/lib/python{site.python_version}/site-packages/nodejs/bin/node"
    return NODE


def render_unit(spec: SiteSpec, platform: Platform, node: str = NODE) -> str:
    cert, key = paths.tls_copy(paths.PROXY_USER)
    return render(
        "proxy", "configurable-http-proxy.service",
        proxy=spec.proxy,
        # CHP takes '' for "all addresses"; an IPv6 address goes in as it is.
        ip=spec.proxy.ip,
        version=version(spec, platform),
        node=node,
        # Node's own switch: CHP's --ssl-protocol pins one exact version, not a minimum.
        tls_min_flag=f"--tls-min-v{spec.tls.min_version}",
        entrypoint=ENTRYPOINT,
        service_user=paths.PROXY_USER,
        tls_cert=cert,
        tls_key=key,
        token_env=paths.PROXY_TOKEN_ENV,
        # Requests with no route yet (e.g. right after a proxy restart) go to the hub.
        hub_api_port=spec.hub.api_port,
        caps=platform.systemd,
    )


def items(site: Site) -> list[Item]:
    spec, platform = site.spec, site.platform
    release = version(spec, platform)
    node = node_bin(site)
    if node_provider(spec, platform) == "system":
        if platform.release.node and platform.release.node < NODE_MIN:
            raise DeployError(
                f"{platform.label} ships Node {platform.release.node}; configurable-http-proxy "
                f"{release} needs Node {NODE_MIN}+: set proxy.node to `wheel` or `auto`")
        runtime: list[Item] = [Packages(platform.family.node_packages,
                                        "Node.js (runs configurable-http-proxy)",
                                        timeout=spec.network.timeout)]
    else:
        name, pin = NODE_WHEEL
        wheel = NODE_WHEELS.get(platform.arch)
        if wheel is None:
            raise DeployError(
                f"{platform.label}: no {name} wheel for {platform.arch} (x86_64, aarch64 and "
                f"armv7l have one); install Node {NODE_MIN}+ and set proxy.node to `system`")
        runtime = [Packages(("curl", "ca-certificates"), "curl (fetches npm)",
                            timeout=spec.network.timeout),
                   Venv(NODE_VENV, site.python_bin, site.python_version, (f"{name}=={pin}",),
                        f"Node.js {pin} (PyPI wheel {name}, runs configurable-http-proxy)",
                        timeout=spec.network.timeout, wheels=(wheel,))]
    return [
        *runtime,
        NpmPackage(PREFIX, "configurable-http-proxy", release, node,
                   npm_for(node_major(spec, platform)),
                   f"Install configurable-http-proxy {release} from npm into {PREFIX}",
                   timeout=spec.network.timeout),
        Step(host_secret,
             f"Make the proxy's auth token {paths.PROXY_TOKEN_ENV} (once, on the host, 0600)",
             {"path": paths.PROXY_TOKEN_ENV, "line": "CONFIGPROXY_AUTH_TOKEN={token}"},
             key_name=paths.PROXY_TOKEN_STEP.removeprefix("step:"), reads=(paths.PROXY_TOKEN_ENV,)),
        File(UNIT_FILE, render_unit(spec, platform, node)),
        # The unit is the spec's alone: a drop-in made by hand is drift.
        Absent(f"{UNIT_FILE}.d", label=f"Remove drop-ins added by hand ({UNIT_FILE}.d)"),
        Service(paths.PROXY_UNIT,
                restart_on=(f"npm:{PREFIX}", f"venv:{NODE_VENV}", f"file:{UNIT_FILE}", paths.PROXY_TOKEN_STEP,
                            paths.TLS_ENSURE, f"absent:{UNIT_FILE}.d"),
                reload_on=(f"file:{UNIT_FILE}", f"absent:{UNIT_FILE}.d"), port=spec.proxy.port),
    ]
