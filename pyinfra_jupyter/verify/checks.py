"""The checks of a deployed site, in one place: `pyinfra-jupyter verify`, the testinfra module
(tests/verify) and the lab tests all run these.

A check reads a *plan* (operations/plan.py: what the deploy put on the host) and the host's
*state* (one shell command, `state_command`, parsed by `parse_state`), or probes the host's
public face from where the check runs (`network_checks`). Each returns Results: ok, warn
(working, but act soon) or fail (not as the spec says), with a reason a sysadmin can act on.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
from dataclasses import asdict, dataclass

KERNEL_RANGE = (49152, 65535)
_SS_MARK = "--pyinfra-jupyter-ss--"
_TLS_MARK = "--pyinfra-jupyter-tls-state--"
_DDNS_MARK = "--pyinfra-jupyter-ddns-state--"
_RESULT_MARK = "--pyinfra-jupyter-results--"
TLS_STATE = "/etc/pyinfra-jupyter/tls/state.json"
DDNS_STATE = "/var/lib/pyinfra-jupyter/ddns/state.json"


@dataclass(frozen=True)
class Result:
    status: str  # "ok", "warn" or "fail"
    check: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.status.upper():<4} {self.check}" + (f": {self.detail}" if self.detail else "")

    def as_dict(self) -> dict:
        return asdict(self)


def ok(check: str, detail: str = "") -> Result:
    return Result("ok", check, detail)


def fail(check: str, detail: str) -> Result:
    return Result("fail", check, detail)


def warn(check: str, detail: str) -> Result:
    return Result("warn", check, detail)


# -- the host's state ------------------------------------------------------------------------

def state_command(plan: dict) -> str:
    """One shell command that prints everything the host checks read."""
    from operations.ops.facts import _commands

    paths = ([f["path"] for f in plan["files"]] + [d["path"] for d in plan["dirs"]]
             + list(plan["absent"]))
    units = [u["unit"] for u in plan["units"]] + list(plan["timers"])
    runs = [t.removesuffix(".timer") + ".service" for t in plan["timers"]]
    base = _commands(paths=paths, units=units, users=plan["users"], groups=plan["groups"],
                     manager=plan["manager"], packages=plan["packages"],
                     venvs=[v["path"] for v in plan["venvs"]],
                     npm=[n["prefix"] for n in plan["npm"]])
    return (base.removesuffix("; true")
            + f"; echo '{_SS_MARK}'; ss -Hltn 2>/dev/null"
            + f"; echo '{_RESULT_MARK}'; systemctl show --property=Id,Result,"
            "ExecMainStartTimestampMonotonic " + " ".join(runs) + " 2>/dev/null"
            + "; for f in " + " ".join(k["path"] for k in plan["kept_files"])
            + "; do [ -s \"$f\" ] && echo \"tlsfile=$f|$(stat -L -c '%U|%a' \"$f\")\"; done"
            + f"; echo '{_TLS_MARK}'; cat {TLS_STATE} 2>/dev/null"
            + f"; echo '{_DDNS_MARK}'; cat {DDNS_STATE} 2>/dev/null; true")


def parse_state(output: str) -> dict:
    from operations.ops.facts import _parse

    lines = output.splitlines()

    def section(mark: str, until: str | None) -> list[str]:
        if mark not in lines:
            return []
        start = lines.index(mark) + 1
        end = lines.index(until) if until and until in lines else len(lines)
        return lines[start:end]

    head = lines[: lines.index(_SS_MARK)] if _SS_MARK in lines else lines
    state = _parse(head)
    state["tls_files"] = {}
    for line in lines:
        if line.startswith("tlsfile="):
            path, user, mode = (line[8:].split("|") + ["", ""])[:3]
            state["tls_files"][path] = {"user": user, "mode": mode}
    listening = []
    for line in section(_SS_MARK, _RESULT_MARK):
        fields = line.split()
        if len(fields) >= 4:
            address, _, port = fields[3].rpartition(":")
            if port.isdigit():
                listening.append((address.strip("[]"), int(port)))
    state["listening"] = listening
    runs: dict[str, dict] = {}
    current: dict = {}
    for line in section(_RESULT_MARK, _TLS_MARK):
        if line.startswith("tlsfile="):
            continue
        key, _, value = line.partition("=")
        if key == "Id":
            current = runs.setdefault(value, {})
        current[key] = value
    state["runs"] = runs
    for key, mark, until in (("tls_state", _TLS_MARK, _DDNS_MARK), ("ddns_state", _DDNS_MARK, None)):
        text = "\n".join(section(mark, until)).strip()
        try:
            state[key] = json.loads(text) if text else None
        except ValueError:
            state[key] = None
    return state


# -- checks on the host -------------------------------------------------------------------------

def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def host_checks(plan: dict, state: dict, digests: dict[str, str] | None = None,
                now: dt.datetime | None = None) -> list[Result]:
    """Everything the plan says about the host, against its state. `digests` may add the
    sha256 of secret files (which the plan does not hold)."""
    from operations.ops.converge import installed_distributions, unmet

    digests = digests or {}
    results: list[Result] = []
    paths = state["paths"]
    for f in plan["files"]:
        live, name = paths.get(f["path"]), f"file {f['path']}"
        want = f.get("sha256") or digests.get(f["path"])
        if not live or not live["type"].startswith("regular"):
            results.append(fail(name, "missing" if not live else f"is a {live['type']}"))
        elif (live["user"], live["group"], live["mode"]) != (f["user"], f["group"],
                                                            str(int(f["mode"]))):
            results.append(fail(name, f"owner/mode {live['user']}:{live['group']} "
                                      f"{live['mode']}, want {f['user']}:{f['group']} {f['mode']}"))
        elif want and live["sha256"] != want:
            results.append(fail(name, "content differs from what the spec renders"))
        else:
            results.append(ok(name))
    for d in plan["dirs"]:
        live, name = paths.get(d["path"]), f"directory {d['path']}"
        if not live or live["type"] != "directory":
            results.append(fail(name, "missing" if not live else f"is a {live['type']}"))
        elif (live["user"], live["mode"]) != (d["user"], str(int(d["mode"]))):
            results.append(fail(name, f"owner/mode {live['user']} {live['mode']}, "
                                      f"want {d['user']} {d['mode']}"))
        else:
            results.append(ok(name))
    for path in plan["absent"]:
        results.append(fail(f"absent {path}", "exists") if paths.get(path)
                       else ok(f"absent {path}"))
    installed = set(state["packages"]["installed"])
    missing = [p for p in plan["packages"] if p not in installed]
    results.append(fail("packages", "not installed: " + ", ".join(missing)) if missing
                   else ok("packages", f"{len(plan['packages'])} installed"))
    for user in plan["users"]:
        results.append(ok(f"user {user}") if state["users"].get(user)
                       else fail(f"user {user}", "missing"))
    for group in plan["groups"]:
        results.append(ok(f"group {group}") if state["groups"].get(group)
                       else fail(f"group {group}", "missing"))
    for venv in plan["venvs"]:
        live, name = state["venvs"].get(venv["path"]), f"venv {venv['path']}"
        if not live:
            results.append(fail(name, "missing"))
        elif not live["runs"]:
            results.append(fail(name, "its Python no longer runs (OS upgrade?)"))
        elif ".".join(live["version"].split(".")[:2]) != venv["python_version"]:
            results.append(fail(name, f"made by Python {live['version']}, want "
                                      f"{venv['python_version']}"))
        else:
            wrong = unmet(venv["requirements"], installed_distributions(live["dists"]))
            results.append(fail(name, "not as pinned: " + ", ".join(wrong)) if wrong
                           else ok(name, f"{len(venv['requirements'])} pinned packages"))
    for npm in plan["npm"]:
        have = (state["npm"].get(npm["prefix"]) or {}).get(npm["package"])
        name = f"npm {npm['package']}"
        results.append(ok(name, have) if have == npm["version"]
                       else fail(name, f"{have or 'missing'}, want {npm['version']}"))
    results += _unit_checks(plan, state)
    results += _port_checks(plan, state)
    results += _timer_checks(plan, state)
    results += _tls_files(plan, state)
    results += _certificate_age(state.get("tls_state"), now)
    return results


def _tls_files(plan: dict, state: dict) -> list[Result]:
    results = []
    for key in plan.get("kept_files", []):
        live, name = state["tls_files"].get(key["path"]), f"owner/mode {key['path']}"
        if not live:
            results.append(fail(name, "missing or empty"))
        elif live["user"] != key["user"] or (key["mode"] and live["mode"] != key["mode"]):
            results.append(fail(name, f"{live['user']} {live['mode']}, want {key['user']} "
                                      f"{key['mode'] or ''}".rstrip()))
        else:
            results.append(ok(name))
    return results


def _unit_checks(plan: dict, state: dict) -> list[Result]:
    results = []
    listening = state["listening"]
    for unit in plan["units"]:
        live, name = state["units"].get(unit["unit"]) or {}, f"unit {unit['unit']}"
        active = live.get("ActiveState") == "active"
        enabled = live.get("UnitFileState") in ("enabled", "static", "alias", "indirect")
        problems = []
        if unit["running"] != active:
            problems.append(f"{live.get('ActiveState', 'not loaded')}, want "
                            f"{'running' if unit['running'] else 'stopped'}")
        if unit["enabled"] != enabled:
            problems.append(f"{live.get('UnitFileState') or 'not installed'}, want "
                            f"{'enabled' if unit['enabled'] else 'disabled'}")
        if unit["running"] and unit.get("port") and not any(
                p == unit["port"] for _, p in listening):
            problems.append(f"nothing listens on port {unit['port']}")
        results.append(fail(name, "; ".join(problems)) if problems else ok(name))
    return results


def _port_checks(plan: dict, state: dict) -> list[Result]:
    results = []
    listening = state["listening"]
    for what, port in plan["loopback_ports"].items():
        outside = sorted({a for a, p in listening if p == port and not _loopback(a)})
        name = f"port {port} ({what}) on loopback only"
        results.append(fail(name, f"listens on {', '.join(outside)}") if outside else ok(name))
    low, high = KERNEL_RANGE
    outside = sorted({f"{a}:{p}" for a, p in listening if low <= p <= high and not _loopback(a)})
    results.append(fail("kernel ports 49152-65535 on loopback only",
                        f"listening outside loopback: {', '.join(outside)}") if outside
                   else ok("kernel ports 49152-65535 on loopback only"))
    for port in plan["public_ports"]:
        name = f"public port {port} listening"
        found = any(p == port and not _loopback(a) for a, p in listening)
        results.append(ok(name) if found else fail(name, "nothing listens there (or only on loopback)"))
    return results


def _timer_checks(plan: dict, state: dict) -> list[Result]:
    results = []
    for timer in plan["timers"]:
        live = state["units"].get(timer) or {}
        service = timer.removesuffix(".timer") + ".service"
        run = state["runs"].get(service) or {}
        name = f"timer {timer}"
        if live.get("ActiveState") != "active":
            results.append(fail(name, f"{live.get('ActiveState', 'not loaded')}, want active"))
        elif run.get("ExecMainStartTimestampMonotonic", "0") not in ("", "0") and run.get(
                "Result") not in ("success", None):
            results.append(fail(name, f"its last run failed ({run.get('Result')}): "
                                      f"journalctl -u {service}"))
        else:
            results.append(ok(name))
    return results


def _certificate_age(tls_state: dict | None, now: dt.datetime | None) -> list[Result]:
    if not tls_state or not tls_state.get("not_after"):
        return [fail("certificate", "the TLS agent has no certificate state")]
    now = now or dt.datetime.now(dt.timezone.utc)
    after = dt.datetime.fromisoformat(tls_state["not_after"].replace("Z", "+00:00"))
    before = dt.datetime.fromisoformat((tls_state.get("not_before") or tls_state["not_after"])
                                       .replace("Z", "+00:00"))
    left, lifetime = after - now, after - before
    days = left.total_seconds() / 86400
    if left.total_seconds() <= 0:
        return [fail("certificate", f"expired on {after:%Y-%m-%d}")]
    if lifetime.total_seconds() > 0 and left < lifetime / 3:
        return [warn("certificate", f"{days:.1f} days left of {lifetime.days}: renewal is due "
                                    "and has not happened (journalctl -u pyinfra-jupyter-tls-renew)")]
    return [ok("certificate", f"{days:.0f} days left")]


# -- checks from where verify runs -------------------------------------------------------------

def network_checks(plan: dict, address: str, server_name: str | None = None,
                   timeout: float = 5.0) -> list[Result]:
    """What the world sees of the host at `address`: HTTPS answers with a certificate for
    its names, plain HTTP redirects, the loopback-only ports do not answer."""
    results = []
    names = plan["tls"]["names"]
    for port in plan["https_ports"]:
        results.append(_https_check(address, port, server_name, names, timeout))
    if plan.get("http_port"):
        results.append(_redirect_check(address, plan["http_port"], server_name, timeout))
    closed = {**plan["loopback_ports"], "a kernel port": KERNEL_RANGE[0]}
    for what, port in closed.items():
        name = f"port {port} ({what}) closed from here"
        results.append(fail(name, "it answers: it must be reachable from the host only")
                       if _answers(address, port, timeout) else ok(name))
    return results


def _answers(address: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _https_check(address: str, port: int, server_name: str | None, names: list[str],
                 timeout: float) -> Result:
    name = f"https {address}:{port}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the names are checked below; trust is the CA's job
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return fail(name, f"no TLS answer ({exc})")
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = [*san.get_values_for_type(x509.DNSName),
                   *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        covered = []
    missing = [n for n in names if n not in covered]
    if missing:
        return fail(name, f"the certificate does not cover {', '.join(missing)}")
    left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    return ok(name, f"certificate for {', '.join(names[:3])}, {left.days} days left")


def _redirect_check(address: str, port: int, server_name: str | None, timeout: float) -> Result:
    import http.client

    name = f"http {address}:{port} redirects to https"
    try:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
        connection.request("GET", "/hub/", headers={"Host": server_name or address})
        answer = connection.getresponse()
        location = answer.getheader("Location") or ""
        connection.close()
    except OSError as exc:
        return fail(name, f"no answer ({exc})")
    if answer.status in (301, 302, 307, 308) and location.startswith("https://"):
        return ok(name, f"{answer.status} {location}")
    return fail(name, f"answered {answer.status} {location}".strip())


def ddns_checks(plan: dict, ddns_state: dict | None) -> list[Result]:
    """The DDNS names resolve (from here) to the address the updater last sent."""
    results = []
    sent = (ddns_state or {}).get("address") or (ddns_state or {}).get("ipv4")
    for name in plan.get("ddns_names") or []:
        check = f"dns {name}"
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
        except OSError as exc:
            results.append(warn(check, f"cannot resolve it from here ({exc.strerror or exc})"))
            continue
        if not sent:
            results.append(warn(check, "the updater has not sent an address yet"))
        elif sent in found:
            results.append(ok(check, sent))
        else:
            results.append(fail(check, f"resolves to {', '.join(sorted(found))}, the updater "
                                       f"sent {sent} (a stale record, or another host updates it)"))
    return results
