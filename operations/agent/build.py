"""Build the agent's zipapp: one file for the host, the same bytes for the same sources.

Run on the controller (never shipped itself). Entries are sorted and dated to a fixed time,
so re-uploading an unchanged agent is a no-op for the deploy.
"""

from __future__ import annotations

import io
import zipfile
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "pj_agent"  # the name inside the zipapp
_EPOCH = (2020, 1, 1, 0, 0, 0)
_MAIN = b"import sys\n\nfrom pj_agent.cli import main\n\nsys.exit(main())\n"


def _sources() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in ("build.py", "__main__.py"))


@cache
def zipapp_bytes() -> bytes:
    """`python agent.pyz ...` runs operations/agent/cli.py:main."""
    out = io.BytesIO()
    out.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("__main__.py", _MAIN),
                           *((f"{PACKAGE}/{p.name}", p.read_bytes()) for p in _sources())]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()
