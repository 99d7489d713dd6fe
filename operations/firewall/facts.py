"""Facts the firewall needs from the host that pyinfra does not have."""

from __future__ import annotations

from pyinfra.api import FactBase

from ..ops.facts import parse_ssh_connection


class SshConnection(FactBase):
    """Where this deploy's SSH connection arrives: {client, client_port, server, port} or None.

    Read from sshd's SSH_CONNECTION ("client_ip client_port server_ip server_port"); run it
    without sudo, which may reset the environment.
    """

    def command(self) -> str:
        return 'echo "$SSH_CONNECTION"'

    def process(self, output: list[str]) -> dict | None:
        return parse_ssh_connection(" ".join(output))
