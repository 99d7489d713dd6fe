"""Test deploy for tests/lab/test_staged.py: one staged_file from host data `staged`."""

from pyinfra import host

from operations.staged import staged_file

spec = host.data.staged
staged_file(
    name=f"Upload {spec['dest']} through a checked, staged copy",
    dest=spec["dest"],
    content=spec["content"],
    mode="600",
    check=spec.get("check"),
)
