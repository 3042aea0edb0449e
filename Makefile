# shoprec: `make demo` and `make test` each work on a fresh machine from nothing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXTRAS := text,privacy,federated,plots,dev

.PHONY: install demo test lint unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned in pyproject (torch==2.13.0) and resolved in this same command
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/shoprec demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not gpu"

unit: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/unit

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
