# Two entry points: `make run` (the notebook on the default data) and `make test` (lint + tests).
# Both create .venv and install requirements.txt on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR := runs/$(shell date +%Y%m%d-%H%M%S)
PARAMS ?=

.PHONY: install data run run-starfield test lint typecheck clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
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

# The same notebook on the synthetic FITS star field (RA/Dec catalogue, sizes in arcsec).
run-starfield: $(STAMP)
	test -f data/starfield/images/star_field.fits || $(PY) -m tiling.synthetic.starfield --out data/starfield
	mkdir -p $(RUN_DIR)
	$(VENV)/bin/papermill main.ipynb $(RUN_DIR)/main.ipynb -k python3 --cwd . \
		-p output_dir $(RUN_DIR) -p images_dir data/starfield/images \
		-p datasets_dir data/starfield/datasets -p coords sky -p diameter_unit arcsec \
		-y '{columns: {x: ra, y: dec, diameter: diameter_arcsec}, test_rasters: []}' \
		-p min_diameter 4 -p max_diameter 80 -p input_stretch zscale \
		-p tiles_dir data/starfield/tiles $(PARAMS)
	@echo "run written to $(RUN_DIR)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy on tiling, augment, model, plots ([tool.mypy] in pyproject.toml)
typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -n 2

clean:
	rm -rf runs .pytest_cache .ruff_cache
