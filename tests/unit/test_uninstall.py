"""The uninstall's plan (operations/uninstall.py), from host facts: what goes, in what order,
and what stays. tests/lab/test_hub.py runs it on a real host."""

from __future__ import annotations

import pytest

from operations.items import Absent, AbsentUser, Packages, Service, Step, User
from operations.order import COMPONENTS
from operations.site import site_items
from operations.uninstall import removal_plan
from pyinfra_jupyter.spec import build_spec
from tests.unit.test_release_plans import HUB, NOTEBOOK, site_of

NOTEBOOK_IN_SRV = {**NOTEBOOK, "notebook": {"instances": [
    {**NOTEBOOK["notebook"]["instances"][0], "root_dir": "/srv/notebooks/research"}]}}


def _site(release: str, spec: dict):
    import dataclasses

    return dataclasses.replace(site_of(release), spec=build_spec(spec))


def _removed(plan) -> list[str]:
    return [i.path for i in plan if isinstance(i, Absent)]


@pytest.mark.parametrize("release,spec", [("ubuntu2404", HUB), ("centos7", NOTEBOOK),
                                          ("debian12-arm64-pi4", NOTEBOOK_IN_SRV)])
def test_every_service_stops_before_anything_is_removed(release, spec):
    site = _site(release, spec)
    plan = removal_plan(site, COMPONENTS)
    deployed = [i.unit for i in site_items(site, COMPONENTS) if isinstance(i, Service)]
    stops = [i for i in plan if isinstance(i, Service)]
    assert {s.unit for s in stops} >= set(deployed)
    assert all(not s.enabled and not s.running for s in stops)
    first_removal = next(n for n, i in enumerate(plan) if isinstance(i, Absent))
    assert max(plan.index(s) for s in stops) < first_removal


@pytest.mark.parametrize("release,spec", [("ubuntu2404", HUB), ("centos7", NOTEBOOK),
                                          ("debian12-arm64-pi4", NOTEBOOK_IN_SRV)])
def test_what_goes_is_ours_and_what_stays_is_not(release, spec):
    site = _site(release, spec)
    plan = removal_plan(site, COMPONENTS)
    removed = _removed(plan)
    deployed = site_items(site, COMPONENTS)
    # Every venv, npm prefix and unit file the deploy made goes.
    for item in deployed:
        path = getattr(item, "path", None) or getattr(item, "prefix", None)
        if type(item).__name__ in ("Venv", "NpmPackage") or (
                path and path.startswith("/etc/systemd/system/")
                and type(item).__name__ in ("File", "Directory")):
            assert any(path == r or path.startswith(r + "/") for r in removed), path
    # Never a user's directory, a shared one, the repos or an OS package.
    for path in removed:
        assert not path.startswith(("/home", "/srv", "/etc/yum.repos.d")), path
        assert path not in ("/", "/etc", "/opt", "/var/lib", "/etc/motd.d", "/etc/jupyter")
    assert not any(isinstance(i, Packages) for i in plan)
    assert {"/etc/pyinfra-jupyter", "/opt/pyinfra-jupyter", "/var/lib/pyinfra-jupyter"} \
        <= set(removed)
    # No removal repeats one a removed tree already holds.
    assert not [p for p in removed for r in removed if p != r and p.startswith(r + "/")]


def test_service_accounts_go_and_peoples_accounts_stay_unless_told():
    spec = {**HUB, "users": {"allow_all": True, "accounts": [{"name": "alice"}]},
            "hub": {"auth": {"type": "pam"}}}
    kept = removal_plan(_site("ubuntu2404", spec), COMPONENTS)
    assert [(u.name, u.remove_home) for u in kept if isinstance(u, AbsentUser)] == [
        ("jupyter-proxy", False)]
    spec["uninstall"] = {"keep_homes": False}
    purged = removal_plan(_site("ubuntu2404", spec), COMPONENTS)
    assert {(u.name, u.remove_home) for u in purged if isinstance(u, AbsentUser)} == {
        ("jupyter-proxy", False), ("alice", True)}


def test_notebook_users_keep_their_accounts_and_notebooks():
    plan = removal_plan(_site("centos7", NOTEBOOK), COMPONENTS)
    deployed = {u.name for u in site_items(_site("centos7", NOTEBOOK), COMPONENTS)
                if isinstance(u, User)}
    assert "researcher" in deployed
    assert not [u for u in plan if isinstance(u, AbsentUser) and u.name == "researcher"]


def test_the_hub_goes_down_with_its_users_servers_first_and_units_are_reloaded_last():
    plan = removal_plan(_site("ubuntu2404", HUB), COMPONENTS)
    assert isinstance(plan[0], Step) and "single-user servers" in plan[0].label
    assert isinstance(plan[-1], Step) and "Reload systemd" in plan[-1].label
    assert "absent:/etc/systemd/system/jupyterhub.service" in plan[-1].restart_on


def test_uninstall_options_are_validated():
    from pyinfra_jupyter.spec import SpecError

    with pytest.raises(SpecError, match="uninstall.keep_backup"):
        build_spec({**HUB, "uninstall": {"keep_backup": "sometimes"}})


def test_directories_the_spec_names_go_only_while_they_hold_what_we_put_there():
    plan = removal_plan(_site("ubuntu2404", HUB), COMPONENTS)
    markers = {i.path: i.marker for i in plan if isinstance(i, Absent)}
    assert markers["/opt/jupyterhub"] == "pyvenv.cfg"
    assert markers["/var/lib/jupyterhub"] == "jupyterhub_cookie_secret"
    assert markers["/opt/configurable-http-proxy"] == "lib/node_modules/configurable-http-proxy"
    assert markers["/etc/pyinfra-jupyter"] == ""
