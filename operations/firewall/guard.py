"""The rollback guard: the previous rules come back unless the deploy, in a separate step
after the new rules are live, proves it can still get in.

Like `iptables-apply`, but across the SSH round trip:

- `arm` saves the live rules and starts `pj-firewall-rollback.timer` (transient), and marks
  the new rules *unconfirmed*: the boot guard (`pj-firewall-boot-guard.service`, installed on
  the first arm and kept) restores the saved rules early at boot, before any firewall
  service loads its configuration, while the mark is there. A reboot inside the window
  (which loses the transient timer) therefore never boots into unconfirmed rules, on the
  backends whose rules are permanent as soon as they are applied (ufw, firewalld).
- the backend applies;
- `confirm` opens a NEW SSH connection the way this deploy's own connection was made
  (pyinfra's connector: the same `~/.ssh/config` HostName, Port, ProxyJump, user and keys;
  established connections survive almost any rule change, so only a new one proves the
  rules let SSH in), then stops the timer and clears the mark.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FunctionCommand, operation

from .. import paths

UNIT = "pj-firewall-rollback"
BOOT_UNIT = "pj-firewall-boot-guard.service"
STATE_DIR = paths.FIREWALL_PREVIOUS
MARK = f"{STATE_DIR}/unconfirmed"
BOOT_SCRIPT = f"{STATE_DIR}/restore-at-boot.sh"
# What the timer runs. A file, not a `sh -c` argument: systemd-run escapes `;` in its
# arguments in a way some systemd versions then pass on literally.
RESTORE_SCRIPT = f"{STATE_DIR}/restore.sh"

# Before every firewall service we know of; after the local file systems (/var/lib).
BOOT_GUARD = f"""[Unit]
Description=Restore the firewall rules pyinfra-jupyter applied but never confirmed
DefaultDependencies=no
After=local-fs.target
Before=network-pre.target ufw.service firewalld.service nftables.service netfilter-persistent.service iptables.service ip6tables.service
Wants=network-pre.target
ConditionPathExists={MARK}

[Service]
Type=oneshot
ExecStart=/bin/sh {BOOT_SCRIPT}

[Install]
WantedBy=sysinit.target
"""


@operation()
def arm(save: list[str], restore: list[str], seconds: int = 60,
        restore_at_boot: list[str] | None = None):
    """Save the live rules and start a timer that restores them after `seconds`.

    + save: shell commands that copy the live rules into STATE_DIR
    + restore: shell commands that put them back (run by the timer)
    + seconds: how long the deploy has to confirm
    + restore_at_boot: commands that put the saved configuration back before the firewall
      service starts at boot (None: the new rules reach the boot config only once confirmed)
    """
    yield (f"systemctl stop {UNIT}.timer {UNIT}.service 2>/dev/null; "
           f"systemctl reset-failed {UNIT}.timer {UNIT}.service 2>/dev/null; true")
    yield f"rm -rf {STATE_DIR} && mkdir -p -m 700 {STATE_DIR}"
    yield from save
    done = f"rm -f {MARK} && logger -t {UNIT} 'previous firewall rules restored'"
    if restore_at_boot:
        boot = " && ".join([*restore_at_boot, done]) + "\n"
        unit = f"{paths.UNIT_DIR}/{BOOT_UNIT}"
        yield (f"printf %s {shlex.quote(boot)} > {BOOT_SCRIPT} && "
               f"printf %s {shlex.quote(BOOT_GUARD)} > {unit} && "
               f"systemctl daemon-reload && systemctl enable --quiet {BOOT_UNIT} && "
               f"touch {MARK}")
    script = " && ".join(restore) + f" && {done}\n"
    yield f"printf %s {shlex.quote(script)} > {RESTORE_SCRIPT}"
    # AccuracySec=1s: a timer's default accuracy is one minute, and the lab saw the rollback
    # of a 90 s window fire after 126 s (systemd-run's --timer-property: systemd 218+).
    yield (f"systemd-run --quiet --unit={UNIT} --on-active={seconds}s "
           "--timer-property=AccuracySec=1s "
           f"--description='Restore the firewall rules saved before pyinfra-jupyter applied new ones' "
           f"/bin/sh {RESTORE_SCRIPT}")


def check_new_connection(state, host, timeout: float = 15.0) -> bool:
    """On the controller: a brand-new SSH connection, made exactly as pyinfra made this
    deploy's (ssh_config HostName/Port/ProxyJump, user, keys), logs in and runs `true`."""
    from pyinfra.connectors.sshuserclient import SSHClient

    kwargs = host.connector.make_paramiko_kwargs()
    hostname = kwargs.pop("hostname")
    kwargs["timeout"] = timeout
    kwargs.setdefault("_pyinfra_ssh_paramiko_connect_kwargs", {})
    kwargs["_pyinfra_ssh_paramiko_connect_kwargs"] = {
        **(kwargs["_pyinfra_ssh_paramiko_connect_kwargs"] or {}),
        "banner_timeout": timeout, "auth_timeout": timeout}
    client = SSHClient()
    try:
        client.connect(hostname, **kwargs)
        _, stdout, _ = client.exec_command("true", timeout=timeout)
        if stdout.channel.recv_exit_status() != 0:
            raise RuntimeError(f"a new SSH connection to {host.name} could not run `true`")
    except Exception as exc:
        raise RuntimeError(
            f"a new SSH connection to {host.name} failed ({exc}): the new firewall rules may "
            "keep SSH out; the rollback timer restores the previous rules") from None
    finally:
        client.close()
    return True


@operation()
def confirm(over_ssh: bool = True):
    """Prove the host still takes new SSH connections, then stop the rollback timer and clear
    the boot guard's mark.

    + over_ssh: the deploy is connected over SSH (otherwise there is nothing to probe)
    """
    if over_ssh:
        yield FunctionCommand(check_new_connection, (), {})
    yield (f"systemctl is-active --quiet {UNIT}.timer || "
           f"{{ echo 'the rollback timer already fired: the previous rules are back' >&2; "
           f"exit 1; }}")
    yield f"systemctl stop {UNIT}.timer && rm -f {MARK}"
