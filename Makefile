# Entry points: `make run` (the notebook on the default data, headless), `make lab` (JupyterLab on
# the notebook) and `make test` (lint + tests). Each creates .venv and installs requirements.txt on
# first use (Ray Tune included, for engine="ray"); `make lab` and
# `make test` add requirements-lab.txt (JupyterLab, widgets, Bokeh).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab
LAB_PORT ?= 8888
LAB_ARGS ?= --no-browser
RUN_DIR := runs/$(shell date +%Y%m%d-%H%M%S)
PARAMS ?=

.PHONY: install install-lab data run run-starfield run-moon lab test lint typecheck clean

# Free space a new .venv needs: ~7 GB installed (PyTorch's CUDA build) and pip's work files.
VENV_GB := 9

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || { free=$$(df -Pk . | awk 'NR == 2 {print int($$4 / 1048576)}'); \
		[ "$$free" -ge $(VENV_GB) ] || { echo "make: a new $(VENV) needs about $(VENV_GB) GB free" \
		"(PyTorch's CUDA build alone is ~5.6 GB installed); $(CURDIR) has $$free GB." \
		"Free some space and run make again." >&2; exit 1; }; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (.venv)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

$(LAB_STAMP): $(STAMP) requirements-lab.txt
	$(PY) -m pip install --quiet -r requirements-lab.txt
	touch $(LAB_STAMP)

install-lab: $(LAB_STAMP)

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

# The same notebook on a synthetic Moon mosaic (IAU 2015 Moon, simple cylindrical, degrees) with a
# lon/lat/km crater catalogue in 0-360 longitudes.
run-moon: $(STAMP)
	test -f data/moon/images/moon_field.tif || $(PY) -m tiling.synthetic.planetary --out data/moon
	mkdir -p $(RUN_DIR)
	$(VENV)/bin/papermill main.ipynb $(RUN_DIR)/main.ipynb -k python3 --cwd . \
		-p output_dir $(RUN_DIR) -p images_dir data/moon/images \
		-p datasets_dir data/moon/datasets -p coords lonlat -p diameter_unit km \
		-y '{columns: {x: lon, y: lat, diameter: diameter_km}, test_rasters: []}' \
		-p tiles_dir data/moon/tiles $(PARAMS)
	@echo "run written to $(RUN_DIR)"

# JupyterLab on main.ipynb, listening on 127.0.0.1:$(LAB_PORT); open the printed URL (with its
# token), through an SSH tunnel from a remote machine (README). LAB_ARGS= opens a local browser.
lab: data $(LAB_STAMP)
	@token=$$($(PY) -c 'import secrets; print(secrets.token_hex(24))'); \
	echo "JupyterLab on main.ipynb: http://127.0.0.1:$(LAB_PORT)/lab/tree/main.ipynb?token=$$token"; \
	JUPYTER_TOKEN=$$token $(VENV)/bin/jupyter lab main.ipynb --ip=127.0.0.1 --port=$(LAB_PORT) \
		--ServerApp.port_retries=0 $(LAB_ARGS) $(if $(filter 0,$(shell id -u)),--allow-root)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy on tiling, augment, model, plots ([tool.mypy] in pyproject.toml); plots needs the lab extras
# (Bokeh)
typecheck: $(LAB_STAMP)
	$(VENV)/bin/mypy

test: lint typecheck $(LAB_STAMP)
	$(VENV)/bin/pytest -n 2 --durations=15

clean:
	rm -rf runs .pytest_cache .ruff_cache
