# The one task runner: the README, .ci/run and developers all call these targets.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1

.PHONY: setup demo-model run analytics demo test lint test-fast benchmarks browsers clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[local,test]"
	touch $@

# A demo model that runs anywhere (tiny random weights: it makes noise, not art) so a first run
# can generate end to end with no GPU, no keys and no internet.
demo-model: setup
	@$(BIN)/creator models list | grep -q '^tiny-sd' || ( \
	  $(BIN)/creator models build-tiny "$${CREATOR_HOME:-$$HOME/.creator}/models/tiny-sd" && \
	  $(BIN)/creator models add "$${CREATOR_HOME:-$$HOME/.creator}/models/tiny-sd" --name tiny-sd )

run: setup demo-model
	$(BIN)/creator workspace --host $(HOST)

analytics: setup
	$(BIN)/creator analytics --host $(HOST)

demo: setup demo-model
	$(BIN)/creator demo-data --rows 20000

browsers:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: setup browsers lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not e2e and not slow"

benchmarks: setup
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks
