# Everything a fresh machine needs is installed by these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: .venv demo test lint typecheck unit system-packages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# A migrated Prefect database for new homes (src/justering/orchestration/prefect_database.py);
	@# without it, the first local Prefect server to start makes it.
	-$(BIN)/python -m justering.orchestration.prefect_database
	touch $(STAMP)

.venv: $(STAMP)

## The whole pipeline on the bundled sample meeting, on embedded defaults.
demo: $(STAMP)
	$(BIN)/justering demo

## Lint, type-check and the whole test suite (installs what the tests need).
test: $(STAMP) system-packages lint typecheck unit

system-packages:
	@sh scripts/install-system-packages.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
