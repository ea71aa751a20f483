# Two commands: `make demo` sets up and runs the sample pipeline; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean install system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[spark,service,redis,dev]"
	touch $(STAMP)

install: $(STAMP)

# redis-server and wrk from Debian's packages when missing (the Redis tests, the service benchmark)
system-packages:
	bash scripts/system-packages.sh

demo: $(STAMP)
	$(BIN)/patron demo --project demo

test: $(STAMP) system-packages
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-cache

bench: $(STAMP) system-packages
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
