# The commands the README, CI and users rely on: venv, test, demo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test lint demo clean-lab readme-reference

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .

# The whole suite: spec/template/fixture tests and the lab tests on real hosts.
test: venv
	$(BIN)/ruff check .
	@# pytest exits 5 when it collected nothing: an empty run is a failure, not a pass.
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

demo: venv
	$(BIN)/python -m pyinfra_jupyter.demo

clean-lab: venv
	$(BIN)/pyinfra-jupyter lab down

# Regenerate the README's spec reference from the models (a test checks it is current).
readme-reference: venv
	$(BIN)/python -c "import re, pathlib; from pyinfra_jupyter.reference import BEGIN, END, markdown_reference as m; p = pathlib.Path('README.md'); t = p.read_text(); i, j = t.index(BEGIN), t.index(END) + len(END); p.write_text(t[:i] + m() + t[j:])"
