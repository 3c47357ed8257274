# Two commands on a fresh machine: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The Web UI test drives Debian's chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PACKAGES := contracts workflows activities worker client encryption telemetry

.PHONY: demo test check lint typecheck bench chaos down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# Bytecode, as a wheel install has it: an editable install writes none, and where
	# PYTHONDONTWRITEBYTECODE is set every command would compile these modules at each start.
	$(BIN)/python -m compileall -q $(PACKAGES)
	touch $(STAMP)

demo: $(STAMP)  ## bring the embedded stack up and rotate a credential the way two people would
	$(BIN)/opsctl demo

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM)  ## the whole suite: unit, workflow, integration on the real stack, CLI contract, Web UI in Chromium
	$(BIN)/python -m pytest -n 2  # two workers (2 cores), each with its own stack on free ports

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)  ## figures, not assertions
	$(BIN)/python -m tests.benchmarks

chaos: $(STAMP)  ## real faults on a stack of its own: kills, outages, 50 callers, fuzzing, secret scan -> README
	$(BIN)/python -m tests.chaos --readme

down: $(STAMP)
	$(BIN)/opsctl dev down

clean: down
	rm -rf .opsctl
