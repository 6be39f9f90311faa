# The few commands a developer needs.  Everything runs inside .venv, created on first use.
# PY=X.Y runs on another installed CPython (found by tools/find-python) in a venv of its own,
# e.g. `make build test-c PY=3.13` or `make bench PY=3.13`; the compiled extensions of several
# Pythons live side by side in the tree (their file names carry the interpreter's tag).
ifdef PY
PYTHON := $(or $(shell tools/find-python $(PY)),$(error CPython $(PY) is not installed))
VENV := .venv-$(PY)
endif
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
# How many C files `make build` compiles at once.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PORT ?= 8000

.PHONY: run test test-c test-py build lint docs docs-serve bench bench-pythons dist check-dist clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel Cython
	ESG_NO_EXTENSIONS=1 $(BIN)/python -m pip install -q -e '.[standard,dev,docs]' --no-build-isolation \
		--config-settings editable_mode=compat
	touch $(STAMP)

# Compile the hot path in place (esg/http/_*_c.so beside the .py sources); here a failed C
# build is an error, not the pure-Python fallback an install from the sdist would take.
build: $(STAMP)
	ESG_REQUIRE_EXTENSIONS=1 $(BIN)/python setup.py -q build_ext --inplace --parallel $(JOBS)

run: build
	$(BIN)/esg examples.hello:app --host $(HOST) --port $(PORT)

test: build
	$(MAKE) test-c
	$(MAKE) test-py

test-c:
	ESG_REQUIRE_EXTENSIONS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

test-py:
	ESG_NO_EXTENSIONS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check esg tests bench examples tools setup.py
	$(BIN)/ruff format --check esg tests bench examples tools setup.py
	$(BIN)/mypy

# The documentation site (mkdocs.yml, docs/) into site/.  --strict: a broken link, a missing
# included file or an option without help text fails the build.  tools/docs_hooks.py generates
# the Settings page from esg's click command while building.  docs-serve serves the site on
# http://$(HOST):$(DOCS_PORT) and rebuilds it when a page changes.
DOCS_PORT ?= 8001
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs
docs: $(STAMP)
	$(MKDOCS) build --strict --site-dir site

docs-serve: $(STAMP)
	$(MKDOCS) serve --strict --dev-addr $(HOST):$(DOCS_PORT)

bench: build
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# esg against uvicorn on each CPython, one after another; the table goes to
# bench/results/pythons.md (PYTHONS="3.11 3.12 3.13" by default).
PYTHONS ?= 3.11 3.12 3.13
bench-pythons: $(STAMP)
	$(BIN)/python -m bench.pythons $(PYTHONS)

# The release artefacts in dist/: the sdist, a compiled wheel for this CPython repaired to a
# manylinux tag, and a pure-Python py3-none-any wheel; both wheels are built from the sdist.
dist: $(STAMP)
	$(BIN)/python tools/dist.py build --outdir dist

# Build dist/ and install each artefact (and the sdist without a C compiler) into a fresh
# venv, serving one request from each.
check-dist: $(STAMP)
	$(BIN)/python tools/dist.py check --outdir dist

clean:
	rm -rf build dist site esg/**/*.so esg/**/*.c esg/*.so esg/*.c
