"""`pyinfra-jupyter export z2jh INVENTORY -o DIR`: carry hub sites to Kubernetes.

Each hub host's spec is built exactly as `check` builds it (cli.inventory_specs), mapped by
a pure exporter (z2jh.py) and written to DIR: `<host>.values.yaml` (0600: it may hold
secrets) and `<host>.guide.md`. What the target cannot express is printed as a WARN line
and listed in the guide.

With `--reuse-secrets` the running host's cookie secret and proxy token are read over the
inventory's own SSH settings (pyinfra's connectors, as `verify` does), so logins survive
the move. Secret values only ever reach the values file: never stdout, stderr or an error
message.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

from pydantic import SecretStr

from ..spec import SiteSpec
from . import z2jh


def export_inventory(inventory: str, output: str, limit: list[str] | None = None,
                     reuse_secrets: bool = False, out=None) -> int:
    """Write each hub host's export into `output`; print one line per file and finding."""
    from ..cli import inventory_specs

    out = out or sys.stdout  # looked up now: tests capture it

    hosts = inventory_specs(inventory)
    if isinstance(hosts, str):
        print(f"{inventory}: {hosts}", file=out)
        return 1
    if limit:
        unknown = sorted(set(limit) - {name for name, _ in hosts})
        if unknown:
            print(f"{inventory}: no host named {', '.join(unknown)}", file=out)
            return 1
        hosts = [(name, spec) for name, spec in hosts if name in limit]
    if not hosts:
        print(f"{inventory}: no hosts", file=out)
        return 1
    failed = 0
    ready: dict[str, SiteSpec] = {}
    for name, spec in hosts:
        if isinstance(spec, list):
            failed += 1
            for problem in spec:
                print(f"{name}: {problem}", file=out)
        elif spec.mode != "hub":
            failed += 1
            print(f"{name}: not exported: mode 'notebook' is a notebook server, and Zero to "
                  "JupyterHub runs a JupyterHub (export hub sites only)", file=out)
        else:
            ready[name] = spec
    names = [z2jh.safe_name(name) for name in ready]
    if len(set(names)) < len(names):
        print(f"{inventory}: two hosts would share a file name in {output}; export them one "
              "at a time with --limit", file=out)
        return 1
    secrets: dict[str, z2jh.HostSecrets | str] = {}
    if reuse_secrets and ready:
        secrets = read_host_secrets(inventory, ready)
    if ready:
        problem = _output_dir(Path(output))
        if problem:
            print(f"{output}: {problem}", file=out)
            return 1
    for name, spec in ready.items():
        host_secrets = secrets.get(name)
        if isinstance(host_secrets, str):
            failed += 1
            print(f"{name}: cannot reuse the site's secrets: {host_secrets}; nothing written",
                  file=out)
            continue
        result = z2jh.export(spec, name, host_secrets)
        base = Path(output) / z2jh.safe_name(name)
        values = base.with_name(base.name + ".values.yaml")
        guide = base.with_name(base.name + ".guide.md")
        _write(values, z2jh.values_yaml(result.values, name, reveal=True), 0o600)
        _write(guide, result.guide, 0o644)
        for finding in result.findings:
            print(f"{name}: WARN not carried over: {finding.line()}", file=out)
        print(f"{name}: wrote {values} (0600) and {guide}"
              + (f"; {len(result.findings)} setting(s) not carried over, see the guide"
                 if result.findings else ""), file=out)
    return 1 if failed else 0


def _output_dir(path: Path) -> str | None:
    """Make DIR 0700 when new (the values hold secrets); a reason when it cannot be used."""
    try:
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # whatever the umask
    except FileExistsError:
        if not path.is_dir():
            return "exists and is not a directory"
    except OSError as exc:
        return f"cannot create it: {exc.strerror}"
    return None


def _write(path: Path, text: str, mode: int) -> None:
    """Replace `path` atomically with a file that has `mode` from its first byte."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- secrets of the running host ---------------------------------------------------------------


def secret_files(spec: SiteSpec) -> dict[str, str]:
    return {"cookie_secret": z2jh.cookie_secret_file(spec), "proxy_token": z2jh.PROXY_TOKEN_ENV}


def read_command(paths: list[str]) -> str:
    """One shell command printing `file PATH BASE64` or `missing PATH` per path: the values
    reach our parser only, never a terminal (base64 keeps any content on one line)."""
    parts = []
    for path in paths:
        q = shlex.quote(path)
        parts.append(f"if [ -f {q} ]; then printf 'file %s ' {q}; base64 < {q} | tr -d '\\n'; "
                     f"echo; else printf 'missing %s\\n' {q}; fi")
    return "; ".join(parts)


def parse_secrets(stdout: str, files: dict[str, str]) -> z2jh.HostSecrets:
    """The host's secrets from read_command's output; ValueError (naming files, never
    values) when one is missing or not in the format the site writes."""
    found: dict[str, bytes] = {}
    for line in stdout.splitlines():
        kind, _, rest = line.partition(" ")
        path, _, data = rest.partition(" ")
        if kind == "file":
            try:
                found[path] = base64.b64decode(data, validate=True)
            except ValueError:
                raise ValueError(f"{path}: the host's answer was garbled") from None
    for path in files.values():
        if path not in found:
            raise ValueError(f"{path} is missing or unreadable (has the hub run there?)")
    cookie_path, token_path = files["cookie_secret"], files["proxy_token"]
    cookie = found[cookie_path].decode("ascii", "replace").strip()
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){16,}", cookie):
        raise ValueError(f"{cookie_path} does not hold a hex secret (JupyterHub's format)")
    tokens = [line.removeprefix("CONFIGPROXY_AUTH_TOKEN=").strip()
              for line in found[token_path].decode("ascii", "replace").splitlines()
              if line.startswith("CONFIGPROXY_AUTH_TOKEN=")]
    if len(tokens) != 1 or not re.fullmatch(r"[!-~]{16,}", tokens[0]):
        raise ValueError(f"{token_path} has no CONFIGPROXY_AUTH_TOKEN=... line")
    return z2jh.HostSecrets(SecretStr(cookie), SecretStr(tokens[0]))


def read_host_secrets(inventory: str, specs: dict[str, SiteSpec]
                      ) -> dict[str, z2jh.HostSecrets | str]:
    """Each host's secrets, or one line why not, over the inventory's SSH settings."""
    from pyinfra.api import StringCommand
    from pyinfra.context import ctx_host, ctx_state

    from ..cli import InventoryError, connect_inventory, sudo_arguments

    try:
        state, built = connect_inventory(inventory, list(specs))
    except InventoryError as exc:
        return dict.fromkeys(specs, str(exc))
    results: dict[str, z2jh.HostSecrets | str] = {}
    for host in built:
        if host.name not in specs:
            continue
        if not host.connected:
            results[host.name] = "cannot connect with the inventory's settings"
            continue
        files = secret_files(specs[host.name])
        sudo = sudo_arguments(host)
        with ctx_state.use(state), ctx_host.use(host):
            ran, output = host.run_shell_command(
                StringCommand(read_command(list(files.values()))),
                print_output=False, print_input=False, **sudo)
        host.disconnect()
        if not ran:
            # stderr only: the secrets travel on stdout.
            results[host.name] = ("reading them failed: "
                                  + " ".join(output.stderr_lines)[-300:]).strip()
            continue
        try:
            results[host.name] = parse_secrets("\n".join(output.stdout_lines), files)
        except ValueError as exc:
            results[host.name] = str(exc)
    for name in specs:
        results.setdefault(name, "not in the inventory pyinfra loaded")
    return results
