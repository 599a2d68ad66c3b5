# `make demo` and `make test` are all the set-up there is: each creates the virtual environment when it is
# missing and installs what it needs. Override the environment's place with `make test VENV=/path/to/venv`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Re-install the dependencies only when their declaration changes (CI keeps one environment between clones).
DEPS_STAMP := $(VENV)/.ashnets-deps-$(shell cat setup.cfg pyproject.toml | sha1sum | cut -c1-12)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test bench install clean

demo: install
	$(BIN)/python examples/demo_easy_vqa.py

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Speed, memory and FLOP/s (minutes on a CPU); the accuracy benchmarks are benchmarks/bench_easy_vqa.py and
# benchmarks/bench_pretraining.py (tens of minutes each).
bench: install
	$(BIN)/python benchmarks/bench_performance.py $(BENCH_ARGS)

install: $(DEPS_STAMP)
	@# Point the editable install at this checkout (cheap; needed when a clone reuses an environment).
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import torchvision, torchaudio, transformers, spikingjelly"
	rm -f $(VENV)/.ashnets-deps-*
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info
