"""Starting lab processes in cgroups of their own, and killing them by cgroup.

PID 1 on these machines is not systemd, so nothing tracks what a lab starts.
Every long-running lab process (a host's systemd-nspawn, socat relays,
tinyproxy, lab services) is started inside a cgroup under
/sys/fs/cgroup/{systemd,unified}/pjlab/LAB/UNIT: the child writes its own PID
into cgroup.procs before exec, so everything it forks (a whole container) stays
in that cgroup and teardown can find and kill it all, by PID, with no guessing
by process name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .util import LabError

CGROUP_ROOTS = [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
CGROUP_TOP = "pjlab"


def _roots() -> list[Path]:
    return [r for r in CGROUP_ROOTS if (r / "cgroup.procs").exists()]


def cgroup_paths(lab: str, unit: str | None = None) -> list[Path]:
    parts = [CGROUP_TOP, lab] + ([unit] if unit else [])
    return [root.joinpath(*parts) for root in _roots()]


def spawn(
    lab: str,
    unit: str,
    argv: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> int:
    """Start *argv* detached, in cgroup pjlab/LAB/UNIT; return its PID."""
    paths = cgroup_paths(lab, unit)
    if not paths:
        raise LabError("no usable cgroup hierarchy under /sys/fs/cgroup to track lab processes")
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
    procs_files = [str(p / "cgroup.procs") for p in paths]

    def enter_cgroup() -> None:  # runs in the child between fork and exec
        pid = str(os.getpid())
        for f in procs_files:
            with open(f, "w") as fh:
                fh.write(pid)

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=enter_cgroup,
                start_new_session=True,  # survive the CLI and its terminal's Ctrl-C
                env=env,
                cwd=cwd,
                close_fds=True,
            )
        except FileNotFoundError as exc:
            raise LabError(f"command not found: {argv[0]}") from exc
    return proc.pid


def cgroup_pids(lab: str, unit: str | None = None) -> set[int]:
    """Every PID in the lab's (or one unit's) cgroups, in any hierarchy."""
    pids: set[int] = set()
    for top in cgroup_paths(lab, unit):
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    text = Path(dirpath, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(x) for x in text.split())
    return pids


def kill_cgroup(lab: str, unit: str | None = None, timeout: float = 15.0) -> None:
    """SIGKILL everything in the cgroup(s), wait until empty, remove the cgroup dirs."""
    deadline = time.monotonic() + timeout
    killed: set[int] = set()
    while True:
        for top in cgroup_paths(lab, unit):
            kill_file = top / "cgroup.kill"  # cgroup v2: kills the whole subtree at once
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
        pids = cgroup_pids(lab, unit)
        if not pids:
            break
        killed |= pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise LabError(f"processes {sorted(pids)} of lab {lab} would not die")
        time.sleep(0.1)
    _reap(killed)
    for top in cgroup_paths(lab, unit):
        _rmdir_tree(top)
    if unit is None:
        for root in _roots():
            # The shared top dir goes once the last lab is gone.
            with contextlib.suppress(OSError):
                (root / CGROUP_TOP).rmdir()


def _rmdir_tree(top: Path) -> None:
    if not top.is_dir():
        return
    # Bottom-up: a cgroup dir can only be removed once its children are gone.
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        for _ in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)  # the kernel frees a dying cgroup asynchronously


def _reap(pids: set[int]) -> None:
    """Collect the zombies of killed processes that this Python process spawned itself."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # quick: the process is already dead or dying
