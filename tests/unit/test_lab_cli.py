"""`pyinfra-jupyter lab` argument parsing (no lab needed)."""

from __future__ import annotations

import pytest

from pyinfra_jupyter.lab.cli import _parser


@pytest.mark.parametrize("argv", [
    ["--lab", "demo", "down"],
    ["down", "--lab", "demo"],
    ["--lab", "other", "down", "--lab", "demo"],  # the nearer one wins
])
def test_lab_name_before_or_after_the_subcommand(argv):
    assert _parser().parse_args(argv).lab == "demo"


def test_no_lab_name_means_the_default():
    args = _parser().parse_args(["up", "2"])
    assert getattr(args, "lab", None) is None and args.count == 2


def test_status_json():
    args = _parser().parse_args(["status", "--json", "--lab", "x"])
    assert args.json and args.lab == "x"
