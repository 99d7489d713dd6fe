# The commands the README, CI and users rely on: venv, test, demo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv tools test test-reliability test-distros test-arm64 test-lifecycle test-security test-fleet test-load test-logins lint demo clean-lab readme-reference

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .

# The Debian tools the tests drive (Pebble, Chromium, systemd-analyze, ...): installed when
# missing, so no test is ever skipped for want of one.
tools: venv
	$(BIN)/python tests/install_tools.py

# The whole suite, in two pytest processes: the offline tests (spec, templates, pyinfra
# fixtures: these import pyinfra_cli, which monkey-patches the process with gevent, so they
# stay in one process), then the lab tests on real hosts, a test file per worker in two
# workers (each with a lab of its own: most of a lab test is waiting on its hosts, so two
# fit on two cores; 40 min in one process, 32 with two and the distro hosts added). Both
# always run; pytest's exit code 5 (nothing collected) counts as a failure.
LAB_WORKERS ?= 2
test: venv tools
	$(BIN)/ruff check .
	@rc=0; \
	$(BIN)/python -m pytest --ignore=tests/lab --ignore=tests/verify $(PYTEST_ARGS) || rc=$$?; \
	$(BIN)/python -m pytest tests/lab -n $(LAB_WORKERS) --dist loadfile \
	  --ignore=tests/lab/test_arm64.py --ignore=tests/lab/test_lifecycle.py \
	  --ignore=tests/lab/test_fleet.py --ignore=tests/lab/test_load.py --durations=40 $(PYTEST_ARGS) || rc2=$$?; \
	for code in $$rc $${rc2:-0}; do \
	  if [ $$code -eq 5 ]; then echo "make test: a pytest run collected no tests" >&2; exit 1; fi; \
	  if [ $$code -ne 0 ]; then exit $$code; fi; \
	done

# The whole drift catalogue (tests/lab/test_reliability.py; `make test` runs its quick part).
test-reliability: venv tools
	PJ_RELIABILITY=all $(BIN)/python -m pytest tests/lab/test_reliability.py $(PYTEST_ARGS)

# Hub mode on Debian 11 (CPython built from source, Node 12) and 13 lab hosts
# (tests/lab/test_distros.py; PJ_DISTROS=bullseye picks one; also in `make test`).
test-distros: venv tools
	$(BIN)/python -m pytest tests/lab/test_distros.py $(PYTEST_ARGS)

# Notebook mode on an emulated arm64 lab host, the stand-in for 64-bit Raspberry Pi OS
# (tests/lab/test_arm64.py; the lab installs qemu-user-static). Slow: out of `make test`.
test-arm64: venv tools
	$(BIN)/python -m pytest tests/lab/test_arm64.py $(PYTEST_ARGS)

# The security proofs with both logins, root and sudo (`make test` runs the sudo one).
test-security: venv tools
	PJ_SECURITY=all $(BIN)/python -m pytest tests/lab/test_security.py $(PYTEST_ARGS)

# Upgrades: a hub on the previous JupyterHub major moved to the current pins, and a pin that
# does not exist (tests/lab/test_lifecycle.py). Slow: out of `make test`.
test-lifecycle: venv tools
	$(BIN)/python -m pytest tests/lab/test_lifecycle.py $(PYTEST_ARGS)

# Ten hosts in one run, one of them behind a mirror that never answers
# (tests/lab/test_fleet.py). Slow: out of `make test`.
test-fleet: venv tools
	$(BIN)/python -m pytest tests/lab/test_fleet.py -s $(PYTEST_ARGS)

# Thirty users log in, ten at a time, and run a cell on one hub, then the idle culler stops every
# server (tests/lab/test_load.py; figures in bench/results/load.json). Slow: out of `make test`.
test-load: venv tools
	$(BIN)/python -m pytest tests/lab/test_load.py -s $(PYTEST_ARGS)

# Every login method against a real counterpart in the lab: LDAP (slapd over LDAPS), OpenID
# Connect (a provider in the lab, Chromium through the redirects). Also in `make test`.
test-logins: venv tools
	$(BIN)/python -m pytest tests/lab/test_login_*.py $(PYTEST_ARGS)

demo: venv
	$(BIN)/python -m pyinfra_jupyter.demo

clean-lab: venv
	$(BIN)/pyinfra-jupyter lab down

# Regenerate the README's spec reference from the models (a test checks it is current).
readme-reference: venv
	$(BIN)/python -c "import re, pathlib; from pyinfra_jupyter.reference import BEGIN, END, markdown_reference as m; p = pathlib.Path('README.md'); t = p.read_text(); i, j = t.index(BEGIN), t.index(END) + len(END); p.write_text(t[:i] + m() + t[j:])"
	$(BIN)/python -c "import pathlib; from operations.platform import MATRIX_BEGIN as B, MATRIX_END as E, matrix_markdown as m; p = pathlib.Path('README.md'); t = p.read_text(); i, j = t.index(B), t.index(E) + len(E); p.write_text(t[:i] + m() + t[j:])"
