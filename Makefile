# Quick start:  make run   (installs, runs the default experiment -> results/)
#               make test  (installs, runs the test suite)
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= 2
BIN     = $(VENV)/bin
# torch/torchvision are pinned to the builds this project is tested with.
TORCH   = torch==2.14.1 torchvision==0.29.1

.PHONY: install run test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[workflow,dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/snakemake --cores $(CORES)

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# snakemake --lint exits non-zero on any finding.
lint: install
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
