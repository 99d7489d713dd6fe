"""`pyinfra-jupyter export z2jh`: values the chart accepts, a guide, and no secret shown.

The exported values, deep-merged over the chart's default values.yaml as helm merges them,
must validate against the chart's own schema — for every shipped hub example and for
generated sites covering every auth type, TLS type, limits and culler setting. The chart's
files are copied in tests/data/z2jh/ (BSD 3-Clause, LICENSE and README beside them), so
the test needs no sibling checkout.

Golden files: `tests/unit/golden/z2jh-*.values.yaml` and `.guide.md` are the exports of
two shipped examples (secrets as placeholders); set PJ_UPDATE_GOLDEN=1 to rewrite them
after an intended change (and read the diff).
"""

from __future__ import annotations

import functools
import os
import stat
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from pyinfra_jupyter import cli
from pyinfra_jupyter import export as export_cmd
from pyinfra_jupyter.export import z2jh
from pyinfra_jupyter.spec import SiteSpec, build_spec
from tests.support import self_signed_pem

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "tests" / "data" / "z2jh"
GOLDEN = Path(__file__).with_name("golden")
# inventory/lab.py lists the hosts of a running lab; its group data is the default site,
# which docker.py and vagrant.py ship too.
EXAMPLES = sorted(p for p in (ROOT / "inventory").glob("*.py") if p.name != "lab.py")

SECRET = "S3CRET-never-shown-0123"
CERT, KEY = self_signed_pem("hub.example.org")
ADMIN = {"name": "admin", "admin": True, "password": "pw-admin-123"}
OAUTH = {"client_id": "id", "client_secret": SECRET,
         "callback_url": "https://hub.example.org/hub/oauth_callback"}
AUTHS = {
    "pam": {"type": "pam", "admin_groups": ["wheel"], "allowed_groups": ["students"]},
    "native": {"type": "native", "open_signup": True},
    "github": {"type": "github", **OAUTH, "allowed_organizations": ["my-org"]},
    "google": {"type": "google", **OAUTH, "hosted_domain": ["example.org"]},
    "generic-oauth": {"type": "generic-oauth", **OAUTH,
                      "authorize_url": "https://sso.example.org/auth",
                      "token_url": "https://sso.example.org/token",
                      "userdata_url": "https://sso.example.org/userinfo"},
    "ldap": {"type": "ldap", "server_address": "ldap.example.org",
             "bind_dn_template": ["uid={username},ou=people,dc=example,dc=org"]},
    "dummy": {"type": "dummy"},
    "dummy-password": {"type": "dummy", "password": SECRET},
}
DUCKDNS = {"provider": "duckdns", "domain": "ourhub.duckdns.org", "token": "DDNS-T0KEN-secret"}
TLS = {
    "acme": ({"type": "acme", "email": "me@example.org", "domains": ["hub.example.org"]}, None),
    "acme-dns-01": ({"type": "acme", "email": "me@example.org",
                     "domains": ["ourhub.duckdns.org"], "challenge": "dns-01",
                     "http_port": None}, DUCKDNS),
    "self-signed": ({"type": "self-signed"}, None),
    "provided-pem": ({"type": "provided", "cert_pem": CERT, "key_pem": KEY}, None),
    "provided-files": ({"type": "provided", "cert_file": "/etc/ssl-hub/fullchain.pem",
                        "key_file": "/etc/ssl-hub/privkey.pem", "min_version": "1.3"}, None),
}
LIMITS = {"none": {"type": "local"},
          "systemd": {"type": "systemd", "mem_limit": "512M", "cpu_limit": 2.0}}


# -- the chart ---------------------------------------------------------------------------------


@functools.cache
def chart() -> tuple[dict, dict]:
    schema = yaml.safe_load((CHART / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return schema, defaults


def helm_merge(defaults: Any, values: Any) -> Any:
    """As helm coalesces a values file over the chart's: maps merge key by key, anything
    else (lists, scalars) replaces. (A null would delete the key: the export has none.)"""
    if isinstance(defaults, dict) and isinstance(values, dict):
        merged = dict(defaults)
        for key, value in values.items():
            merged[key] = helm_merge(defaults.get(key), value)
        return merged
    return values


def nulls(values: Any, path: str = "") -> list[str]:
    if isinstance(values, dict):
        return [p for k, v in values.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(values, list):
        return [p for i, v in enumerate(values) for p in nulls(v, f"{path}.{i}")]
    return [path] if values is None else []


def assert_chart_accepts(values: dict) -> dict:
    """The values as written (secrets revealed), merged and validated; returns the merge."""
    schema, defaults = chart()
    written = yaml.safe_load(z2jh.values_yaml(values, "host", reveal=True))
    assert not nulls(written), "helm would delete these keys instead of setting them"
    merged = helm_merge(defaults, written)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(merged), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return merged


def test_the_copied_chart_is_the_one_the_export_targets():
    schema, defaults = chart()
    assert f"appVersion {z2jh.CHART_APP_VERSION}" in (CHART / "README.md").read_text()
    assert "BSD 3-Clause" in (CHART / "LICENSE").read_text()
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(defaults))
    # The validator does reject what the chart would: a string CPU limit, an unknown key.
    bad = helm_merge(defaults, {"singleuser": {"cpu": {"limit": "1"}}, "hubb": {}})
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(bad))) == 2


# -- shipped examples, loaded as `check` loads them -----------------------------------------


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def example_specs() -> list[tuple[str, str, SiteSpec]]:
    found = []
    for inventory in EXAMPLES:
        hosts = cli.inventory_specs(str(inventory.relative_to(ROOT)))
        assert not isinstance(hosts, str), hosts
        for name, spec in hosts:
            assert not isinstance(spec, list), spec
            found.append((inventory.stem, name, spec))
    return found


def test_every_shipped_hub_example_exports_values_the_chart_accepts(at_root):
    exported = 0
    for example, name, spec in example_specs():
        if spec.mode != "hub":
            with pytest.raises(z2jh.NotAHub):
                z2jh.export(spec, name)
            continue
        result = z2jh.export(spec, name)
        merged = assert_chart_accepts(result.values)
        assert merged["hub"]["config"]["JupyterHub"]["authenticator_class"] == \
            spec.hub.auth.pod_class_name(), example
        exported += 1
    assert exported >= 6  # docker, raspberrypi, vagrant (3), vps


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PJ_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed: PJ_UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize("example", ["vps", "raspberrypi"])
def test_golden_exports_of_two_examples(at_root, example):
    [(name, spec)] = cli.inventory_specs(f"inventory/{example}.py")
    result = z2jh.export(spec, name)
    values = z2jh.values_yaml(result.values, name, reveal=False)
    _golden(f"z2jh-{example}.values.yaml", values)
    _golden(f"z2jh-{example}.guide.md", result.guide)
    for secret in spec_secrets(spec):
        assert secret not in values and secret not in result.guide


def spec_secrets(spec: SiteSpec) -> list[str]:
    """Every secret value the spec holds (any component), to look for where none may be."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for key in type(value).model_fields:
                walk(getattr(value, key))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(spec)
    return [s for s in found if s]


def test_vps_maps_what_the_issue_names(at_root):
    [(name, spec)] = cli.inventory_specs("inventory/vps.py")
    values = yaml.safe_load(z2jh.values_yaml(z2jh.export(spec, name).values, name, True))
    config = values["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == \
        "oauthenticator.github.GitHubOAuthenticator"
    assert "LocalAuthenticator" not in config  # no Unix users to make in pods
    assert config["OAuthenticator"]["client_secret"] == "replace-me-from-your-github-oauth-app"
    assert config["GitHubOAuthenticator"]["allowed_organizations"] == ["example-university-ds101"]
    assert config["Authenticator"] == {"allowed_users": ["lecturer-github-name"],
                                       "admin_users": ["lecturer-github-name"],
                                       "allow_all": False}
    assert config["JupyterHub"]["admin_access"] is False
    assert values["hub"]["baseUrl"] == "/" and values["hub"]["db"] == {"type": "sqlite-pvc"}
    assert values["singleuser"]["memory"] == {"limit": "2G", "guarantee": "1G"}
    assert values["singleuser"]["cpu"] == {"limit": 1.0, "guarantee": 0.1}
    assert values["singleuser"]["defaultUrl"] == "/lab"
    assert values["cull"] == {"enabled": True, "timeout": 1800, "every": 300, "maxAge": 0,
                              "users": False, "adminUsers": True}
    assert values["proxy"]["https"] == {
        "enabled": True, "type": "letsencrypt", "hosts": ["hub.example.org"],
        "letsencrypt": {"contactEmail": "lecturer@example.org",
                        "acmeServer": "https://acme-v02.api.letsencrypt.org/directory"}}
    assert "cookieSecret" not in values["hub"] and "secretToken" not in values["proxy"]


# -- generated sites -----------------------------------------------------------------------


def site(auth: str, tls: str, limits: str, culler: dict, **more: Any) -> dict:
    tls_spec, ddns = TLS[tls]
    data = {
        "mode": "hub",
        "tls": tls_spec,
        "hub": {"auth": AUTHS[auth], "spawner": LIMITS[limits], "idle_culler": culler,
                **more.pop("hub", {})},
        "users": {"accounts": [ADMIN], "allow_all": auth.startswith("dummy")},
        **more,
    }
    if ddns:
        data["ddns"] = ddns
    return data


def check_export(data: dict) -> tuple[SiteSpec, z2jh.Export, dict, str]:
    """Export a site: the chart accepts the values, and no secret of the spec shows outside
    the values file. Returns the spec, the export, the merged values and the file's text."""
    spec = build_spec(data)
    result = z2jh.export(spec, "hub1")
    merged = assert_chart_accepts(result.values)
    shown = z2jh.values_yaml(result.values, "hub1", reveal=False) + result.guide + "".join(
        f.line() for f in result.findings)
    for secret in spec_secrets(spec):
        assert secret not in shown
    return spec, result, merged, z2jh.values_yaml(result.values, "hub1", reveal=True)


@pytest.mark.parametrize("limits", sorted(LIMITS))
@pytest.mark.parametrize("tls", sorted(TLS))
@pytest.mark.parametrize("auth", sorted(AUTHS))
def test_every_auth_tls_and_limits_combination_validates(auth, tls, limits):
    for culler in ({"enabled": True, "timeout": 600, "max_age": 86400}, {"enabled": False}):
        spec, result, merged, written = check_export(site(auth, tls, limits, culler))
        config = merged["hub"]["config"]
        assert config["JupyterHub"]["authenticator_class"] == spec.hub.auth.pod_class_name()
        assert merged["cull"]["enabled"] is culler["enabled"]
        if culler["enabled"]:
            assert (merged["cull"]["timeout"], merged["cull"]["maxAge"]) == (600, 86400)
        if limits == "systemd":
            assert merged["singleuser"]["memory"] == {"limit": "512M", "guarantee": "512M"}
            assert merged["singleuser"]["cpu"] == {"limit": 2.0, "guarantee": 0.1}
        else:  # the chart's defaults: no limits
            assert merged["singleuser"]["memory"]["limit"] is None
            assert merged["singleuser"]["cpu"]["limit"] is None
        https = merged["proxy"]["https"]
        if tls.startswith("acme"):
            assert https["type"] == "letsencrypt" and https["hosts"] == list(
                spec.tls.domains)
        elif tls == "self-signed":
            assert not https["enabled"] and merged["proxy"]["service"]["type"] == "ClusterIP"
            assert any(f.field == "tls" for f in result.findings)
        else:
            assert https["type"] == "manual"
        # The hub's own secrets reach the values file (only: check_export); others never.
        assert (SECRET in written) is (auth in ("github", "google", "generic-oauth",
                                                "dummy-password"))
        assert (KEY.splitlines()[1] in written) is (tls == "provided-pem")
        assert DUCKDNS["token"] not in written and ADMIN["password"] not in written


def test_features_without_an_equivalent_are_reported_never_dropped():
    data = site("pam", "provided-files", "none", {"enabled": True},
                firewall={"backend": "none"}, router={"behind_nat": True},
                network={"timeout": 600}, proxy={"port": 8443, "version": "4.6.3"},
                hub={"version": "6.1.1"})
    data["ddns"] = DUCKDNS
    data["tls"] = {**data["tls"], "http_port": 8080}
    _, result, _, _ = check_export(data)
    fields = {f.field for f in result.findings}
    assert {"hub.auth", "hub.auth.admin_groups", "hub.auth.allowed_groups", "users.accounts", "tls.cert_file",
            "tls.key_file", "tls.min_version", "tls.http_port", "firewall", "router",
            "network", "ddns", "proxy.port", "proxy.version", "hub.version"} <= fields
    for finding in result.findings:
        assert f"- `{finding.field}`: {finding.message}" in result.guide
    assert SECRET not in result.guide


@settings(max_examples=60, deadline=None)
@given(
    auth=st.sampled_from(sorted(AUTHS)),
    tls=st.sampled_from(sorted(TLS)),
    mem=st.none() | st.tuples(st.integers(1, 999_999), st.sampled_from(["", "K", "M", "G", "T"])
                              ).map(lambda t: f"{t[0]}{t[1]}"),
    cpu=st.none() | st.floats(0.01, 1024, allow_nan=False),
    culler=st.fixed_dictionaries({"enabled": st.booleans(), "timeout": st.integers(60, 31_536_000),
                                  "every": st.integers(10, 86_400),
                                  "max_age": st.integers(0, 31_536_000)}),
    default_url=st.sampled_from(["/lab", "/tree", "/lab/tree/README.md"]),
    packages=st.lists(st.sampled_from(["numpy", "pandas>=2,<3", "scipy[all]==1.14.1"]),
                      unique=True),
    os_packages=st.lists(st.sampled_from(["libatlas-base-dev", "graphviz"]), unique=True),
    users=st.lists(st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True), max_size=4,
                   unique=True),
)
def test_generated_sites_validate(auth, tls, mem, cpu, culler, default_url, packages,
                                  os_packages, users):
    spawner = {"type": "systemd", "mem_limit": mem, "cpu_limit": cpu} if mem or cpu else \
        {"type": "local"}
    data = site(auth, tls, "none", culler, python={"packages": packages,
                                                   "os_packages": os_packages},
                hub={"default_url": default_url})
    data["hub"]["spawner"] = spawner
    data["users"]["allowed"] = users
    spec, result, merged, _ = check_export(data)
    assert merged["singleuser"]["defaultUrl"] == default_url
    assert merged["hub"]["config"]["Authenticator"]["allowed_users"] == spec.users.allowed_names
    if mem:
        memory = merged["singleuser"]["memory"]
        assert memory["limit"] == (int(mem) if mem.isdigit() else mem)
        assert z2jh._byte_size(str(memory["guarantee"])) <= z2jh._byte_size(mem)
    if cpu:
        assert merged["singleuser"]["cpu"]["guarantee"] <= cpu
    assert ("```dockerfile" in result.guide) is bool(packages or os_packages)
    for package in packages + os_packages:
        assert package in result.guide


# -- the pieces the export relies on -----------------------------------------------------------


def test_every_tls_variant_has_a_mapping():
    union = typing.get_args(SiteSpec.model_fields["tls"].annotation)
    assert len(union) >= 3
    for variant in union:
        # Each variant maps itself: none falls back to the base's "no mapping" finding.
        assert "pod_proxy" in vars(variant), f"{variant.__name__} has no pod_proxy()"


def _models(annotation: Any) -> list[type[BaseModel]]:
    found = [m for a in typing.get_args(annotation) for m in _models(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    return found


def _fields(value: BaseModel | type[BaseModel], prefix: str = "") -> list[str]:
    """Every field path of a spec as built (the variant it holds; list items by their type)."""
    paths = []
    model = value if isinstance(value, type) else type(value)
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        held = None if isinstance(value, type) else getattr(value, name)
        if isinstance(held, BaseModel):
            paths += _fields(held, f"{path}.")
        elif _models(info.annotation):
            for sub in _models(info.annotation):
                paths += _fields(sub, f"{path}.")
        else:
            paths.append(path)
    return paths


def _named(result: z2jh.Export) -> set[str]:
    """Field paths the guide names: in its rows' first column (`a.b`, `a.b = x`, `a.b: x`) and
    as findings."""
    import re

    names = {f.field for f in result.findings}
    for line in result.guide.splitlines():
        if line.startswith("| ") and not line.startswith("| site spec"):
            first = line.split(" | ")[0]
            names |= {m.group(1) for m in re.finditer(r"`([a-z_][a-z0-9_.]*)[`:= ]", first)}
    return names


def _host_only(path: str) -> bool:
    return path.split(".")[0] in z2jh._HOST_ONLY


def test_every_spec_field_is_mapped_or_reported(at_root):
    """Walks every field of every exported site (each auth and TLS variant, limits or none,
    the shipped examples): each is named in the guide — in what carries over, in the "nothing
    to set" row, or as a finding — by its path or an ancestor's (an authenticator maps through
    its own pod_* methods, the culler and spawner as a whole). Components the chart has no
    place for are reported when set (test_features_without_an_equivalent...). A new spec
    field fails here until the export maps or reports it."""
    specs = [spec for _, _, spec in example_specs() if spec.mode == "hub"]
    specs += [build_spec(site(auth, tls, limits, {"enabled": True}))
              for auth in AUTHS for tls in TLS for limits in LIMITS]
    for spec in specs:
        result = z2jh.export(spec, "hub1")
        named = _named(result)
        dropped = [path for path in _fields(spec) if not _host_only(path) and not any(
            path == name or path.startswith(f"{name}.") for name in named)]
        assert not dropped, f"{spec.hub.auth.type}/{spec.tls.type}: not in the guide: {dropped}"


def test_host_only_fields_are_reported():
    data = site("native", "acme", "none", {"enabled": True},
                python={"provider": "source", "optimize": True, "swap_mb": 2048,
                        "keep_swap": True}, proxy={"node": "wheel"}, backup={"keep": 9})
    data["tls"] = {**data["tls"], "preflight": False, "dns_propagation_seconds": 90}
    _, result, _, _ = check_export(data)
    fields = {f.field for f in result.findings}
    assert {"backup.keep", "tls.dns_propagation_seconds"} <= fields
    assert "keeps the last 9 backups" in result.guide
    for name in ("python.provider", "python.optimize", "python.swap_mb", "python.keep_swap",
                 "proxy.node", "tls.preflight"):
        assert f"`{name}`" in result.guide


def test_host_paths_are_the_ones_the_deploy_writes():
    from operations import hub as hub_ops
    from operations import paths
    from pyinfra_jupyter import paths as contracts

    # One home: the components' paths are the installed package's (no copy to keep equal).
    for name in ("PROXY_TOKEN_ENV", "HUB_UNIT", "PROXY_UNIT", "hub_cookie_secret", "STATE"):
        assert getattr(paths, name) is getattr(contracts, name)
    assert z2jh.PROXY_TOKEN_ENV == paths.PROXY_TOKEN_ENV
    assert (z2jh.HUB_UNIT, z2jh.PROXY_UNIT) == (paths.HUB_UNIT, paths.PROXY_UNIT)
    spec = build_spec({"users": {"accounts": [ADMIN]}, "hub": {"state_dir": "/srv/hubstate"}})
    assert repr(z2jh.cookie_secret_file(spec)) in hub_ops.render_config(spec)


def test_a_notebook_site_is_refused():
    spec = build_spec({"mode": "notebook", "notebook": {"instances": [{"password": "pw"}]}})
    with pytest.raises(z2jh.NotAHub, match="only hub sites"):
        z2jh.export(spec, "nb")


def test_the_read_command_and_its_parser_round_trip(tmp_path):
    import subprocess

    cookie, env = tmp_path / "cookie", tmp_path / "env"
    cookie.write_text("ab" * 32 + "\n")
    env.write_text("CONFIGPROXY_AUTH_TOKEN=" + "cd" * 32 + "\n")
    files = {"cookie_secret": str(cookie), "proxy_token": str(env)}
    command = export_cmd.read_command(list(files.values()))
    stdout = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                            check=True).stdout
    found = export_cmd.parse_secrets(stdout, files)
    assert found.cookie_secret.get_secret_value() == "ab" * 32
    assert found.proxy_token.get_secret_value() == "cd" * 32
    env.write_text("OTHER=" + "cd" * 32 + "\n")
    cookie.write_text("not-hex-" + "ab" * 32)
    stdout = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
    with pytest.raises(ValueError) as error:
        export_cmd.parse_secrets(stdout, files)
    assert "ab" * 8 not in str(error.value) and "hex" in str(error.value)
    cookie.unlink()
    stdout = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
    with pytest.raises(ValueError, match="missing"):
        export_cmd.parse_secrets(stdout, files)


# -- the command -------------------------------------------------------------------------------


def write_inventory(tmp_path: Path, hosts: list[tuple[str, dict]]) -> Path:
    # A new name each time: pyinfra caches an inventory's code by file name per process.
    path = tmp_path / f"sites{len(list(tmp_path.glob('sites*.py')))}.py"
    path.write_text(f"sites = {hosts!r}\n")
    return path


def run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["export", "z2jh", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def test_command_writes_0600_values_and_shows_no_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no group_data here: the hosts' own data only
    hub = site("dummy-password", "provided-pem", "systemd", {"enabled": True})
    inventory = write_inventory(tmp_path, [("hub.example.org", hub)])
    out_dir = tmp_path / "out"
    code, output = run(capsys, str(inventory), "-o", str(out_dir))
    assert code == 0, output
    values = out_dir / "hub.example.org.values.yaml"
    guide = out_dir / "hub.example.org.guide.md"
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(values.stat().st_mode) == 0o600
    text = values.read_text()
    assert SECRET in text and KEY.splitlines()[1] in text  # the values need them...
    for secret in (SECRET, KEY.splitlines()[1]):  # ...nothing else shows them
        assert secret not in output and secret not in guide.read_text()
    assert f"hub.example.org: wrote {values} (0600) and {guide}" in output
    assert yaml.safe_load(text)["proxy"]["https"]["manual"]["key"] == KEY


def test_command_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    notebook = {"mode": "notebook", "notebook": {"instances": [{"password": SECRET}]}}
    inventory = write_inventory(tmp_path, [("nb.example.org", notebook)])
    code, output = run(capsys, str(inventory), "-o", str(tmp_path / "out"))
    assert code == 1 and output.count("\n") == 1 and "notebook" in output
    assert not (tmp_path / "out").exists()

    code, output = run(capsys, "no-such.py", "-o", str(tmp_path / "out"))
    assert (code, output) == (1, "no-such.py: no such inventory file\n")

    broken = {"hub": {"auth": {"type": "github", "client_secret": SECRET}}}
    inventory = write_inventory(tmp_path, [("bad.example.org", broken)])
    code, output = run(capsys, str(inventory), "-o", str(tmp_path / "out"))
    assert code == 1 and "bad.example.org: hub.auth.github.client_id: " in output
    assert SECRET not in output

    good = write_inventory(tmp_path, [("hub1", site("native", "acme", "none", {}))])
    code, output = run(capsys, str(good), "-o", str(tmp_path / "out"), "--limit", "hub2")
    assert (code, output) == (1, f"{good}: no host named hub2\n")
    (tmp_path / "file").write_text("")
    code, output = run(capsys, str(good), "-o", str(tmp_path / "file"))
    assert (code, output) == (1, f"{tmp_path / 'file'}: exists and is not a directory\n")


def test_reuse_secrets_reads_the_running_host_over_pyinfra(tmp_path, monkeypatch, capsys):
    """Through pyinfra's @local connector: the real connect / run / parse path, with the
    host's two files placed in tmp_path."""
    monkeypatch.chdir(tmp_path)
    cookie_value, token_value = "5e" * 32, "70" * 32
    cookie, env = tmp_path / "cookie_secret", tmp_path / "proxy-auth.env"
    cookie.write_text(cookie_value + "\n")
    env.write_text(f"CONFIGPROXY_AUTH_TOKEN={token_value}\n")
    monkeypatch.setattr(export_cmd, "secret_files", lambda spec: {
        "cookie_secret": str(cookie), "proxy_token": str(env)})
    inventory = write_inventory(tmp_path, [("@local", site("github", "acme", "none", {}))])
    code, output = run(capsys, str(inventory), "-o", str(tmp_path / "out"), "--reuse-secrets")
    assert code == 0, output
    text = (tmp_path / "out" / "local.values.yaml").read_text()
    values = yaml.safe_load(text)
    assert values["hub"]["cookieSecret"] == cookie_value
    assert values["proxy"]["secretToken"] == token_value
    for secret in (cookie_value, token_value, SECRET):
        assert secret not in output
    assert_chart_accepts(yaml.safe_load(text))
    guide = (tmp_path / "out" / "local.guide.md").read_text()
    assert "read from the running host" in guide and cookie_value not in guide

    cookie.unlink()  # a hub that never ran: refuse, write nothing
    code, output = run(capsys, str(inventory), "-o", str(tmp_path / "new"), "--reuse-secrets")
    assert code == 1 and "is missing or unreadable" in output
    assert not list((tmp_path / "new").glob("*"))
