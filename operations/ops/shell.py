"""Shell snippets every operation shares: quoting, network settings, bounded waits."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .. import paths

q = shlex.quote

# Commands that download read the proxy settings (and CA bundle) from the 0600 file the
# network component writes, never from an `export ...` on their command line.
WITH_NETWORK = f"if [ -r {paths.NETWORK_ENV} ]; then set -a; . {paths.NETWORK_ENV}; set +a; fi; "


# After a failed step that went through a proxy: whether the proxy takes connections at all
# (bash's /dev/tcp, so no curl is needed), named without any user:password part of its URL.
PROXY_CHECK = (
    '_pj_p=${https_proxy:-$http_proxy}; _pj_k=https_proxy; [ -n "${https_proxy:-}" ] || '
    '_pj_k=http_proxy; if [ -n "$_pj_p" ]; then '
    "_pj_a=$(printf %s \"$_pj_p\" | sed -e 's|^[A-Za-z]*://||' -e 's|^.*@||' -e 's|/.*$||'); "
    "_pj_s=$(printf %s \"$_pj_p\" | sed -n 's|^\\([A-Za-z]*\\)://.*|\\1|p'); "
    "_pj_h=$(printf %s \"$_pj_a\" | sed -e 's|:[0-9]*$||' -e 's|^\\[||' -e 's|\\]$||'); "
    "_pj_o=$(printf %s \"$_pj_a\" | sed -n 's|^.*:\\([0-9][0-9]*\\)$|\\1|p'); "
    'if ! timeout 5 bash -c "exec 3<>/dev/tcp/$_pj_h/${_pj_o:-80}" 2>/dev/null; then '
    'echo "UNREACHABLE: the package proxy ${_pj_s:-http}://$_pj_a (network.$_pj_k) does not '
    'take connections" >&2; fi; fi'
)


def bounded(command: str, seconds: int, what: str) -> str:
    """`command` killed after `seconds`; a timeout says STALLED and what it waited on (the
    fleet summary shows that line); any other failure says whether the proxy answers."""
    return (f"timeout -k 10 {int(seconds)} {command}; rc=$?; "
            f"if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo {q(f'STALLED: {what}: no answer within {seconds} s')} >&2; "
            f"elif [ $rc -ne 0 ]; then {PROXY_CHECK}; fi; "
            "[ $rc -eq 0 ]")


def sha256_check(sha256: str, path: str) -> str:
    """Fails unless the file at `path` (a safe path or a "$var/name" shell word) has this
    sha256: every download is checked on the host before use."""
    return f'echo "{sha256}  {path}" | sha256sum -c --quiet -'


# A swap file for the install steps of a small host (python.swap_mb).
SWAP_FILE = f"{paths.STATE}/install.swap"


@dataclass(frozen=True)
class Installs:
    """How the steps that install software (pip, npm, the CPython build) run on a host: with
    a temporary swap file on a small host (seed 002's 256 MB VPS cannot build or pip-install
    JupyterLab without one), and with piwheels as an extra index on 32-bit ARM (Raspberry Pi
    OS armhf: PyPI has few armv7l wheels, piwheels builds them)."""

    swap_mb: int = 0  # 0: no swap file
    keep_swap: bool = False
    extra_index_urls: tuple[str, ...] = ()
    # Where venv packages come from (python.wheels): "index" (the host's), "controller"
    # (ops/wheelhouse.py; an error when it cannot), "controller-or-index" (auto on a fleet).
    wheels: str = "index"
    arch: str = ""
    glibc: str = ""

    def wrap(self, command: str) -> str:
        """`command` with the swap file on around it (made if missing, removed afterwards
        unless kept); its exit status is kept."""
        if not self.swap_mb:
            return command
        on = (f"if ! swapon --show=NAME --noheadings 2>/dev/null | grep -qxF {SWAP_FILE}; then "
              f"mkdir -p {paths.STATE} && rm -f -- {SWAP_FILE} && (umask 077 && "
              f"{{ fallocate -l {self.swap_mb}M {SWAP_FILE} 2>/dev/null || "
              f"dd if=/dev/zero of={SWAP_FILE} bs=1M count={self.swap_mb} status=none; }}) && "
              f"mkswap {SWAP_FILE} >/dev/null && swapon {SWAP_FILE} && "
              f"echo 'pyinfra-jupyter: a {self.swap_mb} MiB swap file ({SWAP_FILE}) is on for "
              "this step' >&2; fi; ")
        off = "" if self.keep_swap else (
            f"swapoff {SWAP_FILE} 2>/dev/null; rm -f -- {SWAP_FILE}; ")
        return f"{on}( {command} ); rc=$?; {off}[ $rc -eq 0 ]"

    def say(self, host) -> None:
        """Tell the person running the deploy that this step gets a swap file."""
        if self.swap_mb:
            from pyinfra import logger

            logger.warning(
                f"{host.print_prefix}less than 1 GiB of memory: a {self.swap_mb} MiB swap file "
                f"({SWAP_FILE}) is on while this installs, "
                + ("and kept (python.keep_swap)" if self.keep_swap else "and removed afterwards"))

    @property
    def pip_options(self) -> str:
        return "".join(f" --extra-index-url {shlex.quote(url)}" for url in self.extra_index_urls)
