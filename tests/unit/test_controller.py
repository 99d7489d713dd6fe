"""The controller's own preparation: password files are checked read-only by `check`, made
(0600, never overwritten) by the deploy, and refused when others can read them."""

from __future__ import annotations

import os

from pyinfra_jupyter import controller
from pyinfra_jupyter.spec import build_spec


def spec_with(path, generate=False):
    return build_spec({"users": {"accounts": [
        {"name": "alice", "password_file": str(path), "generate_password": generate}]}})


def test_generated_password_file_is_private(tmp_path):
    path = tmp_path / "sub" / "pw"
    spec = spec_with(path, generate=True)
    assert controller.problems(spec) == []
    assert not path.exists()  # checking never makes anything
    first = controller.login_passwords(spec)["alice"].get_secret_value()
    assert len(first) >= 20 and path.stat().st_mode & 0o777 == 0o600
    assert controller.login_passwords(spec)["alice"].get_secret_value() == first


def test_readable_password_file_is_refused(tmp_path):
    path = tmp_path / "pw"
    path.write_text("x")
    path.chmod(0o644)
    (problem,) = controller.problems(spec_with(path))
    assert problem.startswith("users.accounts.0.password_file:") and "readable by others" in problem


def test_missing_file_and_unknown_home_name_the_field(tmp_path):
    (missing,) = controller.problems(spec_with(tmp_path / "nope"))
    assert "does not exist" in missing
    (unknown,) = controller.problems(spec_with("~no-such-user-here/pw"))
    assert unknown.startswith("users.accounts.0.password_file: cannot expand")


def test_a_symlinked_password_file_is_not_a_file(tmp_path):
    target = tmp_path / "target"
    target.write_text("pw\n")
    os.chmod(target, 0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    (problem,) = controller.problems(spec_with(link))
    assert "not a regular file" in problem
