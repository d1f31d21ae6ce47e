# One place for install / demo / test. Needs Python 3.11+ (python3.11 by default).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
INTEGRATIONS := integrations/langchain $(wildcard integrations/llama-index)

.PHONY: install demo test lint typecheck pytest clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv

install: $(BIN)/uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[all,dev]" $(addprefix -e ,$(INTEGRATIONS))

demo: install
	$(BIN)/aitel demo

lint: install
	$(BIN)/ruff check src integrations tests benchmarks cookbook
	$(BIN)/ruff format --check src integrations tests benchmarks cookbook

typecheck: install
	$(BIN)/mypy src $(addsuffix /src,$(INTEGRATIONS))

pytest: install
	bash scripts/test-deps.sh
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .venv-phoenix .pytest_cache .mypy_cache .ruff_cache aitel-telemetry
