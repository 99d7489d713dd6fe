"""Test deploy for tests/lab/test_staged.py: one checked file from host data `x_staged`."""

from pyinfra import host

from operations.items import File
from operations.ops.converge import file

spec = host.data.x_staged
file(
    name=f"Upload {spec['dest']} through a checked, staged copy",
    item=File(spec["dest"], spec["content"], mode="600", check=spec.get("check")),
)
