"""Tooling around the deploy: the `pyinfra-jupyter` command, the lab, the demo."""
