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

setup: $(UV)
	$(UV) sync --frozen

## Dagster UI + daemon on the embedded default (data/landing -> data/warehouse.duckdb)
dev: setup
	@echo "Dagster UI at http://$(HOST):$(PORT) - the landing sensor ingests data/landing by itself"
	$(UV) run dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

## The whole test suite (installs Debian's chromium, postgresql and docker-compose if missing)
test: setup
	./scripts/ensure-test-tools
	$(UV) run pytest

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
