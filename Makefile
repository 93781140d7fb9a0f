# Two entry points: `make demo` runs the main job, `make test` runs every check.
# Both create .venv on first use and reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU build of torch (lies on disk on these machines); a GPU user sets TORCH_SPEC=torch
# after installing a CUDA build, or any spec pip understands.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.seedlab-installed

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check seedlab tests bench scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/seedlab demo --home $(CURDIR)/scratch/demo

clean:
	rm -rf $(VENV) scratch
