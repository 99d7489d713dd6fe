"""Running many hosts at once: a heartbeat on long steps, and a summary a sysadmin can act on.

pyinfra runs each operation on all hosts before the next one, so one slow host holds the
others back. Every operation that talks to the network or a package manager is bounded
(operations/ops/apply.py passes `_timeout`; apt, yum, pip, curl and npm have their own
timeouts and retries), so a stalled host fails with its operation named and the others go
on. While an operation runs longer than HEARTBEAT seconds on a host, a line says so every
HEARTBEAT seconds; at the end of a run over several hosts a table says, per host, whether it
converged, changed or failed (and where), and how to re-run just the failed ones.
"""

from __future__ import annotations

import atexit
import shlex
import sys
import time

import gevent
from pyinfra import logger
from pyinfra.api.state import BaseStateCallback

HEARTBEAT = 30  # seconds


class FleetReport(BaseStateCallback):
    """Registered once per pyinfra run (`install`)."""

    def __init__(self, state):
        self.state = state
        self.running: dict[tuple[str, str], float] = {}  # (host, op hash) -> start
        self.failed: dict[str, list[tuple[str, float]]] = {}  # host -> [(op hash, seconds)]
        self.ticker = None
        # A run that stopped while preparing (an invalid spec, a held lock) executed nothing:
        # no table then, pyinfra's own error says what stopped it.
        self.executed = False

    # -- callbacks ---------------------------------------------------------------------

    def operation_host_start(self, state, host, op_hash):
        self.running[(host.name, op_hash)] = time.monotonic()
        self.executed = True
        if self.ticker is None:
            self.ticker = gevent.spawn(self._tick)

    def operation_host_success(self, state, host, op_hash, retry_count: int = 0):
        self.running.pop((host.name, op_hash), None)

    def operation_host_error(self, state, host, op_hash, retry_count: int = 0,
                             max_retries: int = 0):
        started = self.running.pop((host.name, op_hash), None)
        # The output is attached to the operation after this callback: read it at the end.
        seconds = time.monotonic() - started if started else 0
        self.failed.setdefault(host.name, []).append((op_hash, seconds))

    # -- helpers ------------------------------------------------------------------------

    def _name(self, op_hash) -> str:
        meta = self.state.op_meta.get(op_hash)
        return " | ".join(meta.names) if meta and meta.names else str(op_hash)

    def _reason(self, host, op_hash, seconds: float) -> str:
        meta = self.state.op_meta.get(op_hash)
        timeout = meta.global_arguments.get("_timeout") if meta else None
        if timeout and seconds >= timeout - 1:
            return f"no answer within {timeout} s (stalled: check its mirror or proxy)"
        try:
            lines = self.state.ops[host][op_hash].operation_meta.stderr_lines
        except (KeyError, AttributeError, RuntimeError, AssertionError):
            lines = []
        # Our bounded commands say "STALLED: ..." when their timeout hit; else the last line.
        stalled = next((line for line in lines if "STALLED:" in line), None)
        last = stalled or next((line.strip() for line in reversed(lines) if line.strip()), "")
        return last.strip()[:240] or "failed (see above)"

    def _tick(self) -> None:
        while True:
            gevent.sleep(HEARTBEAT)
            now = time.monotonic()
            for (name, op_hash), started in list(self.running.items()):
                elapsed = now - started
                if elapsed >= HEARTBEAT:
                    logger.info(f"    [{name}] still working on: {self._name(op_hash)} "
                                f"({int(elapsed // 60)}m{int(elapsed % 60):02d}s)")

    def summary(self) -> str | None:
        names = sorted({h.name for h in self.state.activated_hosts} | set(self.failed) |
                       {h.name for h in self.state.failed_hosts})
        if len(names) < 2 or not (self.executed or self.failed):
            return None
        failed_hosts = {h.name for h in self.state.failed_hosts} | set(self.failed)
        rows, counts = [], {"converged": 0, "changed": 0, "failed": 0}
        for name in names:
            host = self.state.inventory.get_host(name)
            if name in failed_hosts:
                result = "failed"
                reasons = [f"{self._name(op_hash)}: {self._reason(host, op_hash, seconds)}"
                           for op_hash, seconds in self.failed.get(name, [])]
                detail = "; ".join(reasons) or "could not connect, or failed before running"
            else:
                changed = self._changed(host)
                result = "changed" if changed else "converged"
                detail = f"{changed} operations changed" if changed else "no changes"
            counts[result] += 1
            rows.append((name, result, detail))
        width = max(len(n) for n in names)
        lines = [f"--> pyinfra-jupyter: {len(names)} hosts: {counts['converged']} converged, "
                 f"{counts['changed']} changed, {counts['failed']} failed",
                 f"    {'HOST':<{width}}  {'RESULT':<9}  DETAIL"]
        lines += [f"    {n:<{width}}  {r:<9}  {d}" for n, r, d in rows]
        if counts["failed"]:
            lines.append("    Re-run just the failed hosts: " + rerun_command(
                sys.argv, sorted(failed_hosts)))
        return "\n".join(lines)

    def _changed(self, host) -> int:
        count = 0
        for op_data in self.state.ops.get(host, {}).values():
            meta = op_data.operation_meta
            try:
                count += bool(meta.did_change())
            except RuntimeError:  # not executed (e.g. --dry)
                count += bool(meta._maybe_is_change)
        return count


def rerun_command(argv: list[str], hosts: list[str]) -> str:
    """The same pyinfra command line, limited to `hosts`."""
    args, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--limit":
            skip = True
            continue
        if arg.startswith("--limit="):
            continue
        args.append(arg)
    limits = [f"--limit={name}" for name in hosts]
    return shlex.join(["pyinfra", *args, *limits])


_installed: set[int] = set()


def install(state) -> None:
    """Register the report for this pyinfra run (once, however many hosts run deploy.py)."""
    if id(state) in _installed:
        return
    _installed.add(id(state))
    report = FleetReport(state)
    state.add_callback_handler(report)

    def at_exit() -> None:
        if report.ticker is not None:
            report.ticker.kill(block=False)
        text = report.summary()
        if text:
            print(text, flush=True)

    atexit.register(at_exit)
