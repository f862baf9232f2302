# andamio developer tasks.  `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
STAMP := $(VENV)/.bootstrap-done
DEMO ?= build/demo
PYTEST_ARGS ?=
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export UV_PYTHON_DOWNLOADS ?= never
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: help bootstrap demo test test-fast lint format bench wheel clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(VENV)/bin/python -e ".[dev]"
	@touch $@

bootstrap: $(STAMP) ## Create .venv with andamio and the test tools

demo: $(STAMP) ## Render a project on the defaults into build/demo and run its whole lifecycle
	rm -rf $(DEMO)
	andamio new $(DEMO) --defaults
	$(MAKE) -C $(DEMO) setup check test pipeline promote
	@echo "demo: open $(DEMO)/README.md, $(DEMO)/reports/figures/evaluation.png; 'make -C $(DEMO) mlflow-ui'"

test: $(STAMP) ## Run the whole test suite (static, render matrix, execution, integration)
	pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the fast tiers only (static + render matrix, about a minute)
	pytest -n 2 -m "not slow and not integration" $(PYTEST_ARGS)

lint: $(STAMP) ## Lint and type-check andamio itself
	ruff check src hooks tests benchmarks
	ruff format --check src hooks tests benchmarks
	mypy

format: $(STAMP) ## Format andamio's own code
	ruff check --fix --quiet src hooks tests benchmarks
	ruff format --quiet src hooks tests benchmarks

bench: $(STAMP) ## Run the benchmarks (render ratio, pipeline cold/no-op times, fleet status vs copier loop)
	python benchmarks/bench_render.py
	python benchmarks/bench_pipeline.py
	python benchmarks/bench_fleet.py

wheel: $(STAMP) ## Build the andamio wheel (bundles the template) into dist/
	uv build --wheel --out-dir dist

clean: ## Remove build outputs and caches
	rm -rf build dist .pytest_cache .ruff_cache .mypy_cache
