# Quick start: `make run` (the service on embedded defaults) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# Parallel test processes: the end-to-end tests mostly wait on real services, so 4 fit 2 cores.
TEST_JOBS ?= 4
BIN := $(VENV)/bin

.PHONY: run test test-postgres screenshots lint format bench check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/watchfloor run

check: $(VENV)/.installed
	$(BIN)/watchfloor check

test: $(VENV)/.installed-test
	scripts/ensure-services
	scripts/ensure-ops-tools
	scripts/ensure-browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy feeds alerts common worker web
	$(BIN)/pytest -p no:cacheprovider -n $(TEST_JOBS) --durations=20 $(PYTEST_ARGS)

# The README's screenshots, from the browser tests (a real poll into a real console).
screenshots: $(VENV)/.installed-test
	scripts/ensure-services
	scripts/ensure-browser
	WATCHFLOOR_SCREENSHOTS=docs/screenshots $(BIN)/pytest -p no:cacheprovider tests/web/test_browser.py

# Only the database-backed tests, on PostgreSQL (`make test` runs them on both databases).
test-postgres:
	$(MAKE) test PYTEST_ARGS="-m postgres $(PYTEST_ARGS)"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy feeds alerts common worker web

format: $(VENV)/.installed-test
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(VENV)/.installed-test
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/corpus.py ../shared/corpus --jobs 2

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
