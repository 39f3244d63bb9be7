# Seneca Lake: `make run` (sample data through the main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE ?= sample-data
LAKE ?= lake

export PREFECT_HOME := $(CURDIR)/.prefect
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: install run test lint bench soak clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Seneca Lake needs Python 3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@test -f $(SAMPLE)/sample_manifest.json || $(BIN)/seneca sample --out $(SAMPLE) --days 3 --scale 1
	$(BIN)/seneca run --marcus-root $(SAMPLE)/marcus --marcus-home $(SAMPLE)/marcus_home --lake $(LAKE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/rollups.py
	$(BIN)/python benchmarks/retention.py

# Ten minutes of Marcus-format writes with rotation while ingest is SIGKILLed at random;
# `make soak SOAK_ARGS="--minutes 1"` for a short run.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .prefect $(LAKE) $(SAMPLE) .pytest_cache .mypy_cache .ruff_cache
