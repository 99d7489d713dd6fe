"""A bounded load test on a real hub: 30 users log in and run a cell, then the culler stops all.

One lab host is deployed in hub mode (PAM logins, the local spawner, the idle culler at its
shortest: `timeout` 60 s, checked every 10 s) with 30 load accounts and one admin, twice (the
second run changes nothing). From the lab's probe namespace, outside the host, 30 users then
log in over HTTPS, ten at a time, each starting a server and running `1+1` in a new kernel
over its websocket. Every login must succeed, every cell answer '2', and no response (the
client's, the hub's or the proxy's log) may be a 5xx; all of it bounded in time. Then, with
nobody active, the idle culler must stop every server within a bounded wait: the hub's REST
API (an admin's token) shows none, the host runs no process of theirs, and the hub's log
says the culler stopped each one.

Out of `make test` (minutes of 30 servers on a small machine): `make test-load`. The figures
(login latency, time to a first kernel result, wall time, memory) are printed as one JSON
line and written to bench/results/load.json.

This file is also the client script in the probe namespace (`python test_load.py load URL
USERS_JSON WORKERS` and `python test_load.py culled URL ADMIN PWFILE TIMEOUT USER...`),
needing requests + websocket-client only.
"""

from __future__ import annotations

import json
import sys
import threading
import time

USERS = 30
WORKERS = 10  # users logging in at once: three waves
LOAD_BUDGET = 480  # seconds for all 30 users: a bound, four times what they took (bench)
CULL_TIMEOUT, CULL_EVERY = 60, 10  # the spec's minimums (pyinfra_jupyter/spec/hub.py)
# Idle culler timeout, plus the hub's last_activity_interval (60 s, the lag before it sees
# the proxy's activity), plus a check, plus the stopping itself: then generous margin.
CULL_BUDGET = 300
HTTP_METHODS = "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"

# -- the client (runs in the probe namespace) -----------------------------------------------


class Statuses:
    """Every HTTP status the clients saw, and the 5xx ones in full (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.server_errors: list[str] = []

    def hook(self, response, *args, **kwargs):
        with self.lock:
            code = str(response.status_code)
            self.counts[code] = self.counts.get(code, 0) + 1
            if response.status_code >= 500:
                self.server_errors.append(
                    f"{response.status_code} {response.request.method} {response.url}")


def _session(statuses: Statuses):
    import requests

    session = requests.Session()
    session.verify = False  # the lab's self-signed certificate; test_hub.py checks TLS
    session.hooks["response"].append(statuses.hook)
    return session


def _login(base: str, session, user: str, password: str) -> None:
    page = session.get(f"{base}hub/login", verify=False, timeout=120)
    page.raise_for_status()
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    answer = session.post(f"{base}hub/login",
                          data={"username": user, "password": password, "_xsrf": xsrf},
                          verify=False, allow_redirects=False, timeout=120)
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"login refused: HTTP {answer.status_code}")


def _start(base: str, session, user: str, deadline: float) -> None:
    """Start the user's server as the hub's home page does; wait until it is ready."""
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    headers = {"X-XSRFToken": xsrf}
    started = session.post(f"{base}hub/api/users/{user}/server", headers=headers,
                           verify=False, timeout=300)
    if started.status_code not in (201, 202):
        raise RuntimeError(f"start refused: HTTP {started.status_code} {started.text[:300]}")
    while time.monotonic() < deadline:
        answer = session.get(f"{base}hub/api/users/{user}", headers=headers, verify=False,
                             timeout=120)
        answer.raise_for_status()
        server = answer.json().get("servers", {}).get("", {})
        if server.get("ready"):
            return
        if not server.get("pending"):
            raise RuntimeError(f"server did not start: {answer.json()}")
        time.sleep(1)
    raise RuntimeError("server not ready before the load's deadline")


def _one_user(base: str, user: str, password: str, statuses: Statuses, t0: float,
              deadline: float) -> dict:
    from jupyter_client_lab import Kernel

    record: dict = {"user": user, "began_s": round(time.monotonic() - t0, 2)}
    began = time.monotonic()
    step = "login"
    try:
        session = _session(statuses)
        _login(base, session, user, password)
        record["login_s"] = time.monotonic() - began
        step = "spawn"
        _start(base, session, user, deadline)
        record["spawn_s"] = time.monotonic() - began - record["login_s"]
        step = "kernel"
        server = f"{base}user/{user}/"
        session.get(f"{server}lab", verify=False, timeout=120).raise_for_status()
        xsrf = session.cookies.get("_xsrf", path=f"/user/{user}/")
        kernel = Kernel(server, session, xsrf, origin=base.rstrip("/"))
        try:
            record["result"] = kernel.run("1+1")
            record["first_result_s"] = time.monotonic() - began
        finally:
            kernel.close()  # then nothing of this user's is active: the culler's to stop
    except Exception as error:  # noqa: BLE001 (every failure is reported, by step)
        record["error"] = f"{step}: {type(error).__name__}: {error}"[:500]
    return record


def load(base: str, users_json: str, workers: int) -> dict:
    """Every user of USERS_JSON ({name: password file}) logs in and runs `1+1`."""
    from concurrent.futures import ThreadPoolExecutor

    import urllib3

    urllib3.disable_warnings()
    with open(users_json) as handle:
        password_files = json.load(handle)
    passwords = {}
    for user, path in password_files.items():
        with open(path) as handle:
            passwords[user] = handle.read().strip()
    statuses = Statuses()
    t0 = time.monotonic()
    deadline = t0 + LOAD_BUDGET
    with ThreadPoolExecutor(max_workers=workers) as pool:
        records = list(pool.map(
            lambda user: _one_user(base, user, passwords[user], statuses, t0, deadline),
            sorted(passwords)))
    return {"wall_s": time.monotonic() - t0, "users": records, "statuses": statuses.counts,
            "server_errors": statuses.server_errors}


def culled(base: str, admin: str, password_file: str, timeout: float, users: list[str]) -> dict:
    """Wait (at most `timeout` s) until none of `users` has a server, per the hub's REST API
    with an admin's token; when each was first seen stopped."""
    import urllib3

    urllib3.disable_warnings()
    with open(password_file) as handle:
        password = handle.read().strip()
    statuses = Statuses()
    session = _session(statuses)
    _login(base, session, admin, password)
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    made = session.post(f"{base}hub/api/users/{admin}/tokens", headers={"X-XSRFToken": xsrf},
                        json={"note": "load test", "expires_in": 3600}, verify=False,
                        timeout=120)
    made.raise_for_status()
    api = _session(statuses)
    api.headers["Authorization"] = f"token {made.json()['token']}"
    t0 = time.monotonic()
    stopped: dict[str, float] = {}
    running = set(users)
    while True:
        answer = api.get(f"{base}hub/api/users", verify=False, timeout=120)
        answer.raise_for_status()
        models = {m["name"]: m for m in answer.json()}
        running = {u for u in users if models.get(u, {}).get("servers")}
        for user in set(users) - running:
            stopped.setdefault(user, time.monotonic() - t0)
        if not running or time.monotonic() - t0 > timeout:
            break
        time.sleep(2)
    return {"waited_s": time.monotonic() - t0, "running": sorted(running), "stopped_s": stopped,
            "statuses": statuses.counts, "server_errors": statuses.server_errors}


def client(argv: list[str]) -> int:
    if argv[0] == "load":
        print(json.dumps(load(argv[1], argv[2], int(argv[3]))))
    elif argv[0] == "culled":
        print(json.dumps(culled(argv[1], argv[2], argv[3], float(argv[4]), argv[5:])))
    else:
        raise SystemExit(f"unknown client command {argv[0]!r}")
    return 0


# -- the test (controller side) ---------------------------------------------------------------

try:
    import pytest
except ImportError:  # in the probe namespace, this file is only the client
    pytest = None

if pytest is not None:
    import contextlib
    import datetime
    import os
    import platform
    import re
    import statistics
    import subprocess
    from pathlib import Path

    from deploy_helpers import assert_no_changes, run_deploy

    pytestmark = pytest.mark.lab

    CLIENT = Path(__file__).resolve()
    RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "load.json"
    # A 5xx as the hub logs requests (`[E ... log:192] 500 GET /hub/...`) and as
    # configurable-http-proxy logs failed proxying (`error: 503 GET /user/...`).
    SERVER_ERROR_LOG = re.compile(rf"\b5\d\d ({HTTP_METHODS}) /")
    LOAD_USERS = [f"load{i:02d}" for i in range(1, USERS + 1)]

    def _percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    def _spread(values: list[float]) -> dict:
        return {"p50": round(statistics.median(values), 2),
                "p95": round(_percentile(values, 0.95), 2), "max": round(max(values), 2)}

    class Memory:
        """Samples the host while the load runs: the lab's figure for the whole host (PSS of
        all its processes), the hub process's RSS, and how many users' servers run (the
        culler may stop the first wave's before the last has started)."""

        SCRIPT = (
            "hub=$(systemctl show -p MainPID --value jupyterhub); "
            "echo \"$(ps -o rss= -p $hub)|"
            # Users with a process: servers running (or stopping).
            "$(ps -o user= -u " + ",".join(f"load{i:02d}" for i in range(1, USERS + 1))
            + " | sort -u | wc -l)\""
        )

        def __init__(self, lab, host):
            self.lab, self.host = lab, host
            self.samples: list[dict] = []
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, daemon=True)

        def sample(self) -> dict:
            out = self.host.run(self.SCRIPT).stdout
            try:
                rss_kb, servers = (part.strip() for part in out.split("|"))
            except ValueError:
                raise AssertionError(f"unexpected memory sample: {out!r}") from None
            row = {"host_mb": self.lab.lab.memory_mb(self.host.name),
                   "hub_rss_mb": int(rss_kb) // 1024,
                   "servers": int(servers)}
            self.samples.append(row)
            return row

        def _run(self) -> None:
            while not self._stop.wait(5):
                with contextlib.suppress(Exception):  # a missed sample is no failure
                    self.sample()

        def __enter__(self):
            self._thread.start()
            return self

        def __exit__(self, *exc):
            self._stop.set()
            self._thread.join()

        def peak(self) -> dict:
            return max(self.samples, key=lambda row: row["host_mb"])

    def _probe(lab, *args: str, timeout: float) -> dict:
        argv = ["ip", "netns", "exec", lab.status()["probe_netns"], sys.executable,
                str(CLIENT), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def test_thirty_users_log_in_and_run_a_cell_then_the_culler_stops_every_server(
            lab, tmp_path):
        host = lab.new_host()
        url = f"https://{host.address}/"
        passwords = {name: tmp_path / f"{name}.password" for name in ["hubadmin", *LOAD_USERS]}
        spec = {
            "mode": "hub",
            "tls": {"type": "self-signed"},
            "users": {"accounts": [
                {"name": name, "admin": name == "hubadmin", "password_file": str(path),
                 "generate_password": True}
                for name, path in passwords.items()
            ]},
            "hub": {"auth": {"type": "pam"},
                    "idle_culler": {"timeout": CULL_TIMEOUT, "every": CULL_EVERY}},
            "network": lab.network(),
        }
        inventory = lab.write_inventory(tmp_path / "inventory.py", [host], spec)
        figures: dict = {"users": USERS, "workers": WORKERS}
        start = time.monotonic()
        run_deploy(inventory)
        figures["deploy_s"] = round(time.monotonic() - start, 1)
        assert_no_changes(run_deploy(inventory).stdout)
        users_json = tmp_path / "users.json"
        users_json.write_text(json.dumps({u: str(passwords[u]) for u in LOAD_USERS}))
        since = host.run("date '+%Y-%m-%d %H:%M:%S'").stdout.strip()

        memory = Memory(lab, host)
        figures["memory_idle"] = memory.sample()
        with memory:
            ran = _probe(lab, "load", url, str(users_json), str(WORKERS),
                         timeout=LOAD_BUDGET + 120)
        records = ran["users"]
        failed = {r["user"]: r["error"] for r in records if "error" in r}
        assert not failed, f"{len(failed)} of {USERS} users failed: {failed}"
        wrong = {r["user"]: r["result"] for r in records if r["result"] != "2"}
        assert not wrong, f"wrong cell results: {wrong}"
        assert ran["server_errors"] == [], ran["server_errors"]
        assert ran["wall_s"] < LOAD_BUDGET
        figures.update({
            "wall_s": round(ran["wall_s"], 1),
            "login_s": _spread([r["login_s"] for r in records]),
            "spawn_s": _spread([r["spawn_s"] for r in records]),
            "first_result_s": _spread([r["first_result_s"] for r in records]),
            "http_statuses": ran["statuses"],
            "memory_peak": memory.peak(),
            "mb_per_server": round((memory.peak()["host_mb"] - figures["memory_idle"]["host_mb"])
                                   / max(1, memory.peak()["servers"])),
            "memory_samples": len(memory.samples),
        })

        # Nobody is active now: the culler alone must stop every server, within a bound.
        start = time.monotonic()
        culled = _probe(lab, "culled", url, "hubadmin", str(passwords["hubadmin"]),
                        str(CULL_BUDGET), *LOAD_USERS, timeout=CULL_BUDGET + 120)
        assert culled["running"] == [], f"still running after {CULL_BUDGET} s: {culled}"
        assert culled["server_errors"] == [], culled["server_errors"]
        figures["all_culled_after_load_s"] = round(time.monotonic() - start, 1)
        left = host.run("ps -o user= -u " + ",".join(LOAD_USERS) + " || true").stdout.split()
        assert left == [], f"processes of load users still run: {sorted(set(left))}"
        hub_log = host.run(f"journalctl -q -o cat -u jupyterhub --since '{since}'").stdout
        culled_users = set(re.findall(r"Culling server (load\d\d)\b", hub_log))
        assert culled_users == set(LOAD_USERS), sorted(set(LOAD_USERS) - culled_users)
        figures["memory_after_cull"] = memory.sample()

        # No 5xx in the hub's or the proxy's log either (a client does not see them all).
        proxy_log = host.run(
            f"journalctl -q -o cat -u configurable-http-proxy --since '{since}'").stdout
        assert re.search(r"\b200 GET /hub/", hub_log), "the hub's log has no requests in it"
        errors = [line for line in (hub_log + proxy_log).splitlines()
                  if SERVER_ERROR_LOG.search(line)]
        assert errors == [], "\n".join(errors[:20])
        # Reported, not failed on: what the hub logged as errors meanwhile.
        figures["hub_log_errors"] = [line[:300] for line in hub_log.splitlines()
                                     if line.startswith("[E ")][:10]

        figures = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                       timespec="seconds"),
                   "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
                   **figures}
        line = json.dumps(figures)
        print(f"\nload figures: {line}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(client(sys.argv[1:]))
