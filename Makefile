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
	$(BIN)/enhancer --help

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# The frozen app for this platform (onedir bundle + installer or archive), see installer/README.md.
bundle: $(STAMP)
	$(BIN)/python -m pip install -q "pyinstaller>=6.3"
	$(BIN)/python installer/build.py

clean:
	rm -rf $(VENV) build dist *.egg-info
