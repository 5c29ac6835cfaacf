# Set-up lives here so that a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv clean bundle

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, so that the project's `torch>=2.2` is already satisfied and pip never picks a CUDA build itself.
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/enhancer-gui resources/sample_astronaut.png

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# The frozen app for this platform (onedir bundle + installer or archive), see installer/README.md.
bundle: $(STAMP)
	$(BIN)/python -m pip install -q "pyinstaller>=6.3"
	$(BIN)/python installer/build.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# Benchmarks against spandrel / spandrel_extra_arches (issue 9). Its own venv: that torchvision imports only beside
# torch 2.14.1, so it never touches .venv, `make test` or CI.
BENCH_VENV ?= .venv-bench
BENCH_TORCH ?= torch==2.14.1 torchvision==0.29.1
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q $(BENCH_TORCH) spandrel spandrel-extra-arches
	# pin what is installed so the project's dependencies cannot change torch
	$(BENCH_VENV)/bin/python -m pip freeze | grep -iE '^(torch|torchvision)==' > $(BENCH_VENV)/constraints.txt
	$(BENCH_VENV)/bin/python -m pip install -q -e . -c $(BENCH_VENV)/constraints.txt
	touch $(BENCH_STAMP)

.PHONY: bench-env bench
bench-env: $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench.speed
