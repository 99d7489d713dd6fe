"""Manage configurable-http-proxy: the hub's public HTTPS entry point, as its own service.

The proxy runs apart from the hub (the hub has `should_start = False`), so restarting the
hub never drops users' connections. It is installed from npm into its own prefix, runs as
an unprivileged system user that may read the TLS key (group jupyter-tls) and bind 443
(CAP_NET_BIND_SERVICE only), and shares one auth token with the hub through an environment
file that is made once, on the host, and never leaves it.
"""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, yum

from .common import PROXY_TOKEN_ENV, TLS_CERT, TLS_GROUP, TLS_KEY, service, template
from .network import download_env
from .platforms import Platform
from .spec import SiteSpec

PREFIX = "/opt/configurable-http-proxy"
USER = "jupyter-proxy"
UNIT = "configurable-http-proxy.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
NODE = "/usr/bin/node"

# npm itself is fetched from its registry rather than from apt: Debian 12's `npm` package
# pulls ~300 packages and took ~220 s in the lab, the tarball takes seconds. Pinned and
# checked by sha256 (taken from the registry tarball, matching its published sha512
# integrity). npm 10.9 is the newest line that runs on Debian 12's Node 18 (npm 11+
# needs Node 20+); it only installs the proxy and is not kept on the host.
NPM_VERSION = "10.9.9"
NPM_SHA256 = "c80bd097147cce32e31010b791bab8c71a26a5e10668210ec9d2e7f4c7cea2a1"
NPM_URL = f"https://registry.npmjs.org/npm/-/npm-{NPM_VERSION}.tgz"


class NpmPackageVersion(FactBase[str | None]):
    """The version of an npm package installed globally under a prefix, or None."""

    def command(self, prefix: str, package: str) -> str:
        return f"cat {prefix}/lib/node_modules/{package}/package.json 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        try:
            return json.loads("\n".join(output)).get("version")
        except ValueError:
            return None


@operation()
def npm_package(prefix: str, package: str, version: str):
    """
    Install an npm package globally into its own prefix, with a pinned, checksummed npm.

    + prefix: install root (the package lands in PREFIX/lib/node_modules, PREFIX/bin)
    + package: the npm package name
    + version: the exact version to install

    .. code:: python

        npm_package(prefix="/opt/configurable-http-proxy",
                    package="configurable-http-proxy", version="4.6.3")
    """
    installed = host.get_fact(NpmPackageVersion, prefix=prefix, package=package)
    if installed == version:
        host.noop(f"{package} {version} is already installed in {prefix}")
        return
    yield StringCommand(
        "tmp=$(mktemp -d) && trap 'rm -rf \"$tmp\"' EXIT"
        f" && curl -fsSL --retry 3 -o \"$tmp/npm.tgz\" {NPM_URL}"
        f" && echo \"{NPM_SHA256}  $tmp/npm.tgz\" | sha256sum -c --quiet -"
        " && tar -xzf \"$tmp/npm.tgz\" -C \"$tmp\""
        f" && {NODE} \"$tmp/package/bin/npm-cli.js\" install --global --prefix {prefix}"
        f" --no-audit --no-fund --no-update-notifier {package}@{version}"
    )


@deploy("Install and run configurable-http-proxy")
def deploy_proxy(spec: SiteSpec, platform: Platform) -> None:
    version = spec.proxy.version or platform.pins.chp
    _install_node(platform)

    server.group(name=f"Create the group {TLS_GROUP} (may read the TLS key)",
                 group=TLS_GROUP, system=True)
    server.user(
        name=f"Create the system user {USER} that runs the proxy",
        user=USER,
        system=True,
        home="/nonexistent",
        ensure_home=False,
        shell="/usr/sbin/nologin",
        groups=[TLS_GROUP],
    )

    installed = npm_package(
        name=f"Install configurable-http-proxy {version} from npm into {PREFIX}",
        prefix=PREFIX,
        package="configurable-http-proxy",
        version=version,
        _env=download_env(spec.network, platform),
    )

    token = _auth_token()

    unit = files.template(
        name=f"Upload {UNIT_FILE}",
        src=template("proxy", "configurable-http-proxy.service"),
        dest=UNIT_FILE,
        mode="644",
        proxy=spec.proxy,
        version=version,
        node=NODE,
        # Node's own switch: CHP's --ssl-protocol pins one exact version, not a minimum.
        tls_min_flag=f"--tls-min-v{spec.tls.min_version}",
        entrypoint=f"{PREFIX}/lib/node_modules/configurable-http-proxy/bin/"
        "configurable-http-proxy",
        service_user=USER,  # not `user`: files.template's own argument (file owner)
        tls_group=TLS_GROUP,
        tls_cert=TLS_CERT,
        tls_key=TLS_KEY,
        token_env=PROXY_TOKEN_ENV,
        # Requests with no route yet (e.g. right after a proxy restart) go to the hub.
        hub_api_port=spec.hub.api_port,
    )
    service(UNIT, changed=[installed, unit, token], unit_changed=unit.will_change)


def _install_node(platform: Platform) -> None:
    if platform.family == "debian":
        # Only the runtime: npm comes from its registry (see NPM_VERSION).
        apt.packages(
            name="Install Node.js (runs configurable-http-proxy)",
            packages=["nodejs", "curl", "ca-certificates"],
            extra_install_args="--no-install-recommends",
            # No update here: the Python component just refreshed the package lists.
        )
    elif platform.family == "rhel":
        yum.packages(name="Install Node.js (runs configurable-http-proxy)",
                     packages=["nodejs", "curl"])
    else:  # pragma: no cover - Platform refuses other families first
        raise DeployError(f"installing Node.js on {platform.label} is not supported")


def _auth_token():
    """Make the proxy's auth token once, on the host; later runs leave it alone.

    The token is generated by the host's own Python into a 0600 file, so it never passes
    through the controller, pyinfra's output or its diffs.
    """
    present = host.get_fact(File, path=PROXY_TOKEN_ENV)
    # Decided here rather than with _if: an operation guarded by _if still counts as a
    # change (will_change), which would restart both services on every run.
    missing = not (present and present.get("size"))
    if missing:
        server.shell(
            name=f"Generate the proxy's auth token into {PROXY_TOKEN_ENV} (once, mode 0600)",
            commands=[
                f"umask 077 && mkdir -p $(dirname {PROXY_TOKEN_ENV}) && test -s {PROXY_TOKEN_ENV} "
                "|| python3 -c 'import secrets; "
                "print(\"CONFIGPROXY_AUTH_TOKEN=\" + secrets.token_hex(32))' "
                f"> {PROXY_TOKEN_ENV}"
            ],
        )
    files.file(
        name=f"Keep {PROXY_TOKEN_ENV} readable by root only",
        path=PROXY_TOKEN_ENV,
        user="root",
        group="root",
        mode="600",
    )
    return missing
