"""The rollback guard: a transient systemd timer that restores the previous rules unless the
deploy, in a separate step after the rules are live, proves it can still reach the host.

Like `iptables-apply`, but across the SSH round trip: `arm` saves the live rules and starts
`pj-firewall-rollback.timer`; the backend applies; `confirm` opens a NEW TCP connection to
the host's sshd from the controller (established connections survive almost any rule change,
so only a new one proves the rules let SSH in) and then stops the timer.
"""

from __future__ import annotations

import shlex
import socket

from pyinfra.api import FunctionCommand, operation

UNIT = "pj-firewall-rollback"
STATE_DIR = "/var/lib/pyinfra-jupyter/firewall/previous"


@operation()
def arm(save: list[str], restore: list[str], seconds: int = 60):
    """Save the live rules and start a timer that restores them after `seconds`.

    + save: shell commands that copy the live rules into STATE_DIR
    + restore: shell commands that put them back (run by the timer)
    + seconds: how long the deploy has to confirm
    """
    yield (f"systemctl stop {UNIT}.timer {UNIT}.service 2>/dev/null; "
           f"systemctl reset-failed {UNIT}.timer {UNIT}.service 2>/dev/null; true")
    yield f"rm -rf {STATE_DIR} && mkdir -p {STATE_DIR}"
    yield from save
    script = " && ".join(restore) + f" && logger -t {UNIT} 'previous firewall rules restored'"
    yield (f"systemd-run --quiet --unit={UNIT} --on-active={seconds}s "
           f"--description='Restore the firewall rules saved before pyinfra-jupyter applied new ones' "
           f"/bin/sh -c {shlex.quote(script)}")


def check_new_connection(address: str, port: int, timeout: float = 10.0) -> bool:
    """On the controller: a fresh TCP connection to sshd answers with its banner."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        banner = sock.recv(64)
    if not banner.startswith(b"SSH-"):
        raise RuntimeError(f"{address}:{port} answered {banner!r}, not an SSH banner")
    return True


@operation()
def confirm(address: str | None = None, port: int = 22):
    """Prove the host still takes new SSH connections, then stop the rollback timer.

    + address/port: where the controller reaches sshd (None: not over SSH, skip the probe)
    """
    if address:
        yield FunctionCommand(check_new_connection, (address, port), {})
    yield (f"systemctl is-active --quiet {UNIT}.timer || "
           f"{{ echo 'the rollback timer already fired: the previous rules are back' >&2; "
           f"exit 1; }}")
    yield f"systemctl stop {UNIT}.timer"
