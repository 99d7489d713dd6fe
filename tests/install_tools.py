"""Install the Debian tools the test suite drives, when missing (run by `make test`).

    python tests/install_tools.py

The lab installs its own tools (pyinfra_jupyter/lab/preflight.py); these are the ones the
tests use beside it: Pebble (a real ACME server), Debian's Chromium for the browser test
(never a downloaded browser), systemd-analyze for unit checks, openssl and curl for probes.
A tool that cannot be installed fails the run: a test is never skipped for a missing tool.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyinfra_jupyter.lab.preflight import EXTRA_PATH, _apt_install  # noqa: E402
from pyinfra_jupyter.lab.util import LabError  # noqa: E402

# command -> Debian package
TOOLS = {
    "pebble": "pebble",
    "pebble-challtestsrv": "pebble",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    # The LDAP login test's directory server (tests/lab/test_login_ldap.py).
    "slapd": "slapd",
    "slapadd": "slapd",
    "systemd-analyze": "systemd",
    "openssl": "openssl",
    "curl": "curl",
    "nft": "nftables",
    "iptables": "iptables",
}


def missing() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_PATH])
    return sorted({pkg for cmd, pkg in TOOLS.items() if not shutil.which(cmd, path=path)})


def main() -> int:
    packages = missing()
    if not packages:
        return 0
    if os.geteuid() != 0:
        print(f"tests need Debian packages {' '.join(packages)}: install them as root",
              file=sys.stderr)
        return 1
    print(f"install_tools: installing {' '.join(packages)}", file=sys.stderr)
    try:
        _apt_install(packages)
    except LabError as exc:
        print(f"install_tools: {exc}", file=sys.stderr)
        return 1
    still = missing()
    if still:
        print(f"install_tools: still missing after install: {' '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
