"""`pyinfra-jupyter check | schema`, the shipped examples, and pyinfra refusing a bad spec."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyinfra_jupyter.reference import BEGIN, END, markdown_reference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "inventory").glob("*.py") if p.name != "lab.py")


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyinfra_jupyter.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_there_are_examples_for_every_target():
    names = {p.stem for p in EXAMPLES}
    assert {"vps", "centos7", "raspberrypi", "vagrant", "docker"} <= names
    assert (ROOT / "inventory" / "Vagrantfile").is_file()
    assert (ROOT / "inventory" / "Dockerfile").is_file()


@pytest.mark.parametrize("inventory", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_inventory_validates(inventory):
    result = cli("check", str(inventory.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": ok (mode " in result.stdout


def test_every_group_data_file_is_used_by_an_example():
    # group_data/<name>.py applies to the hosts of inventory/<name>.py; all.py to every host.
    groups = {p.stem for p in (ROOT / "group_data").glob("*.py")} - {"all"}
    assert groups <= {p.stem for p in EXAMPLES} | {"lab"}


def test_group_data_merges_one_key_at_a_time():
    # In a subprocess: importing pyinfra_cli monkey-patches the process with gevent.
    code = (
        "import json; from pyinfra_jupyter.cli import load_inventory_data as l; "
        "print(json.dumps(dict(l('inventory/raspberrypi.py')), default=str))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    data = json.loads(result.stdout)["192.168.1.50"]
    assert data["mode"] == "hub"  # from all.py
    assert data["tls"]["challenge"] == "dns-01"  # raspberrypi.py replaced all.py's tls
    assert data["ssh_user"] == "pi"  # host data


def test_lab_group_data_validates_with_the_default_site():
    from pyinfra_jupyter.spec import build_spec

    all_data = _exec(ROOT / "group_data" / "all.py")
    lab_data = _exec(ROOT / "group_data" / "lab.py")
    assert build_spec({**all_data, **lab_data}).mode == "hub"


def _exec(path: Path) -> dict:
    scope: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), scope)
    return {k: v for k, v in scope.items() if not k.startswith("__")}


BROKEN = '''
broken = [
    ("good.example.org", {}),
    ("bad.example.org", {
        "hub": {"auth": {"type": "github", "client_secret": "S3CRET-VALUE"}},
        "tls": {"type": "acme", "email": "me@example.org"},
        "firewal": {},
    }),
]
'''


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "broken.py").write_text(BROKEN)
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "all.py").write_text('users = {"allow_all": True}\n')
    return tmp_path


def test_check_rejects_a_broken_spec_with_field_paths(broken_site):
    result = cli("check", "inventory/broken.py", cwd=broken_site)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "good.example.org: ok (mode hub, tls self-signed, public ports 443, 80)" in lines
    for expected in (
        "bad.example.org: hub.auth.github.client_id: Field required",
        "bad.example.org: hub.auth.github.callback_url: Field required",
        "bad.example.org: tls.acme.domains: Field required",
        "bad.example.org: firewal: unknown key, did you mean 'firewall'?",
    ):
        assert expected in lines, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "S3CRET-VALUE" not in result.stdout + result.stderr


def test_check_reports_an_unloadable_inventory_in_one_line(tmp_path):
    (tmp_path / "oops.py").write_text("hosts = [\n")
    result = cli("check", str(tmp_path / "oops.py"))
    assert result.returncode == 1
    assert result.stdout.count("\n") == 1 and "cannot load the inventory" in result.stdout
    assert "Traceback" not in result.stderr

    missing = cli("check", str(tmp_path / "nope.py"))
    assert missing.returncode == 1 and "no such inventory file" in missing.stdout


def test_pyinfra_refuses_a_bad_spec_before_any_operation(broken_site):
    """The real `pyinfra` run: one message per problem, no traceback, nothing executed."""
    marker = broken_site / "touched"
    (broken_site / "inventory" / "local.py").write_text(
        'local = [("@local", {"mode": "hubb", "proxy": {"port": 70000}})]\n'
    )
    deploy = broken_site / "deploy.py"
    # The project's deploy.py, plus an operation that would leave a mark if anything ran.
    deploy.write_text(
        (ROOT / "deploy.py").read_text()
        + f"\nfrom pyinfra.operations import server\nserver.shell(commands=['touch {marker}'])\n"
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pyinfra"), "-y", "inventory/local.py", "deploy.py"],
        cwd=broken_site, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid site spec for @local" in output
    assert "mode: Input should be 'notebook' or 'hub'" in output
    assert "proxy.port: Input should be less than or equal to 65535" in output
    assert "Traceback" not in output
    assert not marker.exists()


def test_schema_prints_the_json_schema():
    result = cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert set(schema["properties"]) >= {"mode", "hub", "tls", "firewall", "users", "ddns"}


def test_readme_spec_reference_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == markdown_reference(), (
        "README's spec reference is stale: run `make readme-reference`"
    )


# -- user code that breaks while loading: one line, exit 1, never a traceback --------------

SITE_OK = 'users = {"allow_all": True}\n'


def site_with(tmp_path: Path, inventory: str, group_data: str = SITE_OK) -> Path:
    (tmp_path / "group_data").mkdir(exist_ok=True)
    (tmp_path / "group_data" / "all.py").write_text(group_data)
    (tmp_path / "inv.py").write_text(inventory)
    return tmp_path


HOSTS = 'hosts = [("h1", {})]\n'


@pytest.mark.parametrize(("inventory", "group_data", "expected"), [
    (HOSTS, 'raise BaseException("gd broke")\n',
     "inv.py: cannot load the inventory: group_data/all.py: BaseException: gd broke"),
    (HOSTS, 'raise ValueError("gd broke")\n',
     "inv.py: cannot load the inventory: group_data/all.py: ValueError: gd broke"),
    ('raise BaseException("inv broke")\n', SITE_OK,
     "inv.py: cannot load the inventory: inv.py: BaseException: inv broke"),
    ('raise GeneratorExit("inv broke")\n', SITE_OK,
     "inv.py: cannot load the inventory: inv.py: GeneratorExit: inv broke"),
    ("import sys\nsys.exit(0)\n", SITE_OK,
     "inv.py: cannot load the inventory: inv.py called sys.exit(0)"),
    ("import os\nos._exit(0)\n", SITE_OK,
     "inv.py: cannot load the inventory: it ended the process while loading"),
    (HOSTS, SITE_OK + "tls = None\n",
     "h1: tls: is None; remove the key to get the default, or give a value"),
    (HOSTS, SITE_OK + "jupyterhub = {}\n", "h1: jupyterhub: unknown key, "),
    ('hosts = [("h1", {"users": {"accounts": [{"name": "ann", '
     '"password_file": "~nosuchuser/pw"}], "allow_all": True}})]\n', SITE_OK,
     "h1: users.accounts.0.password_file: cannot expand '~nosuchuser/pw'"),
], ids=["raising-group-data", "exception-in-group-data", "raising-inventory", "generator-exit",
        "sys-exit-0", "os-exit-0", "tls-none", "unknown-key", "nosuchuser"])
def test_check_fails_in_one_line_on_what_could_not_load(tmp_path, inventory, group_data,
                                                        expected):
    result = cli("check", "inv.py", cwd=site_with(tmp_path, inventory, group_data))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(expected), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# Raised while pyinfra executes an inventory or group-data file; each must fail the check.
RAISED = st.sampled_from([
    'BaseException("b")', 'GeneratorExit()', 'KeyboardInterrupt()', "SystemExit(0)",
    "SystemExit(None)", "SystemExit(1)", 'SystemExit("str")', "SystemExit()",
    'ValueError("a\\nmultiline\\r\\nmessage")', "RecursionError()", "MemoryError()",
    'type("Mine", (BaseException,), {})("mine")',
    'type("Mute", (Exception,), {"__str__": lambda self: 1 / 0})()',
    "StopIteration()", 'OSError(13, "denied")', "AssertionError()",
])
EXITS = st.sampled_from(["import os; os._exit(0)", "import os; os._exit(3)",
                         "import sys; sys.exit()", "import os, signal; "
                         "os.kill(os.getpid(), signal.SIGKILL)"])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(["inventory", "all", "group"]),
    statement=st.one_of(RAISED.map(lambda e: f"raise {e}"), EXITS),
    inside_function=st.booleans(),
)
def test_check_never_passes_or_tracebacks_on_a_raising_inventory(capfd, where, statement,
                                                                 inside_function):
    """In-process: loading runs in a forked child, so even os._exit cannot end the check."""
    from pyinfra_jupyter.cli import check_inventory

    code = f"def f():\n    {statement}\nf()\n" if inside_function else statement + "\n"
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        site = site_with(Path(tmp), code if where == "inventory" else HOSTS,
                         code if where == "all" else SITE_OK)
        if where == "group":  # the inventory's own group file (group_data/inv.py)
            (site / "group_data" / "inv.py").write_text(code)
        capfd.readouterr()
        status = check_inventory("inv.py", out=sys.stdout)  # capfd's stdout, not the import's
        out, err = capfd.readouterr()
    assert status == 1
    assert out.count("\n") == 1 and out.startswith("inv.py: "), out
    assert "Traceback" not in out + err


def test_verify_probes_where_the_inventory_reaches_the_host():
    """The address verify probes comes from the inventory (cli.host_address), not from
    host data read inside verify."""
    from types import SimpleNamespace

    from pyinfra_jupyter.cli import host_address

    def host(name, **data):
        return SimpleNamespace(name=name, data=SimpleNamespace(get=data.get))

    assert host_address(host("@docker/pj", ssh_hostname="10.0.0.5")) == "10.0.0.5"
    assert host_address(host("hub.example.org")) == "hub.example.org"
