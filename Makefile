# Common commands. Each target sets up the environment first, so a fresh machine needs
# only Python 3.11+ and make: uv is bootstrapped into .tools/ when it is not on PATH.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 3000

export UV_PYTHON_DOWNLOADS := never
DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DAGSTER_HOME

.PHONY: setup dev test lint format samples ingest bench

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# uv's summary lines only (not one line per package installed). Then bytecode: every
# process (each `jf` command, each run worker) otherwise compiles the ~1,600 modules it
# imports from source when PYTHONDONTWRITEBYTECODE is set, as on CI and shared machines:
# 2-3x the start-up. Compiled once per uv.lock (the stamp); our own package each time (only
# changed files are compiled). The image does the same (UV_COMPILE_BYTECODE in the Dockerfile).
setup: $(UV)
	@set -o pipefail; $(UV) sync --frozen 2>&1 | { grep -v '^ [-+~] ' || true; }
	@if [ ! -f .venv/.bytecode ] || [ uv.lock -nt .venv/.bytecode ]; then \
	  set -o pipefail; $(UV) sync --frozen --compile-bytecode 2>&1 | { grep -v '^ [-+~] ' || true; } \
	  && touch .venv/.bytecode; fi
	@.venv/bin/python -m compileall -q -j 0 jf_pipeline benchmarks >/dev/null

## Dagster UI + daemon on the embedded default (data/landing -> data/warehouse.duckdb)
# `dg dev` supersedes `dagster dev` only for projects built with the `dg` tool (not installed
# here); `dagster dev` is the same webserver + daemon, so its notice is silenced.
dev: setup
	@echo
	@echo "jf-pipeline: Dagster UI and daemon starting (Ctrl-C stops both)"
	@echo "  UI          http://$(HOST):$(PORT)  (ready in a few seconds)"
	@echo "  landing     $${JF_LANDING:-data/landing}  ->  warehouse $${JF_WAREHOUSE:-data/warehouse.duckdb}"
	@echo "  next        within a minute the landing sensor runs one ingestion per tenant folder;"
	@echo "              then: .venv/bin/jf status    .venv/bin/jf rejects initech"
	@echo
	@PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
	  $(UV) run --frozen --quiet dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

## The whole test suite. No root needed: PostgreSQL comes from a wheel; a Chromium for the UI
## test is found or installed by scripts/ensure-test-tools.
## One pytest worker per core plus one: the daemon, UI and PostgreSQL tests mostly wait on
## ticks and servers, so a third worker on 2 cores overlaps them with the in-process tests
## (measured: pytest 280 s instead of 337-394 s with one worker per core).
TEST_WORKERS ?= $(shell python3 -c 'import os; print((os.cpu_count() or 1) + 1)')
test: setup
	@./scripts/ensure-test-tools
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist worksteal

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: setup
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

## Rewrite the sample tenants in data/landing (deterministic)
samples: setup
	$(UV) run python scripts/make_sample_data.py

## Benchmarks (see benchmarks/RESULTS.md)
bench: setup
	$(UV) run python benchmarks/pipeline.py 100 10000 100000 1000000

## jf ingest on the embedded default
ingest: setup
	$(UV) run jf ingest
