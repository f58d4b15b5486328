# The two commands of the README: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Install, then run the product against the operator sandbox (needs Redis on localhost:6379).
run: $(VENV)/.runtime
	$(PY) contrib/run_local.py

## Install, then lint, check the layers (import-linter) and the types (mypy), and run every test
## (pytest's "no tests collected" is not a failure).
test: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

## The benchmarks under contrib/bench (print figures, never fail on timing).
bench: $(VENV)/.dev
	$(PY) contrib/bench/recording_decode.py
	$(PY) contrib/bench/ingest.py
	$(PY) contrib/bench/latency.py
	$(PY) contrib/bench/pipeline.py
	$(PY) contrib/bench/recordings.py
	$(PY) contrib/bench/console.py
