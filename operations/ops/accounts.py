"""Operations on accounts that pyinfra has no equivalent for, and that must not leak.

- `login_password`: set a user's password from the spec without it (or its hash) ever being
  on a command line or in output; the current hash is read by the quiet host facts.
- `host_secret`: a secret made once on the host itself (e.g. the proxy's auth token), so it
  never passes through the controller, pyinfra's output or its diffs.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import shlex

from pydantic import SecretStr
from pyinfra import host
from pyinfra.api import StringCommand, operation

from .converge import upload
from .facts import snapshot_of

# -- sha512-crypt ----------------------------------------------------------------------

_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PERM = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
]


def _b64(value: int, chars: int) -> str:
    out = []
    for _ in range(chars):
        out.append(_B64[value & 0x3F])
        value >>= 6
    return "".join(out)


def sha512_crypt(password: str, salt: str | None = None, rounds: int = 5000) -> str:
    """The `$6$` (sha512-crypt) hash of `password`, as glibc's crypt(3) makes it.

    With `salt` taken from an existing hash (`$6$SALT$...` or `$6$rounds=N$SALT$...`),
    comparing the result to that hash checks the password; the standard library's `crypt`
    module is deprecated (gone in Python 3.13), hence this small implementation.
    """
    if salt is None:
        salt = "".join(secrets.choice(_B64) for _ in range(16))
    custom = False
    if salt.startswith("$6$"):
        parts = salt.split("$")
        if parts[2].startswith("rounds="):
            rounds, salt, custom = int(parts[2][7:]), parts[3], True
        else:
            salt = parts[2]
    rounds = min(max(rounds, 1000), 999_999_999)
    salt = salt[:16]
    p, s = password.encode(), salt.encode()
    b = hashlib.sha512(p + s + p).digest()
    a = hashlib.sha512(p + s + b * (len(p) // 64) + b[: len(p) % 64])
    n = len(p)
    while n:
        a.update(b if n & 1 else p)
        n >>= 1
    c = a.digest()
    dp = hashlib.sha512(p * len(p)).digest()
    pp = (dp * (len(p) // 64 + 1))[: len(p)]
    ds = hashlib.sha512(s * (16 + c[0])).digest()
    ss = (ds * (len(s) // 64 + 1))[: len(s)]
    for i in range(rounds):
        h = hashlib.sha512(pp if i & 1 else c)
        if i % 3:
            h.update(ss)
        if i % 7:
            h.update(pp)
        h.update(c if i & 1 else pp)
        c = h.digest()
    encoded = "".join(_b64((c[x] << 16) | (c[y] << 8) | c[z], 4) for x, y, z in _PERM)
    encoded += _b64(c[63], 2)
    prefix = f"$6$rounds={rounds}$" if custom else "$6$"
    return f"{prefix}{salt}${encoded}"


def password_matches(password: str, hashed: str | None) -> bool:
    """True if `hashed` (from /etc/shadow) is a sha512-crypt hash of `password`."""
    if not hashed or not hashed.startswith("$6$"):
        return False
    return _matches(password, hashed)


@functools.lru_cache(maxsize=256)
def _matches(password: str, hashed: str) -> bool:
    # 5,000 rounds of SHA-512 in Python (~15 ms): pyinfra runs an operation's body twice
    # (planning, then executing), so each host's check would be done twice.
    return secrets.compare_digest(sha512_crypt(password, hashed), hashed)



@operation()
def login_password(user: str, password: SecretStr, current_hash: str | None):
    """
    Set a user's login password; only its sha512-crypt hash is sent, in an uploaded file
    (0600, removed at once), never on a command line.

    + user: the system user
    + password: the password (a SecretStr)
    + current_hash: the user's hash now (from /etc/shadow, via the quiet host facts)

    .. code:: python

        login_password(user="admin", password=SecretStr("..."), current_hash=None)
    """
    clear = password.get_secret_value()
    if password_matches(clear, current_hash):
        host.noop(f"the password of {user} is already set")
        return
    staged = f"/run/.pyinfra-jupyter-passwd-{user}"
    yield StringCommand(f"umask 077 && rm -f -- {staged} && (set -C && : > {staged})")
    yield from upload(f"{user}:{sha512_crypt(clear)}\n", staged)
    yield StringCommand(f"chpasswd -e < {staged}; rc=$?; rm -f -- {staged}; exit $rc")


@operation()
def host_secret(path: str, line: str, user: str = "root", group: str = "root",
                mode: str = "600"):
    """
    Make a random secret on the host once (later runs keep it); fix its owner and mode.

    + path: the file
    + line: its content, where `{token}` becomes 32 random bytes in hex
    + user / group / mode: the file's owner and mode
    """
    live = snapshot_of(host, "paths", path)
    q = shlex.quote
    if live and live["type"] == "regular file" and live["size"] > 0:  # not "regular empty file"
        if (live["user"], live["group"], live["mode"]) == (user, group, str(int(mode))):
            host.noop(f"{path} exists (kept)")
            return
        yield f"chown -h {q(user)}:{q(group)} {q(path)} && chmod {mode} {q(path)}"
        return
    prefix, _, suffix = line.partition("{token}")
    new = q(path + ".new")
    yield (
        f"umask 077 && rm -f -- {new} && "
        f"t=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n') && "
        f"printf '%s%s%s\\n' {q(prefix)} \"$t\" {q(suffix)} > {new} && "
        f"chown {q(user)}:{q(group)} {new} && chmod {mode} {new} && mv -fT -- {new} {q(path)}"
    )
