# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: run test test-sqlite test-postgresql bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/trato setup
	exec $(BIN)/trato serve

# Debian's chromium drives the console tests; it is installed once, never downloaded by playwright.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.installed-test browser
	TRATO_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)
	TRATO_TEST_DB=postgresql $(BIN)/pytest $(PYTEST_ARGS)

test-sqlite: $(VENV)/.installed-test
	TRATO_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)

test-postgresql: $(VENV)/.installed-test
	TRATO_TEST_DB=postgresql $(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) trato.db trato.db-wal trato.db-shm trato.inbox.db trato.inbox.db-wal trato.inbox.db-shm .trato_secret .trato_demo.json
