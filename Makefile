# Two front-door commands: `make demo` and `make test`. Both set up .venv first if needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# llama-cpp-python is built from source. Its default native build turns on the AMX and AVX-512
# kernels of the build machine's CPU, and those crash (SIGSEGV in decode) on virtualised Xeons
# that advertise AMX; build the portable AVX2 kernels instead. Override for your own hardware.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: setup demo test check lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/tether demo

check: setup
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: check
	$(VENV)/bin/pytest

format: setup
	$(VENV)/bin/ruff format src tests bench examples
	$(VENV)/bin/ruff check --fix src tests bench examples

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache
