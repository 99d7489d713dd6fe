"""Every string the spec carries, fed hostile values, through the real renderers and commands.

For each string field of a set of example sites that together use every variant (each
authenticator, TLS type, DDNS provider, both modes), each hostile value is put into the
field. The spec must either refuse it with a line naming the field, or accept it and then
everything the deploy derives from it must keep its shape:

- units and drop-ins keep their lines (a value never adds a directive);
- Python configs keep their syntax tree (a value stays one string literal);
- JSON configs parse; notes and firewall rules keep their lines;
- shell commands (checks, steps, service checks) keep their words (`shlex`);
- every path an item touches stays in a safe alphabet, with no `..`.

New fields are covered without touching this file: the fields are found by walking the
examples, and a field that the examples do not reach fails `test_every_field_is_reached`.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
from dataclasses import replace

import pytest
from pydantic import SecretStr

from operations import (
    ddns,
    firewall,
    hub,
    network,
    notebook,
    notes,
    paths,
    proxy,
    python,
    selinux,
    tls,
    users,
)
from operations.firewall import firewalld, iptables, nftables, ufw
from operations.firewall.rules import RulesError
from operations.firewall.rules import build as build_rules
from operations.items import Absent, Directory, File, Packages, Service, Step, User, Venv
from operations.ops import converge
from pyinfra_jupyter.spec import SpecError, build_spec
from pyinfra_jupyter.spec.site import SiteSpec
from tests.support import make_site, platform, self_signed_pem

CERT, KEY = self_signed_pem()

HOSTILE = [
    "\n", "\r", "\x00", "\t", "'", '"', "$(id)", "`id`", ";", "#", "%", " ", "..", "\\",
    "\U0001f600", "\u2028", "\nExecStartPre=+/bin/sh -c id", "'; touch /tmp/pwned; '",
    "/../../etc/shadow", "-rf", "{path}", "{{ 7*7 }}",
]

ADMIN = {"name": "admin", "admin": True, "groups": ["staff"], "password": "Admin-pw-1"}
OAUTH = {"client_id": "client-1", "client_secret": "oauth-secret",
         "callback_url": "https://hub.example.org/hub/oauth_callback"}
NETWORK = {"http_proxy": "http://user:pw@proxy.example.org:3128",
           "https_proxy": "http://proxy.example.org:3128", "no_proxy": ["localhost", ".lan"],
           "ca_certificates": [CERT]}
FIREWALL = {"ssh_ports": [22], "ssh_sources": ["0.0.0.0/0", "::/0"],
            "allow": [{"port": 9100, "sources": ["10.0.0.0/8"], "comment": "node-exporter"}]}

EXAMPLES = [
    {"mode": "hub", "network": NETWORK, "firewall": FIREWALL,
     "tls": {"type": "self-signed", "names": ["hub.lan", "10.0.0.5"]},
     "users": {"accounts": [ADMIN], "allowed": ["bob"], "admins": ["admin"]},
     "hub": {"auth": {"type": "pam", "admin_groups": ["wheel"], "allowed_groups": ["students"]},
             "default_url": "/lab", "prefix": "/opt/jupyterhub", "state_dir": "/var/lib/jupyterhub"},
     "python": {"packages": ["numpy>=1.26"], "os_packages": ["libatlas-base-dev"]},
     "router": {"behind_nat": True, "lan_address": "192.168.1.50"}},
    {"mode": "hub", "users": {"allowed": ["octocat"]},
     "hub": {"auth": {"type": "github", **OAUTH, "allowed_organizations": ["my-org"]},
             "spawner": {"type": "systemd", "mem_limit": "2G", "cpu_limit": 1.5}},
     "tls": {"type": "acme", "email": "admin@example.org", "domains": ["hub.example.org"],
             "directory": "https://acme.example.org/dir", "directory_ca": CERT}},
    {"mode": "hub", "users": {"allowed": ["someone@example.org"]},
     "hub": {"auth": {"type": "google", **OAUTH, "hosted_domain": ["example.org"]}},
     "tls": {"type": "provided", "cert_pem": CERT, "key_pem": KEY}},
    {"mode": "hub", "users": {"allowed": ["alice"]},
     "hub": {"auth": {"type": "generic-oauth", **OAUTH,
                      "authorize_url": "https://sso.example.org/auth",
                      "token_url": "https://sso.example.org/token",
                      "userdata_url": "https://sso.example.org/userinfo",
                      "username_claim": "preferred_username", "scope": ["openid", "email"]}},
     "tls": {"type": "provided", "cert_file": "/srv/tls/chain.pem", "key_file": "/srv/tls/key.pem"}},
    {"mode": "hub", "users": {"allowed": ["alice"]},
     "hub": {"auth": {"type": "ldap", "server_address": "ldap.example.org",
                      "bind_dn_template": ["uid={username},ou=people,dc=example,dc=org"],
                      "allowed_groups": ["cn=students,ou=groups,dc=example,dc=org"]}},
     "tls": {"type": "acme", "email": "a@ourfamily.duckdns.org",
             "domains": ["ourfamily.duckdns.org"], "challenge": "dns-01"},
     "ddns": {"provider": "duckdns", "domain": "ourfamily.duckdns.org", "token": "duck-token",
              "ip_echo_url": "https://ip.example.org/", "address": "203.0.113.7"}},
    {"mode": "hub", "users": {"allow_all": True}, "hub": {"auth": {"type": "dummy",
                                                                   "password": "dummy-pw"}},
     "ddns": {"provider": "cloudflare", "zone": "example.org", "record": "hub.example.org",
              "api_token": "cf-token", "api_url": "https://api.example.org/client/v4"}},
    {"mode": "hub", "users": {"allowed": ["alice"]}, "hub": {"auth": {"type": "native"},
                                                            "version": "6.1.1",
                                                            "jupyterlab_version": "4.6.6"},
     "proxy": {"ip": "10.0.0.5", "version": "4.6.3"}, "python": {"min_version": "3.10"},
     "ddns": {"provider": "dynv6", "zone": "home.example.org", "token": "v6-token",
              "api_url": "https://dynv6.example.org/api"}},
    {"mode": "hub", "users": {"allowed": ["alice"]},
     "ddns": {"provider": "dyndns2", "server": "dynupdate.no-ip.com",
              "hostname": "me.ddns.net", "username": "dyn-user-x", "password": "noip-pw"}},
    {"mode": "hub", "users": {"allowed": ["alice"]},
     "ddns": {"provider": "custom", "hostname": "me.example.org", "token": "custom-token",
              "url_template": "https://dyn.example.org/u?h={hostname}&ip={ip}&k={token}"}},
    {"mode": "notebook", "tls": {"type": "self-signed", "http_port": None},
     "users": {"accounts": [{"name": "carol", "password_file": "~/.config/pj/carol"}]},
     "notebook": {"prefix": "/opt/jupyter", "jupyterlab_version": "4.6.6", "instances": [
         {"name": "alice", "user": "alice", "port": 8100, "ip": "0.0.0.0",
          "root_dir": "/srv/notebooks/alice", "base_url": "/alice/", "password": "Alice-pw-1",
          "packages": ["pandas==2.2.3"]},
         {"name": "bob", "user": "bob", "port": 9999, "ip": "10.0.0.5", "password_hash":
          "argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"},
     ]}},
]

COMPONENTS = [network, python, users, tls, proxy, hub, notebook, notes, ddns, selinux]
# SELinux on, so its steps (semanage, restorecon) are derived too.
FACTS = {"selinux": "Enforcing", "selinux_http_ports": "80,443"}
UNIT_SUFFIXES = (".service", ".timer", ".conf")
SAFE_PATH = re.compile(r"(/[A-Za-z0-9._@+-]+)+")


def _leaves(data, path=()):
    """(path, value) of every string in the data, lists included."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, (*path, index))
    elif isinstance(data, str):
        yield path, data


def _set(data, path, value):
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _cases():
    for number, example in enumerate(EXAMPLES):
        for path, benign in _leaves(example):
            if path == ("mode",) or path[-1] in ("type", "provider"):
                continue  # discriminators: an unknown value is simply refused
            for hostile in HOSTILE:
                yield pytest.param(number, path, benign, hostile,
                                   id=f"{number}-{'.'.join(map(str, path))}-{hostile!r}")


def _python_shape(text: str) -> str:
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = "S"
    return ast.dump(tree)


def _secret_text(item: File) -> str:
    return item.data.decode()


def _json_shape(value):
    """The JSON document with every string (and so every value) replaced by one marker."""
    if isinstance(value, dict):
        return {k: _json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_shape(v) for v in value]
    return "S" if isinstance(value, str) else value


def _unit_shape(text: str) -> list[str]:
    shape = []
    for line in text.splitlines():
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]", line), repr(line)
        if line.startswith("[") or not line or line.startswith("#"):
            shape.append(line if line.startswith("[") else "")
        else:
            key, sep, _ = line.partition("=")
            shape.append(key + sep if sep else "(continued)")
    return shape


def derived(spec: SiteSpec) -> dict:
    """Everything the deploy derives from a spec, by kind, for shape comparisons."""
    site = make_site({}, spec=spec, facts=FACTS,
                     passwords={a.name: "pw" for a in spec.users.accounts})
    out: dict = {"units": {}, "python": {}, "json": {}, "text": {}, "commands": [], "paths": [],
                 "names": [], "items": []}
    for component in COMPONENTS:
        if not component.wanted(spec):
            continue
        for item in component.items(site):
            out["items"].append(item)
            if isinstance(item, File | Directory | Absent | Venv):
                out["paths"].append(item.path)
            if isinstance(item, File):
                text = item.data.decode(errors="replace")
                if item.path.endswith(UNIT_SUFFIXES):
                    out["units"][item.path] = text
                elif item.path.endswith(".py"):
                    out["python"][item.path] = text
                elif item.path.endswith(".json"):  # secret ones too (secrets.json)
                    out["json"][item.path] = _secret_text(item)
                elif not item.secret and not item.path.endswith((".pyz", ".pem", ".crt")):
                    out["text"][item.path] = text
                if item.check:
                    out["commands"].append(item.check)
            elif isinstance(item, Service) and item.check:
                out["commands"].append(item.check)
            elif isinstance(item, Step) and "command" in item.kwargs:
                out["commands"].append(item.kwargs["command"])
            elif isinstance(item, User):
                out["names"].append(item.name)
                out["paths"] += [item.home] if item.home else []
    try:
        rules = build_rules(spec, ssh_port=22)
    except RulesError:
        rules = None
    if rules is not None:
        out["text"]["nft"] = nftables.render_table(rules)
        out["text"]["iptables"] = "\n".join(iptables.render_tables(rules))
        out["text"]["ufw"] = "\n".join(ufw.desired_rules(rules))
        out["text"]["firewalld"] = json.dumps(firewalld.desired_zone(rules))
    return out


MARK = "\x1aVALUE\x1a"


def _marked(text: str, value: str) -> str:
    return text.replace(value, MARK) if value else text


def assert_same_shape(base: dict, hostile: dict, value: str, benign: str) -> None:
    """`hostile` (derived with `value`) has the shape of `base` (derived with `benign`):
    lines and words are the same once each value is replaced by one marker."""
    assert base["units"].keys() == hostile["units"].keys()
    for path, text in hostile["units"].items():
        assert _unit_shape(text) == _unit_shape(base["units"][path]), path
        assert _marked(text, value) == _marked(base["units"][path], benign), path
    for path, text in hostile["python"].items():
        assert _python_shape(text) == _python_shape(base["python"][path]), path
    assert base["json"].keys() == hostile["json"].keys()
    for path, text in hostile["json"].items():
        assert _json_shape(json.loads(text)) == _json_shape(json.loads(base["json"][path])), path
    for key, text in hostile["text"].items():
        if key in base["text"]:
            assert len(text.splitlines()) == len(base["text"][key].splitlines()), key
            if key != "iptables":  # its comments are rewritten into a bare tag (iptables._tag)
                assert _marked(text, value) == _marked(base["text"][key], benign), key
    assert len(hostile["commands"]) == len(base["commands"])
    for cmd, ref in zip(hostile["commands"], base["commands"], strict=True):
        assert ([_marked(w, value) for w in shlex.split(cmd)]
                == [_marked(w, benign) for w in shlex.split(ref)]), cmd
    for path in hostile["paths"]:
        assert SAFE_PATH.fullmatch(path) and "/../" not in path + "/", path
    for name in hostile["names"]:
        assert re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name), name


@pytest.fixture(autouse=True)
def _no_zipapp(monkeypatch):
    monkeypatch.setattr(tls, "agent_zipapp", lambda: b"zipapp")


_BASE: dict[int, dict] = {}


def _base(number: int) -> dict:
    if number not in _BASE:
        _BASE[number] = derived(build_spec(EXAMPLES[number]))
    return _BASE[number]


@pytest.mark.parametrize(("number", "path", "benign", "hostile"), list(_cases()))
def test_hostile_value_is_refused_or_kept_as_data(number, path, benign, hostile):
    value = hostile if hostile in ("..", "-rf", "/../../etc/shadow") else f"{benign}{hostile}"
    data = _set(EXAMPLES[number], path, value)
    try:
        spec = build_spec(data)
    except SpecError as exc:
        dotted = ".".join(str(p) for p in path)
        field = str(path[-1]) if not isinstance(path[-1], int) else str(path[-2])
        assert any(field in problem.split(":")[0] or problem.startswith(dotted)
                   for problem in exc.problems), (dotted, exc.problems)
        for problem in exc.problems:
            assert "\n" not in problem and "\r" not in problem and "\x00" not in problem
        return
    assert_same_shape(_base(number), derived(spec), value, benign)


def test_every_field_is_reached():
    """Each string field of the spec (by model and name) appears in some example, so a new
    field cannot dodge this test."""
    from pydantic import BaseModel

    def string_fields(model: type[BaseModel], seen: set) -> set[tuple[str, str]]:
        if model in seen:
            return set()
        seen.add(model)
        found = set()
        for name, field in model.model_fields.items():
            text = repr(field.annotation)
            if ("str" in text or "SecretStr" in text) and name not in ("type", "provider", "mode"):
                found.add((_owner(model, name), name))
            for sub in _models_in(field.annotation):
                found |= string_fields(sub, seen)
        return found

    reached = set()
    for example in EXAMPLES:
        spec = build_spec(example)
        reached |= _set_fields(spec)
    missing = string_fields(SiteSpec, set()) - reached
    assert not missing, f"add these fields to an example: {sorted(missing)}"


def _owner(model, name: str) -> str:
    """The class that declares field `name` (variants share their base's fields)."""
    return next(c.__name__ for c in reversed(model.__mro__)
                if name in c.__dict__.get("__annotations__", {}))


def _models_in(annotation):
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _set_fields(model) -> set[tuple[str, str]]:
    from pydantic import BaseModel

    found = set()
    for name in model.model_fields_set:
        value = getattr(model, name)
        found.add((_owner(type(model), name), name))
        for sub in value if isinstance(value, list) else [value]:
            if isinstance(sub, BaseModel):
                found |= _set_fields(sub)
    return found


def test_secrets_never_reach_what_is_shown():
    """No secret of any example appears in a non-secret file, a command or an item label."""
    secrets = ["Admin-pw-1", "oauth-secret", "duck-token", "cf-token", "v6-token", "noip-pw",
               "custom-token", "dummy-pw", "Alice-pw-1", "user:pw@", KEY.splitlines()[1]]
    for example in EXAMPLES:
        spec = build_spec(example)
        site = make_site({}, spec=spec, passwords={a.name: "Admin-pw-1"
                                                   for a in spec.users.accounts})
        for component in COMPONENTS:
            if not component.wanted(spec):
                continue
            for item in component.items(site):
                shown = [getattr(item, "label", ""), getattr(item, "check", "") or ""]
                if isinstance(item, File) and not item.secret:
                    shown.append(item.data.decode(errors="replace"))
                if isinstance(item, Step):
                    shown += [str(v) for v in item.kwargs.values()
                              if not isinstance(v, SecretStr)]
                for secret in secrets:
                    assert not any(secret in text for text in shown), (secret, item)
    _ = firewall  # the firewall's own rendering is covered by derived()


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_rendered_units_pass_systemd_analyze(number, tmp_path):
    """systemd's own parser reads every unit of every example without a complaint about a
    line (an unknown key, a bad value, a line without '=')."""
    assert_systemd_reads(derived(build_spec(EXAMPLES[number]))["units"], tmp_path)


def assert_systemd_reads(units: dict[str, str], tmp_path) -> None:
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    written = []
    for path, text in units.items():
        name = path.rsplit("/", 2)
        if path.endswith(".conf"):  # a drop-in: check it inside its unit
            target = tmp_path / name[-2].removesuffix(".d").replace("@", "@x")
            body = units.get(f"/etc/systemd/system/{name[-2].removesuffix('.d').split('@')[0]}@.service", "")
            target.write_text(body + "\n" + text)
        else:
            target = tmp_path / name[-1].replace("@.", "@x.")
            target.write_text(text)
        written.append(str(target))
    result = subprocess.run([analyze, "verify", "--man=no", *written], capture_output=True,
                            text=True, timeout=120)
    problems = [line for line in result.stderr.splitlines()
                if re.match(rf"{re.escape(str(tmp_path))}/[^:]+:\d+:", line)]
    assert not problems, "\n".join(problems)


# -- hostile values the spec accepts, all at once, through units and command builders ------

# Longest and oddest values, tried on every field besides HOSTILE's.
# PAD32 makes the value 32 characters long (the longest user name).
PAD32 = "\x1aPAD32"
ODD = ["Zo\u00eb-\u00fcn\u00ef", "\U0001f600", "x" * 40, PAD32, "a.b_c-d+e", "%41", "%%",
       "@x", "+x"]


def _odd_value(benign: str, odd: str) -> str:
    if odd == PAD32:
        return benign + "a" * (32 - len(benign))
    return odd if odd in ("..", "-rf", "/../../etc/shadow") else f"{benign}{odd}"


_ODD: dict[int, tuple[dict, list[tuple[tuple, str]]]] = {}


def odd_example(number: int) -> tuple[dict, list[tuple[tuple, str]]]:
    """EXAMPLES[number] with, in each string field, the first hostile or odd value the spec
    accepts (greedily, so they are all in at once), and the (path, value) pairs put in."""
    if number not in _ODD:
        data, changed = copy.deepcopy(EXAMPLES[number]), []
        for path, benign in list(_leaves(EXAMPLES[number])):
            if path == ("mode",) or path[-1] in ("type", "provider"):
                continue
            for odd in [*ODD, *HOSTILE]:
                candidate = _set(data, path, _odd_value(benign, odd))
                try:
                    build_spec(candidate)
                except SpecError:
                    continue
                data = candidate
                changed.append((path, _odd_value(benign, odd)))
                break
        _ODD[number] = (data, changed)
    return _ODD[number]


def test_odd_values_are_accepted_somewhere():
    """The odd examples do differ from the plain ones (else the tests below prove nothing)."""
    changed = [c for n in range(len(EXAMPLES)) for c in odd_example(n)[1]]
    assert len(changed) > 50
    assert any("\u00eb" in value or "\U0001f600" in value for _, value in changed)
    assert any(len(value) >= 40 for _, value in changed)
    assert any(path[-1] == "user" and len(value) == 32 for path, value in changed)


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_units_of_accepted_hostile_values_pass_systemd_analyze(number, tmp_path):
    data, _ = odd_example(number)
    units = derived(build_spec(data))["units"]
    assert units.keys() == _base(number)["units"].keys()
    assert_systemd_reads(units, tmp_path)


class FakeHost:
    """What converge's and the firewall's operations ask of pyinfra's host."""

    name = "host1"
    print_prefix = "[host1] "

    def __init__(self, fact=None):
        self.fact, self.noops = fact, []
        self.current_op_global_arguments: dict = {}

    def get_fact(self, cls, **kwargs):
        return self.fact

    def noop(self, text):
        self.noops.append(text)


def words(command: str) -> list[str]:
    """The shell words of `command`, operators apart, and those of every `sh -c SCRIPT`."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found = list(lexer)
    for i, word in enumerate(found[:-2]):
        if word == "sh" and found[i + 1] == "-c":
            found += words(found[i + 2])
    return found


def run_op(op, monkeypatch, *args, snapshot=None, fact=None, installed=()) -> list[str]:
    fake = FakeHost(fact)
    for module in (converge, ufw, firewalld):
        monkeypatch.setattr(module, "host", fake)
    monkeypatch.setattr(converge, "snapshot_of", lambda host, section, key: snapshot)
    monkeypatch.setattr(converge, "packages_state", lambda host, manager, names: {
        "installed": list(installed), "lists_age": None})
    return [str(c) for c in op._inner(*args)]


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_command_builders_keep_accepted_hostile_values_one_word(number, monkeypatch):
    """useradd/usermod, `runuser ... sh -c`, mkdir/chown and package installs: every value
    the spec let through is one shell word of the command (in the script of `sh -c` too)."""
    data, _ = odd_example(number)
    spec = build_spec(data)
    items = derived(spec)["items"]
    checked = 0
    for item in items:
        if isinstance(item, User):
            [add] = run_op(converge.user, monkeypatch, item)
            expected = [item.comment, item.shell, item.name, *([item.home] if item.home else []),
                        *([",".join(item.groups)] if item.groups else [])]
            assert all(value in words(add) for value in expected), add
            live = {"groups": [], "shell": "/bin/false"}
            for cmd in run_op(converge.user, monkeypatch, replace(item, manage_login=True),
                              snapshot=live):
                assert item.name in words(cmd), cmd
            checked += 1
        elif isinstance(item, Directory):
            for cmd in run_op(converge.directory, monkeypatch, item):
                assert item.path in words(cmd), cmd
                if item.as_user:
                    assert words(cmd)[:7] == ["cd", "/", "&&", "runuser", "-u", item.as_user,
                                              "--"], cmd
                else:
                    assert cmd.startswith("mkdir") or f"{item.user}:{item.group}" in words(cmd)
            checked += 1
        elif isinstance(item, Packages):
            for family in (platform("debian12").family, platform("centos7").family):
                [cmd] = run_op(converge.packages, monkeypatch, item, family)
                assert all(name in words(cmd) for name in item.names), cmd
            checked += 1
    assert checked


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_firewall_command_lines_keep_accepted_hostile_values_one_word(number, monkeypatch):
    data, _ = odd_example(number)
    rules = build_rules(build_spec(data), ssh_port=22)
    wanted = ufw.desired_rules(rules)
    fresh = {"active": True, "ipv6": True, "input_policy": "DROP", "rules": []}
    added = run_op(ufw.rules, monkeypatch, wanted, fact=fresh)
    assert [words(cmd) for cmd in added] == [
        ["ufw", *rule.split(" "), "comment", ufw.COMMENT] for rule in wanted]
    for allow in rules.sourced():
        assert any(allow.source in words(cmd) for cmd in added), allow
    zone = firewalld.desired_zone(rules)
    empty = {"services": [], "ports": [], "rich_rules": []}
    for state in (None, {"zone": "public", "permanent": empty, "runtime": empty}):
        commands = run_op(firewalld.zone, monkeypatch, zone["services"], zone["ports"],
                          zone["rich_rules"], fact=state)
        flags = [w for cmd in commands for w in words(cmd) if w.startswith("--add-")]
        assert sorted(flags) == sorted(
            [f"--add-service={v}" for v in zone["services"]]
            + [f"--add-port={v}" for v in zone["ports"]]
            + [f"--add-rich-rule={v}" for v in zone["rich_rules"]])


# Credentials with what a shell, systemd or apt would read specially (%-encoded where a URL
# cannot hold the character: a quote, '#', a space).
PROXY_PASSWORDS = ["p$HOME", "a;b&c(d)!e*f", "%22q%22%27%23x%20y", "$(id)", "a%0Ab", "p=w,x+~"]


@pytest.mark.parametrize("password", PROXY_PASSWORDS)
def test_secret_files_read_back_the_hostile_proxy_credential(password, tmp_path):
    """network.env (sh and systemd read it), apt's proxy config and the hub's secrets.json
    give back exactly the values put in."""
    import subprocess

    url = f"http://us$er:{password}@proxy.example.org:3128"
    data = {**EXAMPLES[1], "network": {"http_proxy": url, "https_proxy": url}}
    data["hub"] = {**data["hub"], "auth": {**data["hub"]["auth"],
                                           "client_secret": f"s'\"#$ {password}"}}
    spec = build_spec(data)
    files = {i.path: i.data.decode() for i in derived(spec)["items"] if isinstance(i, File)}
    env_text = files[paths.NETWORK_ENV]
    (tmp_path / "network.env").write_text(env_text)
    read = subprocess.run(["sh", "-c", 'set -a; . "$0"; printf %s "$http_proxy"',
                           str(tmp_path / "network.env")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, check=True)
    assert read.stdout == url
    for line in env_text.splitlines():  # systemd's EnvironmentFile= reads KEY='...' literally
        assert re.fullmatch(r"[A-Za-z_]+='[^'\\]*'", line), line
    apt = files[platform("debian12").family.proxy_conf]
    (tmp_path / "apt.conf").write_text(apt)
    dumped = subprocess.run(["apt-config", "-c", str(tmp_path / "apt.conf"), "shell", "P",
                             "Acquire::http::Proxy"], capture_output=True, text=True,
                            check=True)
    assert shlex.split(dumped.stdout.strip().removeprefix("P=")) == [url]
    secrets = json.loads(files[hub.SECRETS])
    assert f"s'\"#$ {password}" in secrets.values()
