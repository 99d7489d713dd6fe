"""Checks that the machine can run a lab, installing missing Debian tools.

Each failure becomes one LabError sentence; the CLI prints it and exits 1.
"""

from __future__ import annotations

import os
import platform
import shutil

from .util import STATE_ROOT, LabError, file_lock, run

# command -> Debian package providing it, for the tools the lab drives.
TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "socat": "socat",
    "tinyproxy": "tinyproxy",
    "apt-cacher-ng": "apt-cacher-ng",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "ssh-keygen": "openssh-client",
}
# apt-cacher-ng lives in /usr/sbin, which may be missing from PATH.
EXTRA_PATH = ("/usr/sbin", "/sbin")


def _which(cmd: str) -> str | None:
    return shutil.which(cmd) or shutil.which(cmd, path=os.pathsep.join(EXTRA_PATH))


def check() -> None:
    """Raise LabError unless this machine can host a lab; install tools on the way."""
    if platform.system() != "Linux":
        raise LabError("the lab needs Linux (it uses network namespaces and systemd-nspawn)")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, mounts and cgroups); run it with sudo")
    with open("/proc/filesystems") as fh:
        if "overlay" not in fh.read():
            raise LabError("the kernel has no overlayfs (try `modprobe overlay`)")
    if not os.path.isdir("/sys/fs/cgroup"):
        raise LabError("no /sys/fs/cgroup: the lab needs cgroups to track host processes")
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if not _which(cmd)})
    if missing:
        _apt_install(missing)
        still = sorted(cmd for cmd in TOOLS if not _which(cmd))
        if still:
            raise LabError(f"missing tools after installing packages: {', '.join(still)}")
    raise_limits()


# Every host's systemd takes several inotify instances (its cgroup and unit watches, journald,
# logind): with Debian's default of 128 per user, the 8th host of a machine died at boot with
# "Failed to allocate manager object: Too many open files". Raised, never lowered.
KERNEL_LIMITS = {"/proc/sys/fs/inotify/max_user_instances": 8192,
                 "/proc/sys/fs/inotify/max_user_watches": 1048576}


def raise_limits() -> None:
    for path, wanted in KERNEL_LIMITS.items():
        try:
            with open(path) as fh:
                current = int(fh.read().split()[0])
            if current < wanted:
                with open(path, "w") as fh:
                    fh.write(str(wanted))
        except (OSError, ValueError, IndexError) as exc:
            raise LabError(f"cannot raise {path} to {wanted} (hosts of a large lab fail to "
                           f"boot without it): {exc}") from None


def _apt_install(packages: list[str]) -> None:
    if not shutil.which("apt-get"):
        raise LabError(
            f"missing Debian packages {' '.join(packages)} and no apt-get to install them"
        )
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    # Serialise with other labs starting at the same moment: dpkg has its own
    # lock, but a second apt-get would fail on it instead of waiting.
    with file_lock(STATE_ROOT.parent / "apt.lock"):
        # Without systemd as PID 1, postinst scripts would try to start the
        # tinyproxy / apt-cacher-ng system services; the lab runs its own.
        policy = "/usr/sbin/policy-rc.d"
        created = not os.path.exists(policy)
        if created:
            with open(policy, "w") as fh:
                fh.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
        try:
            proc = run(
                [*env_cmd, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                check=False,
            )
            if proc.returncode != 0:
                run([*env_cmd, "apt-get", "update", "-q"], check=False)
                run(
                    [*env_cmd, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                     *packages]
                )
        finally:
            if created:
                os.unlink(policy)


# Foreign architectures a lab host can run, emulated by qemu-user-static through binfmt_misc
# (the F flag: the emulator is opened once at registration, so it works inside the host's
# root without being copied there): Debian arch -> binfmt entry.
FOREIGN = {"arm64": "qemu-aarch64"}
BINFMT = "/proc/sys/fs/binfmt_misc"


def native_arch() -> str:
    return run(["dpkg", "--print-architecture"]).stdout.strip()


def check_arch(arch: str) -> None:
    """Make sure hosts of Debian architecture `arch` can run here (emulated if foreign)."""
    if arch == native_arch():
        return
    entry = FOREIGN.get(arch)
    if entry is None:
        raise LabError(f"no lab hosts of architecture {arch!r}: amd64 or arm64 (emulated)")
    conf = f"/usr/lib/binfmt.d/{entry}.conf"
    if not os.path.exists(conf):
        _apt_install(["qemu-user-static"])
    if not os.path.ismount(BINFMT):
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT])
    registered = f"{BINFMT}/{entry}"
    if not os.path.exists(registered):
        with open(conf) as src, open(f"{BINFMT}/register", "w") as reg:
            reg.write(src.read().strip())
    with open(registered) as fh:
        text = fh.read()
    flags = next((line.split(":", 1)[1] for line in text.splitlines()
                  if line.startswith("flags:")), "")
    if not text.startswith("enabled") or "F" not in flags:
        raise LabError(f"{registered} is not enabled with the F flag; hosts of {arch} "
                       "cannot start (echo -1 > it, and run `lab up` again)")
