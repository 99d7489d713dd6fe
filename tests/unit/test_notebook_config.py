"""The notebook component without a host: templates render and load, password and removal logic.

The rendered jupyter_server_config.py is loaded with traitlets and applied to jupyter_server's
own classes (ServerApp, PasswordIdentityProvider), as the server will on the host.
"""

from __future__ import annotations

import configparser
import ssl

import pytest
from pyinfra.api.util import get_template

from operations.common import TLS_CERT, TLS_KEY, template
from operations.notebook import (
    CONFIG_NAME,
    UNIT_TEMPLATE,
    NotebookInstances,
    check_command,
    config_values,
    hash_matches,
    hash_password,
    instances_to_remove,
    packages,
    password_hash,
)
from operations.platforms import MODERN, Platform
from operations.spec import SpecError, build_spec
from operations.spec.notebook import NotebookInstance, NotebookSpec

jupyter_server = pytest.importorskip("jupyter_server")
from jupyter_server.auth.identity import PasswordIdentityProvider  # noqa: E402
from jupyter_server.auth.security import passwd, passwd_check  # noqa: E402
from jupyter_server.serverapp import ServerApp  # noqa: E402
from traitlets.config.loader import PyFileConfigLoader  # noqa: E402

PLATFORM = Platform(distro="debian", version=(12, 0), arch="x86_64", systemd=252, pins=MODERN)


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
    return get_template(template("notebook", name)).render(**values)


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
        assert (app.certfile, app.keyfile) == (TLS_CERT, TLS_KEY)
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


def test_strings_that_need_quoting_stay_data(tmp_path):
    instance = NotebookInstance(
        name="q", user="q", root_dir="/srv/it's \"quoted\" \\ <x>", password="p"
    )
    text = render(CONFIG_NAME, **config_values(instance, passwd("p")))
    config = load_config(tmp_path, text)
    assert config.ServerApp.root_dir == "/srv/it's \"quoted\" \\ <x>"


@pytest.mark.parametrize("systemd", [219, 229, 252])
def test_units_render_for_old_and_new_systemd(systemd):
    unit = render(
        UNIT_TEMPLATE,
        prefix="/opt/jupyter",
        config_root="/etc/jupyter/instances",
        network_env="/etc/pyinfra-jupyter/network.env",
        systemd=systemd,
    )
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.read_string(unit)
    service = parser["Service"]
    assert service["ExecStart"].startswith("/opt/jupyter/%i/bin/jupyter-lab --config=")
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == ("strict" if systemd >= 232 else "full")
    assert parser["Install"]["WantedBy"] == "multi-user.target"

    dropin = render(
        "instance.conf", instance_name="a", run_as="alice", home="/home/alice",
        root_dir="/srv/nb", systemd=systemd,
    )
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.read_string(dropin)
    key = "ReadWritePaths" if systemd >= 231 else "ReadWriteDirectories"
    assert parser["Service"][key] == "-/home/alice -/srv/nb"
    assert parser["Service"]["User"] == "alice"


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


def test_deployed_instances_fact_parses_names_and_hashes():
    fact = NotebookInstances()
    assert fact.process([]) == {}
    output = [
        "alice argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdA$aGFzaA",
        "lab-b ",
        "lab-b",  # found again through its unit drop-in
        "old argon2:$x",
        "old",
    ]
    assert fact.process(output) == {
        "alice": "argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdA$aGFzaA",
        "lab-b": None,
        "old": "argon2:$x",
    }


def test_deployed_instances_fact_reads_a_rendered_config(tmp_path):
    import subprocess

    root, units = tmp_path / "instances", tmp_path / "units"
    hashed = passwd("pw")
    instance = NotebookInstance(name="alice", password_hash=hashed)
    (root / "alice").mkdir(parents=True)
    (root / "alice" / CONFIG_NAME).write_text(
        render(CONFIG_NAME, **config_values(instance, hashed))
    )
    (root / "nohash").mkdir()
    (units / "jupyter-notebook@gone.service.d").mkdir(parents=True)
    command = NotebookInstances().command(config_root=str(root), unit_dir=str(units))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    found = NotebookInstances().process(output.stdout.splitlines())
    assert found == {"alice": hashed, "nohash": None, "gone": None}


def test_packages_pin_jupyterlab_and_add_extras():
    spec = build_spec(
        {**TWO, "python": {"packages": ["numpy"]}}
    )
    alice, bob = spec.notebook.instances
    assert packages(spec, alice, PLATFORM) == [f"jupyterlab=={MODERN.jupyterlab}", "numpy"]
    assert packages(spec, bob, PLATFORM) == [
        f"jupyterlab=={MODERN.jupyterlab}", "numpy", "pandas==2.2.3"
    ]
    spec7 = build_spec({**TWO, "notebook": {**TWO["notebook"], "notebook7": True,
                                           "jupyterlab_version": "4.4.9"}})
    assert packages(spec7, spec7.notebook.instances[0], PLATFORM)[:2] == [
        "jupyterlab==4.4.9", f"notebook=={MODERN.notebook}"
    ]
