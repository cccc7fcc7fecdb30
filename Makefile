# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
XINGLIN := $(VENV)/bin/xinglin
PYTEST_ARGS ?=

.PHONY: demo test lint format install clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## make demo: install, create the schema, load a demo hospital into xinglin.db (SQLite) and serve it
demo: $(VENV)/.installed
	$(XINGLIN) db upgrade
	$(XINGLIN) demo-data --tenant demo
	@echo "Serving http://127.0.0.1:8000  (FHIR: http://127.0.0.1:8000/fhir/R4/metadata, Ctrl-C stops)"
	$(XINGLIN) serve --host 127.0.0.1 --port 8000

## make test: the whole suite, every database test on SQLite and on PostgreSQL (127.0.0.1:5432)
test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(VENV)/.installed
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache xinglin.db xinglin.db-wal xinglin.db-shm xinglin.db.lock
