"""Reach package registries from behind a proxy, trusting extra CA certificates.

Proxy URLs may carry credentials, so they live only in 0600 root files: the environment
file every download command sources (`NETWORK_ENV`) and apt's proxy settings. Extra CA
certificates go into the system trust store, and pip, node and requests are pointed at
the resulting bundle.
"""

from __future__ import annotations

from pydantic import SecretStr

from .. import paths
from ..items import Absent, Directory, File, Item, Step
from ..ops.converge import command
from ..site import Site

NAME = "network"
TITLE = "Configure proxy and CA trust"
CA_FILE = "pyinfra-jupyter.crt"


def wanted(spec) -> bool:
    return True


def download_env(site: Site) -> dict[str, str]:
    """Proxy settings and the CA bundle for commands that download (pip, npm, curl)."""
    network = site.spec.network
    env = network.proxy_env()
    if network.ca_certificates:
        bundle = site.platform.family.ca_bundle
        env.update(PIP_CERT=bundle, REQUESTS_CA_BUNDLE=bundle, SSL_CERT_FILE=bundle,
                   NODE_EXTRA_CA_CERTS=bundle, npm_config_cafile=bundle)
    return env


def env_file(env: dict[str, str]) -> str:
    """KEY='value' lines that both sh (`. FILE`) and systemd (EnvironmentFile=) read the
    same way: the spec's values never hold a quote (validated), so single quotes suffice."""
    for value in env.values():
        if "'" in value or "\n" in value:  # pragma: no cover - the spec refuses both
            raise ValueError("environment values must not hold quotes or newlines")
    return "".join(f"{key}='{value}'\n" for key, value in sorted(env.items()))


def items(site: Site) -> list[Item]:
    network, family = site.spec.network, site.platform.family
    out: list[Item] = [Directory(paths.ETC, mode="755")]
    for path, content in site.platform.release.repo_files:
        # Said in the run's output: the host's own repos are replaced.
        out.append(File(path, content, label=f"Point yum at vault.centos.org ({path}): "
                        f"{site.platform.label}'s mirrors are gone since its end of life"))
    ca_path = f"{family.ca_anchor_dir}/{CA_FILE}"
    if network.ca_certificates:
        bundle = "".join(pem.strip() + "\n" for pem in network.ca_certificates)
        out.append(File(ca_path, bundle, label=f"Trust the spec's CA certificates ({ca_path})"))
    else:
        out.append(Absent(ca_path, label=f"Remove {ca_path} (no extra CA certificates)"))
    out.append(Step(command, "Rebuild the system CA bundle",
                    {"command": family.ca_rebuild}, restart_on=(f"file:{ca_path}",
                                                                f"absent:{ca_path}")))
    if family.proxy_conf:
        if network.has_proxy:
            conf = family.proxy_config(
                network.http_proxy.get_secret_value() if network.http_proxy else None,
                network.https_proxy.get_secret_value() if network.https_proxy else None,
            )
            out.append(File(family.proxy_conf, SecretStr(conf), mode="600",
                            label=f"Upload {family.proxy_conf} (proxy settings)"))
        else:
            out.append(Absent(family.proxy_conf))
    env = download_env(site)
    out.append(File(paths.NETWORK_ENV, SecretStr(env_file(env)), mode="600",
                    label=f"Upload {paths.NETWORK_ENV} (proxy settings for downloads)"))
    out.append(File(paths.NETWORK_ENV_USERS, env_file(users_env(site, env)),
                    label=f"Upload {paths.NETWORK_ENV_USERS} (proxy settings for users' servers)"))
    return out


def users_env(site: Site, env: dict[str, str]) -> dict[str, str]:
    """What users' servers get: never a proxy credential (users can read their environment;
    JupyterLab even logs a proxy URL it cannot parse)."""
    if not site.spec.network.proxy_has_credentials:
        return env
    proxy_keys = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"}
    return {k: v for k, v in env.items() if k not in proxy_keys}


def after_removal(site: Site) -> list[Item]:
    """Uninstall: the CA anchor is gone with our files; the system bundle is rebuilt then."""
    family = site.platform.family
    return [Step(command, "Rebuild the system CA bundle (without the spec's CA certificates)",
                 {"command": family.ca_rebuild},
                 restart_on=(f"absent:{family.ca_anchor_dir}/{CA_FILE}",))]
