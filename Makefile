# Vigil: install, run, test, measure. GNU make; needs python3 (3.11+) and npm.
#
#   make demo    install, fetch front-end assets, initialise ./var, load demo data, serve on :8000
#   make test    the whole test suite (PostgreSQL tests need VIGIL_TEST_POSTGRES_URL; .ci/run sets it)
#   make bench   every benchmark in benchmarks/, then a table of the figures
#   make lint    ruff and mypy --strict
#   make clean   remove the virtual environment, node_modules, vendored assets and caches (never ./var)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Plain `=`: a HOST or PORT in the environment (zsh sets HOST) is ignored; `make demo PORT=9000` works.
HOST = 127.0.0.1
PORT = 8000
PYTEST_ARGS ?=

# Stamps: the venv is rebuilt only when the lock, pyproject.toml or the C module (built by the editable
# install) changes, the assets only when package.json or its lock changes.
VENV_STAMP := $(VENV)/.vigil-installed
NODE_STAMP := node_modules/.vigil-installed
VENDOR := src/vigil/web/static/vendor
VENDORED := $(VENDOR)/htmx.min.js $(VENDOR)/echarts.min.js

.PHONY: help venv assets init demo serve test bench lint clean

help:
	@echo "make demo    install everything, initialise ./var, load demo data, serve http://$(HOST):$(PORT)"
	@echo "make test    run the whole test suite (make test PYTEST_ARGS='tests/x.py -k name' for part of it)"
	@echo "make bench   run every benchmark and print a table of figures"
	@echo "make lint    ruff check src tests benchmarks scripts, mypy --strict src"
	@echo "make clean   remove .venv, node_modules, vendored assets and caches (./var is kept)"

# --- Python --------------------------------------------------------------------------------------

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements.lock pyproject.toml src/vigil/intel/_screen.c
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: $(PYTHON) not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2; \
	  exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: Vigil needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1)." >&2; \
	  echo "       Run make with PYTHON=/path/to/python3.11 (or newer)." >&2; \
	  exit 1; }
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  echo "$(VENV) was made with an older Python; making it again"; rm -rf $(VENV); fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: could not create $(VENV); on Debian: apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

# --- front-end assets (HTMX, ECharts) from the npm registry, served locally ----------------------

assets: $(VENDORED)

$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@command -v npm >/dev/null 2>&1 || { \
	  echo "error: npm not found; it fetches the front-end assets. On Debian: apt-get install npm" >&2; \
	  exit 1; }
	@if [ -f package-lock.json ]; then \
	  echo "npm ci"; npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else \
	  echo "npm install"; npm install --ignore-scripts --no-audit --no-fund --loglevel=error; \
	fi
	@touch $@

$(VENDOR)/htmx.min.js: $(NODE_STAMP)
	@mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $@

$(VENDOR)/echarts.min.js: $(NODE_STAMP)
	@mkdir -p $(VENDOR)
	cp node_modules/echarts/dist/echarts.min.js $@

# --- run ------------------------------------------------------------------------------------------

init: $(VENV_STAMP)
	$(BIN)/vigil init

demo: $(VENV_STAMP) assets init
	VIGIL_HOST=$(HOST) VIGIL_PORT=$(PORT) $(BIN)/vigil demo
	@echo
	@echo "Vigil is starting on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs; Ctrl-C stops it)"
	$(BIN)/vigil serve --host $(HOST) --port $(PORT)

serve: $(VENV_STAMP) assets
	@echo "Vigil is starting on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	$(BIN)/vigil serve --host $(HOST) --port $(PORT)

# --- check ----------------------------------------------------------------------------------------

# make itself exits 2 on any failure; the line "make: *** [...] Error N" shows pytest's own code
# (1 failures, 5 no tests collected, ...), and .ci/run reads the JUnit report for its summary.
test: $(VENV_STAMP) assets
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV_STAMP)
	$(BIN)/python benchmarks/run_all.py

# Runs every checker, then fails if any did. `ruff format --check` is not enforced: the code base
# keeps its own hand-wrapped style, which the formatter would rewrite.
lint: $(VENV_STAMP)
	@status=0; \
	echo "ruff check src tests benchmarks scripts"; $(BIN)/ruff check src tests benchmarks scripts || status=1; \
	echo "mypy --strict src"; $(BIN)/mypy --strict src || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) node_modules $(VENDORED) .pytest_cache .mypy_cache .ruff_cache test-results build dist
	find src tests benchmarks scripts -name __pycache__ -type d -prune -exec rm -rf {} +
	rmdir $(VENDOR) 2>/dev/null || true
	rm -rf src/*.egg-info
