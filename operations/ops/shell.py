"""Shell snippets every operation shares: quoting, network settings, bounded waits."""

from __future__ import annotations

import shlex

from .. import paths

q = shlex.quote

# Commands that download read the proxy settings (and CA bundle) from the 0600 file the
# network component writes, never from an `export ...` on their command line.
WITH_NETWORK = f"if [ -r {paths.NETWORK_ENV} ]; then set -a; . {paths.NETWORK_ENV}; set +a; fi; "


def bounded(command: str, seconds: int, what: str) -> str:
    """`command` killed after `seconds`; a timeout says STALLED and what it waited on (the
    fleet summary shows that line)."""
    return (f"timeout -k 10 {int(seconds)} {command}; rc=$?; "
            f"if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo {q(f'STALLED: {what}: no answer within {seconds} s')} >&2; fi; "
            "[ $rc -eq 0 ]")
