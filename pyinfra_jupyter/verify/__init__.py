"""`pyinfra-jupyter verify INVENTORY`: is each host working as its spec says, right now?

Over the inventory's own SSH settings (pyinfra's connectors), for each host: build the site
from its spec exactly as the deploy does (operations/site.py), derive the plan of what must
be on the host (operations/plan.py), read the host's state in one command and run the checks
(checks.py); then probe the host's public face from here. Prints FAIL and WARN lines with
their reasons and one OK line per healthy host (`--all`: every check); `--json` for
monitoring. Exit 1 when any check failed. Read-only: nothing on the host changes, and the
deploy lock is not taken.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .checks import Result, ddns_checks, host_checks, network_checks, parse_state, state_command

REPO = Path(__file__).resolve().parents[2]


def _operations():
    """The pyinfra layer lives beside deploy.py in the checkout (it is not installed)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from operations.items import File
    from operations.order import COMPONENTS
    from operations.site import load_site, site_items, verify_plan

    return File, COMPONENTS, load_site, site_items, verify_plan


def verify_host(host, address: str | None = None) -> list[Result]:
    """All checks of one connected pyinfra host (call inside its pyinfra context); the public
    ports are probed at `address` (verify_inventory passes where the inventory reaches the
    host: cli.host_address), else at the host's name."""
    from pyinfra.api import StringCommand
    from pyinfra.api.exceptions import DeployError

    File, components, load_site, site_items, verify_plan = _operations()
    try:
        site = load_site(host, components, lock=False)
    except DeployError as exc:
        return [Result("fail", "spec", str(exc).replace("\n", " "))]
    items = site_items(site, components)
    plan = json.loads(verify_plan(site, components))
    from ..cli import sudo_arguments

    sudo = sudo_arguments(host)
    ran, output = host.run_shell_command(StringCommand(state_command(plan)),
                                         print_output=False, print_input=False, **sudo)
    if not ran:
        return [Result("fail", "host state", " ".join(output.stderr_lines)[-300:])]
    state = parse_state("\n".join(output.stdout_lines))
    # Secret files are compared here, on the controller, by digest: never shown.
    digests = {i.path: hashlib.sha256(i.data).hexdigest() for i in items
               if isinstance(i, File) and i.secret}
    results = host_checks(plan, state, digests)
    target = address or host.name
    server_name = next((n for n in plan["tls"]["names"] if not _is_address(n)), None)
    results += network_checks(plan, target, server_name)
    results += ddns_checks(plan, state.get("ddns_state"))
    return results


def _is_address(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def verify_inventory(inventory: str, limit: list[str] | None = None, as_json: bool = False,
                     show_all: bool = False, address: str | None = None, out=sys.stdout) -> int:
    from pyinfra.context import ctx_host, ctx_state

    from ..cli import InventoryError, connect_inventory, host_address

    try:
        state, built = connect_inventory(inventory, limit)
    except InventoryError as exc:
        print(exc, file=out)
        return 1
    report: dict[str, list[dict]] = {}
    failed = False
    for host in built:
        if not host.connected:
            results = [Result("fail", "ssh", "cannot connect with the inventory's settings")]
        else:
            with ctx_state.use(state), ctx_host.use(host):
                results = verify_host(host, address or host_address(host))
            host.disconnect()
        report[host.name] = [r.as_dict() for r in results]
        failed |= any(r.status == "fail" for r in results)
        if not as_json:
            _print(host.name, results, show_all, out)
    if as_json:
        print(json.dumps({"ok": not failed, "hosts": report}, indent=1), file=out)
    return 1 if failed else 0


def _print(name: str, results: list[Result], show_all: bool, out) -> None:
    bad = [r for r in results if r.status != "ok"]
    for result in results if show_all else bad:
        print(f"{name}: {result.line()}", file=out)
    fails = sum(r.status == "fail" for r in results)
    verdict = "FAIL" if fails else "OK"
    print(f"{name}: {verdict} ({len(results) - len(bad)} of {len(results)} checks ok"
          + (f", {fails} failed" if fails else "")
          + (f", {len(bad) - fails} warnings" if len(bad) - fails else "") + ")", file=out)
