PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-env fixtures docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# the chapter's own data when ../shared/data holds them, else the simulated sets
DEMO_DATA := $(wildcard ../shared/data/levels.json)

demo: $(VENV)/.installed
	$(BIN)/mixedmodels demo -o demo-output $(if $(DEMO_DATA),--data $(dir $(DEMO_DATA)))

test: $(VENV)/.installed-test
	$(BIN)/python -m ruff check src tests benchmarks tools docs
	$(BIN)/python -m pytest -q -n 2

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py

# the glmm peer (Rust core) lives in its own venv: never a dependency of the package
BENCH_VENV := .bench-venv
bench-env: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV) || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet glmm==0.6.2 pandas
	touch $@

docs: $(VENV)/.installed-test
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

fixtures:
	Rscript tools/make_fixtures.R tests/fixtures

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo-output .pytest_cache
