# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# js-libp2p interop peer (tests/meshnode/test_interop_js.py): npm packages from the pinned lockfile
JS_DIR := interop/js
JS_STAMP := $(JS_DIR)/node_modules/.stamp

.PHONY: run test lint types contracts pytest bench clean venv interop

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(JS_DIR) --no-audit --no-fund --loglevel=error && touch $(JS_STAMP); \
	else \
		echo "npm not found: interop/js not installed (the js-libp2p interop test skips without node)"; \
	fi

interop: $(JS_STAMP)

run: $(STAMP)
	$(BIN)/meshnode demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest

test: lint types contracts pytest

bench: $(STAMP)
	$(BIN)/python bench/agent_codec.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache $(JS_DIR)/node_modules
