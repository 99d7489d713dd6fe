"""The controller side shared by the login tests: a hub site on one lab host."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from deploy_helpers import run_deploy


class LoginSite:
    """One lab host, the hub spec a test gives it (`self.spec`), and every deploy's output
    and duration by label. `network()` is the spec's network section (a subclass adds the
    CA of its provider or directory)."""

    def __init__(self, lab, tmp: Path):
        self.lab, self.tmp = lab, tmp
        self.host = lab.new_host()  # the lab's bridge exists once a host is up
        self.inventory = tmp / "inventory.py"
        self.spec: dict = {}
        self.outputs: list[str] = []
        self.figures: dict[str, float] = {}

    @property
    def url(self) -> str:
        return f"https://{self.host.address}/"

    def network(self) -> dict:
        return self.lab.network()

    def deploy(self, label: str) -> str:
        self.lab.write_inventory(self.inventory, [self.host],
                                 {**copy.deepcopy(self.spec), "network": self.network()})
        start = time.monotonic()
        output = run_deploy(self.inventory).stdout
        self.figures[label] = time.monotonic() - start
        self.outputs.append(output)
        return output

    def sh(self, command: str) -> str:
        return self.host.run(command).stdout.strip()

    def report(self, title: str) -> None:
        """The deploys' durations, in the test's output (`-s`)."""
        print(f"\n{title} (s): " + ", ".join(f"{k} {v:.0f}" for k, v in self.figures.items()))
