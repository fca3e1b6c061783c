# Two entry points: `make run` (the notebook on the default data) and `make test` (lint + tests).
# Both create .venv and install requirements.txt on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR := runs/$(shell date +%Y%m%d-%H%M%S)
PARAMS ?=

.PHONY: install data run test lint clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (.venv)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

data: $(STAMP)
	$(PY) -m tiling.synthetic --if-missing --out data

run: data
	mkdir -p $(RUN_DIR)
	$(VENV)/bin/papermill main.ipynb $(RUN_DIR)/main.ipynb -k python3 --cwd . \
		-p output_dir $(RUN_DIR) $(PARAMS)
	@echo "run written to $(RUN_DIR)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf runs .pytest_cache .ruff_cache
