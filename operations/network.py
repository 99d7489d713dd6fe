"""Reach package registries from behind a proxy, trusting extra CA certificates."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, server

from .platforms import Platform
from .spec.network import NetworkSpec

CA_DIRS = {
    # (directory for extra anchors, command that rebuilds the bundle, the bundle)
    "debian": ("/usr/local/share/ca-certificates", "update-ca-certificates",
               "/etc/ssl/certs/ca-certificates.crt"),
    "rhel": ("/etc/pki/ca-trust/source/anchors", "update-ca-trust extract",
             "/etc/pki/tls/certs/ca-bundle.crt"),
}
APT_PROXY = "/etc/apt/apt.conf.d/90pyinfra-jupyter-proxy"
ENV_FILE = "/etc/pyinfra-jupyter/network.env"


def ca_bundle(platform: Platform) -> str:
    """The system CA bundle that pip, node and requests should use on this host."""
    return CA_DIRS[platform.family][2]


def download_env(network: NetworkSpec, platform: Platform) -> dict[str, str]:
    """Environment for commands that download (pip, npm): proxy and the system CA bundle."""
    env = dict(network.proxy_env)
    if network.ca_certificates:
        bundle = ca_bundle(platform)
        env.update(PIP_CERT=bundle, REQUESTS_CA_BUNDLE=bundle, SSL_CERT_FILE=bundle,
                   NODE_EXTRA_CA_CERTS=bundle, npm_config_cafile=bundle)
    return env


@deploy("Configure proxy and CA trust")
def deploy_network(network: NetworkSpec, platform: Platform) -> None:
    anchors, rebuild, _ = CA_DIRS[platform.family]
    changed = []
    for index, pem in enumerate(network.ca_certificates):
        changed.append(files.put(
            name=f"Trust extra CA certificate {index + 1}",
            src=_text(pem),
            dest=f"{anchors}/pyinfra-jupyter-{index + 1}.crt",
            mode="644",
        ).will_change)
    server.shell(
        name="Rebuild the system CA bundle",
        commands=[rebuild],
        _if=lambda: any(changed),
    )

    proxy_lines = []
    if network.http_proxy:
        proxy_lines.append(f'Acquire::http::Proxy "{str(network.http_proxy).rstrip("/")}";')
    if network.https_proxy:
        proxy_lines.append(f'Acquire::https::Proxy "{str(network.https_proxy).rstrip("/")}";')
    if platform.family == "debian":
        if proxy_lines:
            files.put(name=f"Upload {APT_PROXY}", src=_text("\n".join(proxy_lines) + "\n"),
                      dest=APT_PROXY, mode="644")
        else:
            files.file(name=f"Remove {APT_PROXY}", path=APT_PROXY, present=False)
    elif network.http_proxy:
        files.line(name="Set yum's proxy", path="/etc/yum.conf", line=r"^proxy=.*",
                   replace=f"proxy={str(network.http_proxy).rstrip('/')}")

    # Our services read this (EnvironmentFile=-) when they download at run time.
    env = download_env(network, platform)
    files.directory(name="Create /etc/pyinfra-jupyter", path="/etc/pyinfra-jupyter", mode="755")
    files.put(
        name=f"Upload {ENV_FILE}",
        src=_text("".join(f"{k}={v}\n" for k, v in sorted(env.items()))),
        dest=ENV_FILE,
        mode="644",
    )


def _text(text: str):
    from io import StringIO

    return StringIO(text)
