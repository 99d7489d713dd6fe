"""The pyinfra-jupyter host agent: programs that run on the host, not in a deploy.

- TLS (tls.py, acme_client.py, certs.py, store.py, responder.py): issue, renew or check the
  certificate, hand each service its own copy, serve the plain-HTTP port.
- DDNS (ddns.py): keep a name pointing at the host's public address.
- dns.py: the providers' APIs, shared by ACME DNS-01 and the DDNS updater.

Shipped to hosts as one zipapp (build.py) and run from a small venv (acme, josepy,
cryptography); it never needs pyinfra or the spec: it reads config files the deploy
renders. See README.md.
"""
