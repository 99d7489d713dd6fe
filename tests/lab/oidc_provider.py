"""A real OpenID Connect provider for lab tests: PyPI's oidc-provider-mock, over HTTPS.

    python oidc_provider.py --listen ADDR:PORT --cert CERT --key KEY --users USERS.json

Runs in the lab namespace (`Lab.run_service`), so lab hosts reach it on the bridge. Clients
must register (RFC 7591, `POST /oauth2/clients`): the provider then checks the client's
secret at its token endpoint and its redirect URI at authorization, as a real one does.
USERS.json is a list of objects with a `sub` and the user's other claims; the provider's
login form takes a `sub`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="ADDR:PORT")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--users", required=True)
    args = parser.parse_args()

    import uvicorn
    from oidc_provider_mock import User, app

    users = [User(sub=entry.pop("sub"), claims=entry)
             for entry in json.loads(Path(args.users).read_text())]
    address, port = args.listen.rsplit(":", 1)
    uvicorn.run(
        app(require_client_registration=True, user_claims=users),
        interface="wsgi", host=address, port=int(port),
        ssl_certfile=args.cert, ssl_keyfile=args.key, log_level="info",
    )


if __name__ == "__main__":
    main()
