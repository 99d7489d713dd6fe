"""A CentOS 7 server: a public notebook for one researcher (seeds 000 and 002)."""

mode = "notebook"

notebook = {
    "instances": [
        {
            "name": "research",
            "user": "researcher",
            "port": 9999,
            "root_dir": "/srv/notebooks",
            # argon2 hash of 'change-me-now', made with
            # python -c 'from jupyter_server.auth import passwd; print(passwd())'
            "password_hash": (
                "argon2:$argon2id$v=19$m=10240,t=10,p=8$D4tBz/u7X7GyzQgSZch6G"
                "w$MlNA7nxyYMF3UasfbF7isuDgTNM5NfEUEutJNSxwgzs"
            ),
        }
    ],
}

tls = {"type": "self-signed", "names": ["research.example.org"]}

firewall = {"backend": "firewalld"}
