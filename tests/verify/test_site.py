"""`pyinfra-jupyter verify`'s checks as a testinfra module, for a deployed host:

    pytest tests/verify --hosts='ssh://root@hub.example.org'    (or paramiko://, with sudo:
    --sudo)

The deploy leaves its plan on the host (/etc/pyinfra-jupyter/verify.json: units, ports,
files and their modes, pins, TLS names); these tests read it from there, take the host's
state in one command and run the same checks as `verify` (pyinfra_jupyter/verify/checks.py),
then the network checks from where pytest runs (the public port answers with the right
certificate, the loopback-only and kernel ports do not). Secret files are checked for owner
and mode only (their digests need the spec's secrets, which `verify` has).
Out of `make test`'s offline run: the lab's hub test runs this module against its host.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from pyinfra_jupyter.verify.checks import (
    ddns_checks,
    host_checks,
    network_checks,
    parse_state,
    state_command,
)

PLAN = "/etc/pyinfra-jupyter/verify.json"


@pytest.fixture(scope="module")
def plan(host) -> dict:
    found = host.run(f"cat {PLAN}")
    assert found.rc == 0, f"{PLAN} is missing: deploy the host first ({found.stderr.strip()})"
    return json.loads(found.stdout)


@pytest.fixture(scope="module")
def state(host, plan) -> dict:
    answer = host.run(state_command(plan))
    assert answer.rc == 0, answer.stderr[-300:]
    return parse_state(answer.stdout)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _failures(results) -> list[str]:
    return [r.line() for r in results if r.status == "fail"]


def test_units_files_ports_and_pins_on_the_host(plan, state):
    results = host_checks(plan, state)
    assert results and not _failures(results), "\n".join(_failures(results))


def test_what_the_world_sees(host, plan):
    address = host.backend.get_hostname()
    results = network_checks(plan, address, next(
        (n for n in plan["tls"]["names"] if not _is_address(n)), None))
    assert results and not _failures(results), "\n".join(_failures(results))


def test_ddns_points_at_the_address_last_sent(plan, state):
    assert not _failures(ddns_checks(plan, state.get("ddns_state")))
