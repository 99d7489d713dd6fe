"""Package access for hosts that have no route out.

Chain, for a request from inside a host to ``http://127.0.0.1:3128``::

    host netns: socat TCP-LISTEN 127.0.0.1:3128 -> UNIX-CONNECT LAB/proxy.sock
    machine:    socat UNIX-LISTEN LAB/proxy.sock -> TCP 127.0.0.1:<lab proxy port>
    machine:    tinyproxy on 127.0.0.1:<lab proxy port> (one per lab)
                  *.debian.org -> acng_front on 127.0.0.1:3141 -> apt-cacher-ng on
                                  127.0.0.1:3142 (both shared by all labs; the front lets
                                  one refresh of a Release file run at a time)
                  everything else (PyPI, npm over CONNECT) -> direct

Unix sockets ignore network namespaces, which is what lets the proxy cross into
a host's namespace while the machine's namespace only gains loopback listeners.
apt-cacher-ng is shared because its cache must have one writer; it is what
makes a second host's (or a second lab's) `apt-get install` fast, and unlike a
bind-mounted /var/cache/apt/archives it does not make concurrent apt runs in
different hosts collide on apt's lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

from . import proc
from .util import STATE_ROOT, LabError, cache_dir, pid_alive, wait_for

ACNG_PORT = 3142
ACNG_UNIT = "acng"
FRONT_PORT = 3141
FRONT_UNIT = "acng-front"
# The shared cache service lives in its own pseudo-lab cgroup; a leading
# underscore cannot clash with a lab name.
SHARED_LAB = "_shared"


ACNG_CONF = """\
Port: {port}
BindAddress: 127.0.0.1
CacheDir: {cache}
LogDir: {log}
SocketPath: {run}/socket
PidFile: {run}/pid
SupportDir: /usr/lib/apt-cacher-ng
Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/
Remap-secdeb: security.debian.org security.debian.org/debian-security \
 deb.debian.org/debian-security /debian-security ; http://deb.debian.org/debian-security/
# Let CONNECT through for https mirrors (apt's https sources).
PassThroughPattern: .*
ExThreshold: 30
"""


def tinyproxy_conf(port: int, log: Path, pidfile: Path, upstream_acng: bool) -> str:
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 120",  # idle timeout: a dead upstream must not hang apt for 10 min
        "MaxClients 200",
        "Allow 127.0.0.1",
        f"LogFile \"{log}\"",
        "LogLevel Warning",
        f"PidFile \"{pidfile}\"",
        "DisableViaHeader Yes",
    ]
    if upstream_acng:
        # Only plain-HTTP Debian mirrors go through the apt cache.
        lines.append(f'Upstream http 127.0.0.1:{FRONT_PORT} ".debian.org"')
    return "\n".join(lines) + "\n"


def start_lab_proxy(lab: str, state_dir: Path, port: int) -> dict[str, int]:
    """Start this lab's tinyproxy and its unix-socket entrance; return their PIDs."""
    acng = ensure_acng()
    conf = state_dir / "tinyproxy.conf"
    conf.write_text(
        tinyproxy_conf(port, state_dir / "tinyproxy.log", state_dir / "tinyproxy.pid", acng)
    )
    tp = proc.spawn(lab, "proxy", ["tinyproxy", "-d", "-c", str(conf)],
                    state_dir / "tinyproxy.out")
    wait_for(lambda: _listening(port), 15, f"tinyproxy on 127.0.0.1:{port}")
    sock = state_dir / "proxy.sock"
    relay = proc.spawn(
        lab, "proxy",
        ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600", f"TCP:127.0.0.1:{port}"],
        state_dir / "proxy-relay.log",
    )
    wait_for(sock.exists, 10, "the proxy socket")
    return {"tinyproxy": tp, "proxy_relay": relay}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _acng_pidfile() -> Path:
    return STATE_ROOT / ".acng.pid"


def ensure_acng() -> bool:
    """Start the shared apt-cacher-ng and its front (acng_front.py) unless running; False
    when they cannot run (the labs' proxies then go to the mirrors directly).

    Callers hold the allocation lock, which serialises this with stop_acng_if_unused.
    """
    if not _ensure_cache():
        return False
    if _listening(FRONT_PORT):
        return True
    proc.kill_cgroup(SHARED_LAB, FRONT_UNIT)
    argv = [sys.executable, "-m", "pyinfra_jupyter.lab.acng_front", str(FRONT_PORT),
            str(ACNG_PORT)]
    proc.spawn(SHARED_LAB, FRONT_UNIT, argv, cache_dir() / "apt-cacher-ng" / "log" / "front.log",
               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        wait_for(lambda: _listening(FRONT_PORT), 15, "apt-cacher-ng's front")
    except LabError:
        proc.kill_cgroup(SHARED_LAB, FRONT_UNIT)
        return False
    return True


def _ensure_cache() -> bool:
    pidfile = _acng_pidfile()
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        pid = 0
    if pid_alive(pid) and _listening(ACNG_PORT):
        return True
    if _listening(ACNG_PORT):
        # Something else (a system apt-cacher-ng?) owns the port: use it as is.
        return True
    exe = "/usr/sbin/apt-cacher-ng"
    if not os.path.exists(exe):
        return False
    base = cache_dir() / "apt-cacher-ng"
    for sub in ("cache", "log", "run", "conf"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    # Our own config dir: the package's backends_debian names a mirror picked at
    # install time (ftp.debian.org here), which these machines cannot reach.
    (base / "conf" / "acng.conf").write_text(ACNG_CONF.format(
        port=ACNG_PORT, cache=base / "cache", log=base / "log", run=base / "run",
    ))
    argv = [exe, "-c", str(base / "conf"), "ForeGround=1"]
    pid = proc.spawn(SHARED_LAB, ACNG_UNIT, argv, base / "log" / "stdout.log")
    try:
        wait_for(lambda: _listening(ACNG_PORT), 15, "apt-cacher-ng")
    except LabError:
        proc.kill_cgroup(SHARED_LAB, ACNG_UNIT)
        return False
    pidfile.write_text(str(pid))
    return True


def stop_acng_if_unused() -> None:
    """Stop the shared apt-cacher-ng when no lab is left. Caller holds the allocation lock."""
    if any(STATE_ROOT.glob("*/state.json")):
        return
    proc.kill_cgroup(SHARED_LAB)
    with contextlib.suppress(FileNotFoundError):
        _acng_pidfile().unlink()
