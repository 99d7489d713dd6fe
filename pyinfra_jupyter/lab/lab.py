"""The Lab: disposable Debian 12 hosts booted with systemd-nspawn.

A lab has a state dir STATE_ROOT/NAME holding ``state.json`` (what is running,
with PIDs), its SSH key, logs, sockets and each host's overlay dirs. Every
change to a lab happens under the lab's own lock file, so concurrent CLI calls
on one lab serialise, and different labs never share anything but the base
rootfs and the caches.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from . import base, net, preflight, proc, proxy
from .util import (
    STATE_ROOT,
    LabError,
    atomic_write,
    cache_dir,
    file_lock,
    lab_name,
    pid_alive,
    run,
    wait_for,
)

BOOT_TIMEOUT = 180.0
HOST_PROXY_URL = base.PROXY_URL


class Lab:
    """One named lab on this machine. Cheap to construct; does nothing until called."""

    def __init__(self, name: str | None = None, log=None):
        self.name = lab_name(name)
        self.dir = STATE_ROOT / self.name
        self.log = log or (lambda msg: None)

    # -- state -------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def load(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise LabError(f"corrupt lab state {self.state_file}: run `lab down`") from exc

    def _save(self, state: dict) -> None:
        atomic_write(self.state_file, json.dumps(state, indent=1, sort_keys=True))

    def _lock(self):
        return file_lock(STATE_ROOT / f".{self.name}.lock")

    @property
    def ssh_key(self) -> Path:
        return self.dir / "ssh" / "id_ed25519"

    def is_up(self) -> bool:
        state = self.load()
        return bool(state and state["hosts"])

    # -- lifecycle -----------------------------------------------------------

    def up(self, count: int = 1, distro: str | None = None, arch: str | None = None) -> dict:
        """Make sure at least *count* hosts are running (keeping the ones that are); with
        `distro` (base.SUITES) and/or a foreign `arch` (arm64, emulated), at least *count*
        hosts of that kind."""
        if count < 0 or count > 89:
            raise LabError("a lab holds 0 to 89 hosts")
        suite = base.check_suite(distro or base.SUITE)
        preflight.check()
        if arch and arch == preflight.native_arch():
            arch = None  # the machine's own
        if arch:
            preflight.check_arch(arch)
        bases = {(suite, arch): base.ensure_base(log=self.log, suite=suite, arch=arch)}

        def base_of(s: str, a: str | None) -> Path:
            if (s, a) not in bases:
                if a:
                    preflight.check_arch(a)
                bases[(s, a)] = base.ensure_base(log=self.log, suite=s, arch=a)
            return bases[(s, a)]

        with net.alloc_lock():
            # Shared by all labs; (re)started here so a crashed cache heals on any `up`.
            proxy.ensure_acng()
        with self._lock():
            state = self._ensure_lab()
            # Replace hosts that died (e.g. after a reboot) in place, then add more.
            for h in list(state["hosts"]):
                if not pid_alive(h["pid"]):
                    self.log(f"host {h['name']} is gone; recreating it")
                    self._destroy_host(state, h)
                    state["hosts"].remove(h)
                    s, a = h.get("distro", base.SUITE), h.get("arch")
                    state["hosts"].append(self._create_host(state, h["index"], base_of(s, a),
                                                            s, a))
                    self._save(state)

            def counted() -> int:
                return sum(1 for h in state["hosts"]
                           if (distro is None or h.get("distro", base.SUITE) == suite)
                           and h.get("arch") == arch)

            while counted() < count:
                used = {h["index"] for h in state["hosts"]}
                i = min(set(range(1, 90)) - used)
                state["hosts"].append(self._create_host(state, i, bases[(suite, arch)], suite,
                                                        arch))
                state["hosts"].sort(key=lambda h: h["index"])
                self._save(state)
        return self.status()

    def new_host(self, distro: str | None = None, arch: str | None = None) -> dict:
        """Add one host (of `distro`, default bookworm; of a foreign `arch`) and return its
        status entry."""
        state = self.load()
        hosts = (state or {"hosts": []})["hosts"]
        before = {h["name"] for h in hosts}
        if distro is None and arch is None:
            status = self.up(len(before) + 1)
        else:
            suite = base.check_suite(distro or base.SUITE)
            same = sum(1 for h in hosts
                       if h.get("distro", base.SUITE) == suite and h.get("arch") == arch)
            status = self.up(same + 1, distro=suite, arch=arch)
        return next(h for h in status["hosts"] if h["name"] not in before)

    def down(self) -> None:
        """Kill everything of this lab, unmount, delete namespaces and state."""
        with self._lock():
            self.down_unlocked()
            with net.alloc_lock():
                proxy.stop_acng_if_unused()
        with contextlib.suppress(FileNotFoundError):
            (STATE_ROOT / f".{self.name}.lock").unlink()

    def down_unlocked(self) -> None:
        """down() for callers already holding the lab lock."""
        state = self.load() or {"hosts": []}
        proc.kill_cgroup(self.name)
        for h in state["hosts"]:
            self._unmount(Path(h["root"]))
        # Also catch overlays of hosts that never made it into state.json.
        for mnt in sorted(_mounts_under(self.dir), reverse=True):
            run(["umount", "-l", mnt], check=False)
        for ns in net.lab_namespaces(self.name):
            net.delete_ns(ns)
        shutil.rmtree(self.dir, ignore_errors=True)

    def status(self) -> dict:
        state = self.load()
        if not state:
            return {"lab": self.name, "up": False, "hosts": []}
        hosts = [
            {
                "name": h["name"],
                "address": h["address"],
                "ssh_port": h["ssh_port"],
                "netns": h["netns"],
                "pid": h["pid"],
                "running": pid_alive(h["pid"]),
                "distro": h.get("distro", base.SUITE),
                "arch": h.get("arch") or "native",
                "create_seconds": h.get("create_seconds"),
                "boot_seconds": h.get("boot_seconds"),
                "memory_mb": self.memory_mb(h["name"]) if pid_alive(h["pid"]) else None,
            }
            for h in state["hosts"]
        ]
        return {
            "lab": self.name,
            "up": True,
            "lab_netns": state["lab_netns"],
            "lab_address": state["lab_address"],
            "probe_netns": state["probe_netns"],
            "probe_address": state["probe_address"],
            "subnet": state["subnet"],
            "hosts": hosts,
            "ssh_key": str(self.ssh_key),
            "ssh_user": "root",
            "proxy_url": HOST_PROXY_URL,
            "no_proxy": ["localhost", "127.0.0.1", "::1", state["subnet"]],
            "ca_certificates": base.ca_files(),
            "services": sorted(state.get("services", {})),
        }

    def memory_mb(self, name: str) -> int:
        """What a host's processes hold in memory: the sum of their proportional set sizes
        (PSS: shared pages divided among their users), from /proc. Inside a host,
        /proc/meminfo shows the machine's memory (nspawn shares the kernel), so this is what
        says how many hosts fit."""
        total_kb = 0
        for pid in proc.cgroup_pids(self.name, name):
            try:
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Pss:"):
                            total_kb += int(line.split()[1])
                            break
            except (OSError, ValueError):  # gone meanwhile, or a kernel thread
                continue
        return total_kb // 1024

    # -- lab services ----------------------------------------------------------

    def run_service(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        wait_port: int | None = None,
        timeout: float = 30.0,
    ) -> int:
        """Start a long-running process in the lab namespace; it dies with the lab.

        It sees the bridge address ``lab_address`` (10.231.K.1), which every host
        routes to. With *wait_port*, return once it accepts TCP there. Returns the PID.
        """
        if not name.replace("-", "").replace("_", "").isalnum():
            raise LabError(f"invalid service name {name!r}")
        with self._lock():
            state = self.load()
            if not state:
                raise LabError(f"lab {self.name} is not up: run `pyinfra-jupyter lab up` first")
            self._stop_service(state, name)
            unit = f"svc-{name}"
            pid = proc.spawn(
                self.name, unit,
                ["nsenter", f"--net={net.ns_path(state['lab_netns'])}", *argv],
                self.dir / "services" / f"{name}.log",
                env=env, cwd=cwd,
            )
            state.setdefault("services", {})[name] = {"pid": pid, "argv": argv}
            self._save(state)
        if wait_port:
            addr = state["lab_address"]
            wait_for(
                lambda: self.lab_exec(_port_check(addr, wait_port), check=False).returncode == 0,
                timeout, f"service {name} on {addr}:{wait_port}",
            )
        return pid

    def stop_service(self, name: str) -> None:
        with self._lock():
            state = self.load()
            if state:
                self._stop_service(state, name)
                self._save(state)

    def _stop_service(self, state: dict, name: str) -> None:
        if name in state.get("services", {}):
            proc.kill_cgroup(self.name, f"svc-{name}")
            del state["services"][name]

    def service_log(self, name: str) -> Path:
        return self.dir / "services" / f"{name}.log"

    # -- the CPython build cache -----------------------------------------------

    # A deploy onto a Debian 11 host builds CPython (python.provider "source", ~6 min on two
    # cores). The lab keeps the first build of each (distro, prefix) and puts it into new
    # hosts of that distro before their deploy, which then finds it built and skips it.
    def _python_cache(self, distro: str, prefix: str) -> Path:
        return cache_dir() / "python" / f"{distro}-{Path(prefix).name}.tar"

    def seed_python(self, name: str, prefix: str) -> bool:
        """Copy a cached build of `prefix` into host `name`; False when none is cached."""
        h = self.host(name)
        cached = self._python_cache(h.get("distro", base.SUITE), prefix)
        if not cached.exists() or (Path(h["root"]) / prefix.lstrip("/") / "bin").is_dir():
            return False
        run(["tar", "-xpf", str(cached), "-C", h["root"]])
        return True

    def keep_python(self, name: str, prefix: str) -> bool:
        """Cache host `name`'s build of `prefix` (if it has one and none is cached yet)."""
        h = self.host(name)
        cached = self._python_cache(h.get("distro", base.SUITE), prefix)
        rel = prefix.lstrip("/")
        if cached.exists() or not (Path(h["root"]) / rel / "bin").is_dir():
            return False
        # Only a finished build: its interpreter runs with the modules the stack needs.
        check = (f"for x in {prefix}/bin/python3.*[0-9]; do \"$x\" -c 'import ssl, sqlite3, "
                 "ctypes, zlib, venv' || exit 1; done")
        if self.host_exec(name, check, check=False).returncode != 0:
            return False
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        run(["tar", "-cpf", str(tmp), "-C", h["root"], rel])
        os.replace(tmp, cached)
        return True

    # -- running commands ----------------------------------------------------

    def host(self, name_or_index) -> dict:
        state = self.load() or {"hosts": []}
        for h in state["hosts"]:
            if name_or_index in (h["name"], h["index"]):
                return h
        raise LabError(f"lab {self.name} has no host {name_or_index!r}")

    def host_exec(self, host, cmd: str, check: bool = True, timeout: float | None = None):
        """Run a shell command inside a host (all its namespaces) as root."""
        h = host if isinstance(host, dict) else self.host(host)
        return run(
            ["nsenter", "-t", str(h["pid"]), "-a", "--", "/bin/sh", "-c",
             f". /etc/environment 2>/dev/null; export $(grep -v '^#' /etc/environment "
             f"| cut -d= -f1); {cmd}"],
            check=check, timeout=timeout,
        )

    def probe_exec(self, cmd: str, check: bool = False, timeout: float | None = None):
        """Run a shell command in the probe namespace (on the lab bridge, not a host)."""
        return run(["ip", "netns", "exec", net.probe_ns(self.name), "sh", "-c", cmd],
                   check=check, timeout=timeout)

    def lab_exec(self, cmd: str, check: bool = False, timeout: float | None = None):
        """Run a shell command in the lab (bridge) namespace."""
        return run(["ip", "netns", "exec", net.lab_ns(self.name), "sh", "-c", cmd],
                   check=check, timeout=timeout)

    # -- internals -------------------------------------------------------------

    def _ensure_lab(self) -> dict:
        """Create the lab's shared parts (index, namespaces, key, proxy) if missing."""
        state = self.load()
        if state and pid_alive(state["pids"].get("tinyproxy")) and net.ns_exists(
            state["lab_netns"]
        ):
            return state
        if state:  # half-dead lab (reboot, crash): start over cleanly
            self.log(f"lab {self.name} is broken; rebuilding it")
            self.down_unlocked()
        self.dir.mkdir(parents=True, exist_ok=True)
        with net.alloc_lock():
            k = net.allocate_index(self.name)
            state = {
                "name": self.name,
                "index": k,
                "lab_netns": net.lab_ns(self.name),
                "lab_address": net.lab_address(k),
                "probe_netns": net.probe_ns(self.name),
                "probe_address": net.probe_address(k),
                "subnet": net.subnet(k),
                "proxy_port": net.proxy_port(k),
                "base": str(base.base_path()),
                "hosts": [],
                "services": {},
                "pids": {},
                "created": time.time(),
            }
            # Recorded before anything is created so the index stays reserved
            # and a failed `up` can be cleaned by `down`.
            self._save(state)
            state["pids"] = proxy.start_lab_proxy(self.name, self.dir, state["proxy_port"])
        self.log(f"lab {self.name}: subnet {state['subnet']}, bridge address {state['lab_address']}")
        net.create_lab_ns(self.name, k)
        net.attach(self.name, k, state["probe_netns"], "vp", state["probe_address"])
        self._make_key()
        for sub in ("pip", "npm"):
            (cache_dir() / sub).mkdir(parents=True, exist_ok=True)
        self._save(state)
        return state

    def _make_key(self) -> None:
        if self.ssh_key.exists():
            return
        self.ssh_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"pj-lab-{self.name}",
             "-f", str(self.ssh_key)])

    def _create_host(self, state: dict, i: int, base_dir: Path,
                     distro: str = base.SUITE, arch: str | None = None) -> dict:
        k = state["index"]
        name = f"{self.name}-{i}"
        hdir = self.dir / "hosts" / name
        root = hdir / "root"
        started = time.monotonic()
        self.log(f"creating host {name} ({net.host_address(k, i)}, Debian {distro}"
                 + (f", {arch} emulated)" if arch else ")"))
        if hdir.exists():
            self._unmount(root)
            shutil.rmtree(hdir)
        for sub in ("upper", "work", "root"):
            (hdir / sub).mkdir(parents=True)
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={base_dir},upperdir={hdir / 'upper'},workdir={hdir / 'work'}",
             str(root)])
        address = net.host_address(k, i)
        self._customise_root(root, name, address)
        ns = net.host_ns(self.name, i)
        net.attach(self.name, k, ns, f"vh{i}", address)

        port = net.ssh_port(k, i)
        if not net.port_free(port):
            raise LabError(f"loopback port {port} for host {name}'s SSH is taken")
        unit = f"{name}-relay"
        ssh_sock = hdir / "ssh.sock"
        relays = [
            # Package proxy into the host: its 127.0.0.1:3128 -> the lab's proxy socket.
            ["nsenter", f"--net={net.ns_path(ns)}", "socat",
             "TCP-LISTEN:3128,bind=127.0.0.1,reuseaddr,fork",
             f"UNIX-CONNECT:{self.dir / 'proxy.sock'}"],
            # SSH into the host: a socket in the state dir -> from the lab (bridge) namespace
            # to the host's address, so SSH crosses the host's firewall like on a real server
            # (via the host's own 127.0.0.1 it would always be let through as loopback) ...
            ["nsenter", f"--net={net.ns_path(net.lab_ns(self.name))}", "socat",
             f"UNIX-LISTEN:{ssh_sock},fork,unlink-early,mode=600", f"TCP:{address}:22"],
            # ... and a loopback port on the machine -> that socket.
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
             f"UNIX-CONNECT:{ssh_sock}"],
        ]
        for argv in relays:
            proc.spawn(self.name, unit, argv, hdir / "relay.log")

        host = {
            "index": i,
            "name": name,
            "address": address,
            "ssh_port": port,
            "netns": ns,
            "root": str(root),
            "distro": distro,
            **({"arch": arch} if arch else {}),
        }
        spawned = time.monotonic()
        self._boot(host, hdir)
        # Figures for bench/bench_lab.py: preparing the host vs booting it.
        host["create_seconds"] = round(spawned - started, 2)
        host["boot_seconds"] = round(time.monotonic() - spawned, 2)
        self.log(f"host {name} running after {time.monotonic() - started:.1f}s; "
                 f"ssh on 127.0.0.1:{port}")
        return host

    def _boot(self, host: dict, hdir: Path) -> None:
        """Start systemd-nspawn on the host's root in its network namespace, wait until its
        systemd is up, and record the PIDs in `host`."""
        name, arch = host["name"], host.get("arch")
        nspawn = [
            "systemd-nspawn", "--quiet", "-D", host["root"], "-M", name,
            "--boot", "--register=no", "--keep-unit",
            f"--network-namespace-path={net.ns_path(host['netns'])}",
            "--capability=CAP_NET_ADMIN",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no",
            "--console=read-only",
            f"--bind={cache_dir() / 'pip'}:{base.PIP_CACHE}",
            f"--bind={cache_dir() / 'npm'}:{base.NPM_CACHE}",
        ]
        nspawn_pid = proc.spawn(self.name, name, nspawn, hdir / "console.log")
        host["nspawn_pid"] = nspawn_pid
        host["pid"] = wait_for(lambda: _container_init(self.name, name, nspawn_pid), 30,
                               f"host {name}'s systemd to start")
        self._wait_booted(host, hdir, BOOT_TIMEOUT * (5 if arch else 1))
        # Firewalls inside the host need a writable /proc/sys/net (nspawn mounts
        # /proc/sys read-only); only the host's own mount namespace is touched.
        run(["nsenter", "-t", str(host["pid"]), "-m", "--", "/bin/sh", "-c",
             "mount --bind /proc/sys/net /proc/sys/net && "
             "mount -o remount,bind,rw /proc/sys/net"])

    def reboot(self, name_or_index, timeout: float = 120.0) -> dict:
        """Reboot a host as a machine reboots: its systemd shuts everything down, what a
        reboot loses goes (the firewall rules held in its network namespace, which outlives
        the container), and the same root boots again. Returns the host's new entry."""
        with self._lock():
            state = self.load() or {"hosts": []}
            h = next((x for x in state["hosts"] if name_or_index in (x["name"], x["index"])),
                     None)
            if h is None:
                raise LabError(f"lab {self.name} has no host {name_or_index!r}")
            hdir = Path(h["root"]).parent
            # `poweroff` inside ends systemd-nspawn once the host has shut down (a `reboot`
            # would only ask nspawn's caller to start it again, which is us).
            run(["nsenter", "-t", str(h["pid"]), "-a", "--", "systemctl", "poweroff"],
                check=False)
            wait_for(lambda: not pid_alive(h["nspawn_pid"]), timeout,
                     f"host {h['name']} to shut down")
            proc.kill_cgroup(self.name, h["name"])  # anything left of the old boot
            net.flush_firewall(h["netns"])
            started = time.monotonic()
            self._boot(h, hdir)
            h["boot_seconds"] = round(time.monotonic() - started, 2)
            self._save(state)
            self.log(f"host {h['name']} rebooted in {h['boot_seconds']}s")
            return h

    def _customise_root(self, root: Path, name: str, address: str) -> None:
        (root / "etc/hostname").write_text(name + "\n")
        (root / "etc/hosts").write_text(
            f"127.0.0.1\tlocalhost\n{address}\t{name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
        # Hosts have no DNS server: with none configured glibc fails fast on
        # 127.0.0.1:53 instead of timing out on the controller's resolvers.
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        resolv.write_text("# lab hosts have no DNS; packages come through the proxy\n")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(Path(f"{self.ssh_key}.pub").read_text())
        keys.chmod(0o600)

    def _wait_booted(self, host: dict, hdir: Path, timeout: float = BOOT_TIMEOUT) -> None:
        def booted():
            if not pid_alive(host["nspawn_pid"]):
                raise LabError(
                    f"host {host['name']} stopped while booting (see {hdir / 'console.log'})"
                )
            out = run(["nsenter", "-t", str(host["pid"]), "-a", "--",
                       "systemctl", "is-system-running"], check=False).stdout.strip()
            return out in ("running", "degraded")

        wait_for(booted, timeout, f"host {host['name']} to boot")

    def _destroy_host(self, state: dict, h: dict) -> None:
        proc.kill_cgroup(self.name, h["name"])
        proc.kill_cgroup(self.name, f"{h['name']}-relay")
        self._unmount(Path(h["root"]))
        net.delete_ns(h["netns"])
        shutil.rmtree(Path(h["root"]).parent, ignore_errors=True)

    @staticmethod
    def _unmount(root: Path) -> None:
        for mnt in sorted(_mounts_under(root, include_self=True), reverse=True):
            run(["umount", "-l", mnt], check=False)


def _mounts_under(path: Path, include_self: bool = False) -> list[str]:
    with open("/proc/self/mounts") as fh:
        mounts = [line.split()[1] for line in fh]
    p = str(path)
    return [m for m in mounts if m.startswith(p + "/") or (include_self and m == p)]


def _container_init(lab: str, unit: str, nspawn_pid: int) -> int | None:
    """The PID (in our namespace) of the container's PID 1: in its cgroup, NSpid ends in 1."""
    if not pid_alive(nspawn_pid):
        raise LabError(f"systemd-nspawn for {unit} exited at once (see its console.log)")
    for pid in proc.cgroup_pids(lab, unit):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("NSpid:"):
                        ids = line.split()[1:]
                        if len(ids) >= 2 and ids[-1] == "1":
                            return pid
        except FileNotFoundError:
            continue
    return None


def _port_check(addr: str, port: int) -> str:
    return (
        "python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); "
        f"sys.exit(s.connect_ex((\"{addr}\", {port})))'"
    )


def network_spec(status: dict, extra_no_proxy: tuple[str, ...] = ()) -> dict:
    """How a lab host reaches package registries: the value for a deploy's `network` key.

    The proxy inside every host and the controller's CA certificates (hosts behind the
    machine's TLS-inspecting egress need them, exactly like hosts behind a corporate proxy).
    """
    return {
        "http_proxy": status["proxy_url"],
        "https_proxy": status["proxy_url"],
        "no_proxy": [*status["no_proxy"], *extra_no_proxy],
        "ca_certificates": [Path(p).read_text() for p in status["ca_certificates"]],
    }


def list_labs() -> list[str]:
    return sorted(p.parent.name for p in STATE_ROOT.glob("*/state.json"))


