"""The notebook component without a host: templates render and load, password and removal logic.

The rendered jupyter_server_config.py is loaded with traitlets and applied to jupyter_server's
own classes (ServerApp, PasswordIdentityProvider), as the server will on the host.
"""

from __future__ import annotations

import configparser
import ssl

import pytest
from jupyter_server.auth.identity import PasswordIdentityProvider  # noqa: E402
from jupyter_server.auth.security import passwd, passwd_check  # noqa: E402
from jupyter_server.serverapp import ServerApp  # noqa: E402
from traitlets.config.loader import PyFileConfigLoader  # noqa: E402

from operations import paths
from operations.notebook import (
    CONFIG_NAME,
    HASH_PREFIX,
    check_command,
    config_values,
    deployed,
    existing_hash,
    hash_matches,
    hash_password,
    instances_to_remove,
    packages,
    password_hash,
    render_dropin,
    render_unit,
)
from operations.ops.render import render as render_template
from operations.platform import MODERN
from pyinfra_jupyter.spec import SpecError, build_spec
from pyinfra_jupyter.spec.notebook import NotebookInstance, NotebookSpec
from tests.support import make_site, platform  # noqa: E402

PLATFORM = platform("debian12")


def site(**notebook) -> dict:
    return {"mode": "notebook", "notebook": notebook}


TWO = site(
    instances=[
        {"name": "alice", "user": "alice", "port": 8100, "ip": "*", "password": "s3cret-a"},
        {
            "name": "lab-b",
            "user": "bob",
            "port": 9999,
            "root_dir": "/srv/notebooks/bob",
            "base_url": "/bob/",
            "allow_remote_access": False,
            "password_hash": passwd("s3cret-b"),
            "packages": ["numpy", "pandas==2.2.3"],
        },
    ]
)


def render(name: str, **values) -> str:
    return render_template("notebook", name, **values)


def load_config(tmp_path, text: str):
    (tmp_path / CONFIG_NAME).write_text(text)
    return PyFileConfigLoader(CONFIG_NAME, path=str(tmp_path)).load_config()


@pytest.mark.parametrize("min_version", ["1.2", "1.3"])
def test_config_renders_and_loads_for_every_instance(tmp_path, min_version):
    spec = build_spec(TWO)
    for instance in spec.notebook.instances:
        hashed = password_hash(instance, None)
        text = render(CONFIG_NAME, **config_values(instance, hashed, min_version))
        compile(text, CONFIG_NAME, "exec")
        config = load_config(tmp_path, text)
        # ServerApp insists that root_dir exists: check the value, then point it here.
        assert config.ServerApp.root_dir == instance.notebook_dir
        config.ServerApp.root_dir = str(tmp_path)

        app = ServerApp(config=config)
        assert app.ip == instance.ip
        assert app.port == instance.port
        assert app.port_retries == 0
        assert app.open_browser is False
        assert app.base_url == instance.base_url
        assert app.allow_remote_access is instance.allow_remote_access
        # The instance user's own copy of the certificate, not the root-only original.
        assert (app.certfile, app.keyfile) == paths.tls_copy(instance.user)
        assert app.ssl_options["ssl_version"] == ssl.PROTOCOL_TLS_SERVER

        provider = PasswordIdentityProvider(config=config)
        assert provider.hashed_password == hashed
        assert provider.token == ""
        secret = "s3cret-a" if instance.name == "alice" else "s3cret-b"
        assert passwd_check(provider.hashed_password, secret)
        assert not passwd_check(provider.hashed_password, "wrong")


def test_config_raises_the_tls_floor(tmp_path):
    import tornado.netutil

    current = tornado.netutil.ssl_options_to_context
    original = getattr(current, "__wrapped__", current)
    instance = build_spec(TWO).notebook.instances[0]
    try:
        for version, floor in (("1.2", ssl.TLSVersion.TLSv1_2), ("1.3", ssl.TLSVersion.TLSv1_3)):
            text = render(CONFIG_NAME, **config_values(instance, passwd("x"), version))
            load_config(tmp_path, text)
            context = tornado.netutil.ssl_options_to_context(
                {"ssl_version": ssl.PROTOCOL_TLS_SERVER}, server_side=True
            )
            assert context.minimum_version == floor
            # Loading the config again (a check, a reload) does not wrap twice.
            load_config(tmp_path, text)
            assert tornado.netutil.ssl_options_to_context.__wrapped__ is original
    finally:
        tornado.netutil.ssl_options_to_context = current


def test_a_root_dir_with_quotes_or_spaces_is_refused():
    with pytest.raises(SpecError, match="notebook.instances.0.root_dir"):
        build_spec(site(instances=[{"name": "q", "user": "q", "password": "p",
                                    "root_dir": "/srv/it's \"quoted\" <x>"}]))


@pytest.mark.parametrize("release", ["centos7", "ubuntu1604", "debian12"])
def test_units_render_for_old_and_new_systemd(release):
    plat = platform(release)
    systemd = plat.systemd.version
    spec = build_spec(TWO)
    unit = render_unit(spec, plat)
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.read_string(unit)
    service = parser["Service"]
    assert service["ExecStart"].startswith("/opt/jupyter/%i/bin/jupyter-lab --config=")
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateDevices"] == "yes"
    assert service["ProtectSystem"] == ("strict" if systemd >= 232 else "full")
    assert ("ProtectHostname" in service) == (systemd >= 242)
    assert parser["Install"]["WantedBy"] == "multi-user.target"

    dropin = render_dropin(spec.notebook.instances[1], "/home/bob", plat)
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.read_string(dropin)
    key = "ReadWritePaths" if systemd >= 231 else "ReadWriteDirectories"
    assert parser["Service"][key] == "-/home/bob -/srv/notebooks/bob"
    assert parser["Service"]["User"] == "bob"


# -- password hashes ---------------------------------------------------------------------


def test_hash_has_jupyter_servers_format():
    hashed = hash_password("pw")
    assert hashed.startswith("argon2:$argon2id$")
    assert passwd_check(hashed, "pw")
    assert hash_matches(passwd("pw"), "pw")


def test_existing_hash_is_kept_when_the_secret_still_matches():
    instance = NotebookInstance(password="pw")
    existing = hash_password("pw")
    assert password_hash(instance, existing) == existing


@pytest.mark.parametrize("existing", [None, "", "sha1:abc:def", "argon2:garbage", "x"])
def test_hash_is_made_when_missing_or_unusable(existing):
    hashed = password_hash(NotebookInstance(password="pw"), existing)
    assert hashed != existing and passwd_check(hashed, "pw")


def test_hash_is_replaced_when_the_secret_changed():
    old = hash_password("old")
    new = password_hash(NotebookInstance(password="new"), old)
    assert new != old and passwd_check(new, "new") and not passwd_check(new, "old")


def test_a_hash_from_the_spec_is_written_as_given():
    given = passwd("pw")
    instance = NotebookInstance(password_hash=given)
    assert password_hash(instance, None) == given
    assert password_hash(instance, hash_password("pw")) == given


def test_sha1_hash_is_rejected_with_the_reason():
    from jupyter_server.auth.security import passwd as make

    with pytest.raises(SpecError) as error:
        build_spec(site(instances=[{"password_hash": make("pw", algorithm="sha1")}]))
    (problem,) = error.value.problems
    assert problem.startswith("notebook.instances.0.password_hash:")
    assert "sha1" in problem and "brute-force" in problem and "argon2" in problem


def test_a_plaintext_in_password_hash_is_rejected():
    with pytest.raises(SpecError, match="argon2 hash"):
        build_spec(site(instances=[{"password_hash": "hunter2"}]))


def test_the_secret_never_shows_in_the_spec_or_the_check():
    spec = build_spec(site(instances=[{"password": "very-secret-pw"}]))
    instance = spec.notebook.instances[0]
    assert "very-secret-pw" not in repr(spec)
    assert "very-secret-pw" not in check_command(spec.notebook, instance)


# -- instances on the host ---------------------------------------------------------------


def test_removal_planning():
    spec = build_spec(TWO).notebook
    assert instances_to_remove(spec, {}) == []
    assert instances_to_remove(spec, {"alice": "argon2:x", "lab-b": None}) == []
    assert instances_to_remove(spec, {"old": None, "alice": None, "aa": "h"}) == ["aa", "old"]
    only_alice = NotebookSpec(instances=[spec.instances[0]])
    assert instances_to_remove(only_alice, ["alice", "lab-b"]) == ["lab-b"]


def test_deployed_instances_come_from_config_dirs_and_dropins():
    globs = {"/etc/jupyter/instances/*/": ["/etc/jupyter/instances/alice/",
                                            "/etc/jupyter/instances/nohash/"],
             "/etc/systemd/system/jupyter-notebook@*.service.d": [
                 "/etc/systemd/system/jupyter-notebook@gone.service.d",
                 "/etc/systemd/system/jupyter-notebook@alice.service.d"]}
    site_ = make_site(TWO, facts={"globs": globs})
    assert deployed(site_) == ["alice", "gone", "nohash"]


def test_the_hash_is_read_back_from_a_rendered_config(tmp_path):
    import subprocess

    from operations.ops.facts import HostFacts

    hashed = passwd("pw")
    instance = NotebookInstance(name="alice", password_hash=hashed)
    config = tmp_path / CONFIG_NAME
    config.write_text(render(CONFIG_NAME, **config_values(instance, hashed)))
    command = HostFacts().command(users=[], lines=[(str(config), HASH_PREFIX)],
                                  globs=[f"{tmp_path}/*.py"])
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    facts = HostFacts().process(output.stdout.splitlines())
    assert existing_hash(facts["lines"][(str(config), HASH_PREFIX)]) == hashed
    assert facts["globs"][f"{tmp_path}/*.py"] == [str(config)]
    assert existing_hash(None) is None and existing_hash("c.Other = 1") is None


def test_packages_pin_jupyterlab_and_add_extras():
    spec = build_spec(
        {**TWO, "python": {"packages": ["numpy"]}}
    )
    alice, bob = spec.notebook.instances
    assert packages(spec, alice, PLATFORM) == [f"jupyterlab=={MODERN['jupyterlab']}", "numpy"]
    assert packages(spec, bob, PLATFORM) == [
        f"jupyterlab=={MODERN['jupyterlab']}", "numpy", "pandas==2.2.3"
    ]
    spec7 = build_spec({**TWO, "notebook": {**TWO["notebook"], "notebook7": True,
                                           "jupyterlab_version": "4.4.9"}})
    assert packages(spec7, spec7.notebook.instances[0], PLATFORM)[:2] == [
        "jupyterlab==4.4.9", f"notebook=={MODERN['notebook']}"
    ]
