"""An Ubuntu VPS with a domain: a hub for a class, ACME certificate, GitHub logins (seed 000)."""

tls = {
    "type": "acme",
    "email": "lecturer@example.org",
    "domains": ["hub.example.org"],
}

hub = {
    "auth": {
        "type": "github",
        "client_id": "Iv1.0123456789abcdef",
        # Keep real secrets out of git: read them from the environment or a 0600 file.
        "client_secret": "replace-me-from-your-github-oauth-app",
        "callback_url": "https://hub.example.org/hub/oauth_callback",
        "allowed_organizations": ["example-university-ds101"],
    },
    "spawner": {"type": "systemd", "mem_limit": "2G", "cpu_limit": 1.0},
    "idle_culler": {"timeout": 1800},
}

users = {"admins": ["lecturer-github-name"], "allowed": ["lecturer-github-name"]}

python = {"packages": ["numpy", "pandas", "matplotlib"]}
