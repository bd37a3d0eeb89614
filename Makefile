# One command each, set-up included:  `make demo` runs the demo DAG, `make test` runs the test suite.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo test lint install report

install: $(VENV)/.installed

# torch is installed first and pinned: a bare `torch` requirement would pull several GB of CUDA wheels.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[torch,codecs,workflow,dev]"
	touch $@

demo: install
	$(BIN)/snakemake --cores all
	$(BIN)/snakemake --report results/report.html

report: install
	$(BIN)/snakemake --report results/report.html

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

# The venv's bin/ first on PATH: tests call its console scripts (dcm2niix, snakemake).
test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest
