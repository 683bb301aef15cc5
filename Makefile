# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed here, into a project-local virtual environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .demo
PORT ?= 3000

export DAGSTER_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1

.PHONY: install demo demo-headless test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Build the demo in $(DEMO_DIR) and open the Dagster UI on http://127.0.0.1:$(PORT).
demo: install
	$(BIN)/watchkeeper demo --dir $(DEMO_DIR) --port $(PORT)

demo-headless: install
	$(BIN)/watchkeeper demo --headless --format json --dir $(DEMO_DIR)

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/bench_window.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
