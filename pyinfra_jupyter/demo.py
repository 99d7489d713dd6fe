"""`make demo`: the default hub site on a lab host, opened from this machine.

    python -m pyinfra_jupyter.demo      (as root, on Debian 12)

Brings up the lab "demo" (or $PJ_LAB) with one host, deploys the default site
(group_data/all.py: JupyterHub over HTTPS with a self-signed certificate, port 80
redirecting, a PAM admin whose generated password is kept in a 0600 file here) with
`pyinfra -y inventory/lab.py deploy.py`, forwards a loopback port of this machine to the
host's port 443 and prints, as its last line:

    demo: url=https://127.0.0.1:PORT/ user=NAME password_file=PATH

`PJ_DISTRO=bullseye` (or trixie) does the same on a host of that Debian release, in the lab
"dbullseye"; on Debian 11 the deploy builds CPython (once per machine: the lab keeps it).

Running it again re-uses the lab, the host and the forward; the deploy then changes
nothing. The secret itself is never printed. `pyinfra-jupyter lab down --lab demo` (or
`make clean-lab PJ_LAB=demo`) removes everything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .lab import Lab, LabError, net, proc
from .lab.util import pid_alive

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LAB = "demo"
FORWARD_UNIT = "demo-forward"
FIRST_PORT = 8443  # the forward's loopback port: the first free one from here


def log(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _built_python_prefix() -> str:
    """Where a deploy builds CPython (python.provider "source"): the lab caches it per distro."""
    sys.path.insert(0, str(REPO))
    from operations.platform import CPYTHON

    return f"/opt/pyinfra-jupyter/python/{CPYTHON.version}"


def main() -> int:
    # PJ_DISTRO=bullseye|trixie: a host of that Debian release, in a lab of its own (the
    # deploy goes to every host of inventory/lab.py's lab).
    distro = os.environ.get("PJ_DISTRO") or None
    name = os.environ.get("PJ_LAB") or (f"d{distro}"[:10] if distro else DEFAULT_LAB)
    os.environ["PJ_LAB"] = name  # inventory/lab.py reads it
    started = time.monotonic()
    try:
        lab = Lab(name, log=log)
        status = lab.up(1, distro=distro)
        host = status["hosts"][0]
        log(f"lab {name} is up ({time.monotonic() - started:.0f}s); deploying the default hub "
            f"site onto {host['name']} ({host['address']}, Debian {host['distro']})")
        prefix = _built_python_prefix()
        if lab.seed_python(host["name"], prefix):
            log(f"CPython from the lab's cache put into {prefix} (no build needed)")
        changed = deploy(lab)
        if lab.keep_python(host["name"], prefix):
            log(f"the CPython built in {prefix} is kept in the lab's cache")
        log(f"deploy done ({time.monotonic() - started:.0f}s): "
            + (f"{changed} operations changed something" if changed else "nothing changed"))
        port = forward(lab, host)
        wait_for_hub(port)
    except (LabError, DemoError) as exc:
        print(f"demo: failed: {exc}", file=sys.stderr)
        return 1
    user, password_file = admin_account()
    log(f"ready after {time.monotonic() - started:.0f}s; your browser will warn about the "
        "self-signed certificate")
    print(f"demo: url=https://127.0.0.1:{port}/ user={user} password_file={password_file}",
          flush=True)
    return 0


class DemoError(Exception):
    """A failure explained in one sentence."""


def deploy(lab: Lab) -> int:
    """Run the deploy; return how many operations changed something. Output goes to a log."""
    logfile = lab.dir / "demo-deploy.log"
    pyinfra = shutil.which("pyinfra", path=str(Path(sys.executable).parent)) or "pyinfra"
    with open(logfile, "w") as out:
        result = subprocess.run(
            [pyinfra, "-y", "inventory/lab.py", "deploy.py"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    text = re.sub(r"\x1b\[[0-9;]*m", "", logfile.read_text())
    if result.returncode != 0:
        tail = "\n".join(text.splitlines()[-25:])
        raise DemoError(f"the deploy failed (full output in {logfile}):\n{tail}")
    total = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    return int(total.group(2)) if total and total.group(2).isdigit() else 0


def forward(lab: Lab, host: dict) -> int:
    """A loopback port here -> the host's 443 over the lab bridge; kept while the lab is up."""
    state_file = lab.dir / "demo-forward.json"
    try:
        state = json.loads(state_file.read_text())
        if pid_alive(state["pid"]) and not net.port_free(state["port"]):
            wait_for_hub(state["port"], timeout=10)
            return state["port"]
    except DemoError:
        log("the old forward does not answer; replacing it")
    except (FileNotFoundError, ValueError, KeyError):
        pass
    proc.kill_cgroup(lab.name, FORWARD_UNIT)
    port = next((p for p in range(FIRST_PORT, FIRST_PORT + 100) if net.port_free(p)), None)
    if port is None:
        raise DemoError(f"no free loopback port in {FIRST_PORT}-{FIRST_PORT + 99}")
    probe_ns = lab.status()["probe_netns"]
    sock = lab.dir / "demo-forward.sock"
    # The connection enters the lab from its probe namespace, like any outside client:
    # it reaches the host's public port through the host's own firewall. A unix socket
    # carries it there (unix sockets ignore network namespaces).
    proc.spawn(
        lab.name, FORWARD_UNIT,
        ["ip", "netns", "exec", probe_ns, "socat",
         f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600", f"TCP:{host['address']}:443"],
        lab.dir / "demo-forward.log",
    )
    pid = proc.spawn(
        lab.name, FORWARD_UNIT,
        ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"UNIX-CONNECT:{sock}"],
        lab.dir / "demo-forward.log",
    )
    state_file.write_text(json.dumps({"pid": pid, "port": port, "host": host["name"]}))
    return port


def wait_for_hub(port: int, timeout: float = 120.0) -> None:
    """Wait until the hub's login page answers through the forward."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed; we only check that the hub answers
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with opener.open(f"https://127.0.0.1:{port}/hub/login", timeout=10) as answer:
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}"
        except (TimeoutError, OSError) as exc:
            last = str(exc)
        time.sleep(1)
    raise DemoError(f"the hub did not answer on https://127.0.0.1:{port}/ ({last})")


def admin_account() -> tuple[str, str]:
    """The default site's admin account and its password file (group_data/all.py)."""
    from pyinfra_jupyter.spec import build_spec

    data: dict = {}
    exec((REPO / "group_data" / "all.py").read_text(), data)  # plain data, our own file
    spec = build_spec({k: v for k, v in data.items() if not k.startswith("__")})
    admin = next(a for a in spec.users.accounts if a.admin)
    return admin.name, str(Path(admin.password_file).expanduser())


if __name__ == "__main__":
    sys.exit(main())
