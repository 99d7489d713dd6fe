"""docs/reliability.md is the catalogue in tests/lab/test_reliability.py, kept current:
PJ_UPDATE_GOLDEN=1 rewrites it after the catalogue changed."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"


def _catalogue():
    sys.path.insert(0, str(REPO / "tests" / "lab"))
    try:
        spec = importlib.util.spec_from_file_location(
            "reliability_catalogue", REPO / "tests" / "lab" / "test_reliability.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "tests" / "lab"))
    return module


def render(module) -> str:
    lines = [
        "# Reliability: drift and faults",
        "",
        "Generated from `tests/lab/test_reliability.py` (do not edit by hand: "
        "`PJ_UPDATE_GOLDEN=1 pytest tests/unit/test_reliability_doc.py`).",
        "",
        "Every drift scenario damages a converged lab host (a hub site, or a notebook site "
        "with one instance) by hand, re-runs the deploy (which must report a change), checks "
        "the host is back (the scenario's check, every service active, our firewall table "
        "loaded, HTTPS answering from outside) and that a third run changes nothing. Around "
        "each one what a deploy must never lose is compared: on the hub, the user's home and "
        "notebook, the hub database (its file and its users) and the cookie secret; on the "
        "notebook site, the user's home and notebook and the password's hash (never "
        "re-hashed).",
        "",
        "`make test` runs the scenarios marked *quick*; `make test-reliability` runs all.",
        "",
        "## Drift",
        "",
        "| site | scenario | damage (as root on the host) | back when | in `make test` |",
        "|---|---|---|---|---|",
    ]
    def cell(text: str) -> str:
        return "`" + text.replace("|", "\\|") + "`"

    for s in module.SCENARIOS:
        damage = s.damage if len(s.damage) < 400 else s.damage[:120] + " …"
        lines.append(f"| {s.mode} | {s.name} | {cell(damage)} | {cell(s.check)} | "
                     f"{'quick' if s.quick else '—'} |")
    lines += ["", "## Faults", "",
              "Each on the converged hub host, each ending with the hub serving and a later "
              "run changing nothing, with nothing lost.", "",
              "| fault | expected | in `make test` |", "|---|---|---|"]
    lines += [f"| {f.name} | {f.expected} | {'quick' if f.quick else '—'} |"
              for f in module.FAULTS]
    lines += ["", "Faults proven elsewhere: a config failing its check never replaces the live "
              "one (`tests/lab/test_staged.py`); a failed ACME issuance keeps the old "
              "certificate (`tests/lab/test_tls.py`); rules that cut SSH roll back, also "
              "across a reboot and with a stopped firewalld (`tests/lab/test_firewall.py`, "
              "`tests/lab/test_firewall_guard.py`); a package mirror that accepts and never "
              "answers fails only its host, named with the stalled step, within 300 s, and "
              "a `--limit` re-run converges it once the mirror is back "
              "(`tests/lab/test_fleet.py`, `make test-fleet`)."]
    lines += _load_section() + [""]
    return "\n".join(lines)


def _load_section() -> list[str]:
    """The last `make test-load` figures (bench/results/load.json, written by
    tests/lab/test_load.py)."""
    r = json.loads((REPO / "bench" / "results" / "load.json").read_text())
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["http_statuses"].items()))
    return [
        "", "## Load", "",
        f"`make test-load` (tests/lab/test_load.py), last run {r['date'][:10]} on "
        f"{r['machine']['cpus']} cores: {r['users']} users log in ({r['workers']} at a time) "
        "from the probe namespace, start their server and run `1+1` in a kernel; then the "
        "idle culler (timeout 60 s) stops every server. Any failed login, wrong result or "
        "5xx fails the test.", "",
        "| figure | value |", "|---|---|",
        f"| all {r['users']} users done | {r['wall_s']:.0f} s |",
        f"| login p50 / p95 / max | {r['login_s']['p50']} / {r['login_s']['p95']} / "
        f"{r['login_s']['max']} s |",
        f"| server start p50 / p95 | {r['spawn_s']['p50']:.0f} / {r['spawn_s']['p95']:.0f} s |",
        f"| first kernel result p50 / p95 | {r['first_result_s']['p50']:.0f} / "
        f"{r['first_result_s']['p95']:.0f} s |",
        f"| HTTP statuses | {statuses} (no 5xx) |",
        f"| host memory idle → peak ({r['memory_peak']['servers']} servers) → after the "
        f"culler | {r['memory_idle']['host_mb']} → {r['memory_peak']['host_mb']} → "
        f"{r['memory_after_cull']['host_mb']} MB (≈ {r['mb_per_server']} MB per user's "
        "server and kernel) |",
        f"| the hub's own RSS, idle → under load | {r['memory_idle']['hub_rss_mb']} → "
        f"{r['memory_peak']['hub_rss_mb']} MB |",
        f"| every server culled, after the last user left | "
        f"{r['all_culled_after_load_s']:.0f} s |",
    ]


def test_the_reliability_doc_is_the_catalogue():
    module = _catalogue()
    assert len(module.SCENARIOS) >= 20
    assert {s.mode for s in module.SCENARIOS} == {"hub", "notebook"}
    assert len(module.FAULTS) >= 6
    assert any(s.quick for s in module.SCENARIOS)
    text = render(module)
    if os.environ.get("PJ_UPDATE_GOLDEN"):
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/reliability.md is stale: PJ_UPDATE_GOLDEN=1 to rewrite"
