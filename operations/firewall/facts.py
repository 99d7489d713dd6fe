"""Facts the firewall needs from the host that pyinfra does not have."""

from __future__ import annotations

from pyinfra.api import FactBase


class SshConnection(FactBase):
    """Where this deploy's SSH connection arrives: {client, client_port, server, port} or None.

    Read from sshd's SSH_CONNECTION ("client_ip client_port server_ip server_port"); run it
    without sudo, which may reset the environment.
    """

    def command(self) -> str:
        return 'echo "$SSH_CONNECTION"'

    def process(self, output: list[str]) -> dict | None:
        fields = " ".join(output).split()
        if len(fields) != 4 or not fields[3].isdigit():
            return None
        return {"client": fields[0], "client_port": int(fields[1]), "server": fields[2],
                "port": int(fields[3])}
