# The few commands a developer needs.  Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-c test-py build lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel Cython
	ESG_NO_EXTENSIONS=1 $(BIN)/python -m pip install -q -e '.[standard,dev]' --no-build-isolation \
		--config-settings editable_mode=compat
	touch $(STAMP)

# Compile the hot path in place (esg/http/_*_c.so beside the .py sources).
build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

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
	$(BIN)/ruff check esg tests bench examples
	$(BIN)/ruff format --check esg tests bench examples
	$(BIN)/mypy

bench: build
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf build esg/**/*.so esg/**/*.c esg/*.so esg/*.c
