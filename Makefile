# Course commands. `make help` lists them; `make lab` and `make test` are the two a
# newcomer needs. Every target builds or refreshes .venv first when the pins change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The course makes no network call beyond 127.0.0.1: MLflow telemetry stays off.
export MLFLOW_DISABLE_TELEMETRY := true
export MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT := true
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help lab test test-unit test-notebooks test-stores ui notebooks slides screenshots bench stop reset-store clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt pyproject.toml scripts/check_python.py
	@test -n "$(PYTHON)" || { echo "No python3.11 or python3 found: install Python 3.11 or newer, or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@command -v $(PYTHON) >/dev/null || { echo "Python $(PYTHON) was not found: install Python 3.11 or newer, or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) scripts/check_python.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

lab: $(STAMP) ## Start JupyterLab on 127.0.0.1 in notebooks/
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP) ## Run every test: unit tests, each notebook twice under nbval, the store matrix
	scripts/ensure_system_packages.sh
	$(BIN)/python -m pytest tests
	$(BIN)/python scripts/test_notebooks.py
	$(BIN)/python scripts/test_stores.py
	$(BIN)/python -m helpers.servers check-clean

test-unit: $(STAMP) ## Run the unit tests only
	$(BIN)/python -m pytest tests

test-notebooks: $(STAMP) ## Execute every notebook twice under nbval on a temporary store
	$(BIN)/python scripts/test_notebooks.py $(NOTEBOOKS)

test-stores: $(STAMP) ## Execute notebooks 01, 02, 04 against a server, an auth server, a file store
	$(BIN)/python scripts/test_stores.py $(LEGS)

ui: $(STAMP) ## Start the MLflow UI on the course store (PORT=N to choose the port)
	$(BIN)/python -m helpers.servers ui $(if $(PORT),--port $(PORT))

notebooks: $(STAMP) ## Re-execute every notebook in place to refresh the committed outputs
	$(BIN)/python scripts/refresh_notebooks.py $(NOTEBOOKS)

slides: $(STAMP) ## Build offline HTML slide decks of the notebooks into build/slides/
	$(BIN)/python scripts/slides.py build

screenshots: $(STAMP) ## Save pictures of the MLflow UI on the course store into notebooks/images/
	$(BIN)/python scripts/screenshots.py

bench: $(STAMP) ## Measure notebook times, logging overhead, servers; print ratios and medians, write docs/benchmarks.md
	$(BIN)/python scripts/bench.py --write

stop: $(STAMP) ## Stop every server the course started, also after a crashed kernel
	$(BIN)/python -m helpers.servers stop-all

reset-store: $(STAMP) ## Start a fresh course store for a new class; the old one is moved aside, not deleted
	$(BIN)/python -m helpers.servers stop-all
	$(BIN)/python -m helpers.store reset

clean: ## Remove .venv, caches and course server state (the course store is kept)
	rm -rf $(VENV) .pytest_cache .course *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
