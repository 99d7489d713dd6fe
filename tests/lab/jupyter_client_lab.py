"""A Jupyter kernel over HTTPS and its websocket, as a browser's JupyterLab uses it.

Shared by the hub and notebook lab tests; runs in the lab's probe namespace (outside the
host) with requests + websocket-client only.
"""

from __future__ import annotations

import json
import ssl
import uuid


class Kernel:
    """A new kernel on the Jupyter server at `server` (…/ or …/user/NAME/) and its websocket.

    `session` is a logged-in requests session, `xsrf` the server's _xsrf cookie value;
    certificates are not verified (the tests check TLS separately).
    """

    def __init__(self, server: str, session, xsrf: str, origin: str | None = None):
        import websocket

        self.base, self.session = server, session
        self.headers = {"X-XSRFToken": xsrf}
        kernel = session.post(f"{server}api/kernels", json={}, headers=self.headers,
                              verify=False, timeout=120)
        kernel.raise_for_status()
        self.id = kernel.json()["id"]
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        url = server.replace("https://", "wss://", 1) + f"api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(
            url, cookie=cookie, header=self.headers, sslopt={"cert_reqs": ssl.CERT_NONE},
            origin=origin, timeout=300,
        )

    def run(self, code: str) -> str:
        """Execute `code`; its result's text/plain, or "error: NAME"."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "probe", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False},
        }))
        result = ""
        while True:  # until the kernel is idle again after this request
            message = json.loads(self.ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "execute_result":
                result = content["data"]["text/plain"]
            elif kind == "error":
                result = "error: " + content["ename"]
            elif kind == "status" and content["execution_state"] == "idle":
                return result

    def close(self) -> None:
        self.ws.close()
        self.session.delete(f"{self.base}api/kernels/{self.id}", headers=self.headers,
                            verify=False, timeout=60)
