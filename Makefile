# Two entry points: `make serve` and `make test`. Both set everything up on a fresh machine
# with only Python 3.11+ (a virtualenv in .venv, installed from pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck architecture pytest schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,postgres]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/memoria serve

test: $(STAMP) lint typecheck architecture pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

architecture: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

schema: $(STAMP)
	$(BIN)/memoria schema > schema.graphql
	$(BIN)/python tools/generate_client.py

clean:
	rm -rf $(VENV)
