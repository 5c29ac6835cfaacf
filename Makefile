# Set-up lives here so that a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# PyPI's Linux torch is the CUDA build (about 3 GB more in the bundle); the CPU wheels are on this index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-avx2 venv clean bundle

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, so that the project's `torch>=2.2` is already satisfied and pip never picks a CUDA build itself.
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,cluster,jxl]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/enhancer-gui resources/sample_astronaut.png

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# The tests whose path depends on the CPU, again as on an AVX2-only CPU (AMD Zen 2/3, Intel Core without AVX-512):
# oneDNN limited to AVX2 refuses bf16 there, and torch's own kernels run at their AVX2 level. CI runs both.
CPU_PATH_TESTS := tests/test_devices.py tests/test_archs_restormer_mobilesr.py tests/test_golden.py \
	tests/test_cli.py::test_a_precision_the_cpu_cannot_run_falls_back_with_a_note_and_still_writes
test-avx2: $(STAMP)
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(CPU_PATH_TESTS)

# The frozen app for this platform (onedir bundle + installer or archive), see installer/README.md.
bundle: $(STAMP)
	$(BIN)/python -m pip install -q "pyinstaller>=6.3"
	# the bundle holds the CPU torch: a CUDA build (PyPI's on Linux) is replaced by the CPU wheel from TORCH_INDEX
	$(BIN)/python -c "import sys, torch; sys.exit(torch.version.cuda is not None)" || \
		$(BIN)/python -m pip install -q --force-reinstall --no-deps "$(TORCH)" --index-url $(TORCH_INDEX)
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
