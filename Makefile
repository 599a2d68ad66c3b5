# `make demo` and `make test` are all the set-up there is: each creates the virtual environment when it is
# missing and installs exactly the packages of requirements.lock into it. Override the environment's place with
# `make test VENV=/path/to/venv`; regenerate the lock with `make lock` (see README, "Install").
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# The environment is rebuilt only when the lock changes (CI keeps one environment per lock between clones).
DEPS_STAMP := $(VENV)/.ashnets-lock-$(shell sha256sum $(LOCK) | cut -c1-12)
# What the lock resolves besides setup.cfg's requirements and extras: the installer and the build tools, so that
# the environment needs nothing from outside the lock (the editable install builds without isolation).
LOCK_TOOLS := uv pip "setuptools>=68" wheel
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test bench install lock fresh-install-check clean

demo: install
	$(BIN)/python examples/demo_easy_vqa.py

test: install
	@# transformers' common tests, at the installed version: fetched from PyPI once, cached outside the clone. Offline
	@# and not yet cached, the fetch fails and the suite says so in tests/test_transformers_common.py.
	-$(BIN)/python scripts/fetch_transformers_tests.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Speed, memory and FLOP/s (minutes on a CPU); the accuracy benchmarks are benchmarks/bench_easy_vqa.py and
# benchmarks/bench_pretraining.py (tens of minutes each).
bench: install
	$(BIN)/python -m benchmarks.bench_performance $(BENCH_ARGS)

install: $(DEPS_STAMP)
	@# Point the editable install at this checkout (cheap; needed when a clone reuses an environment).
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .

$(BIN)/python:
	@if [ -L "$(VENV)" ] && [ ! -e "$(VENV)" ]; then \
		echo "$(VENV) is a symlink to a missing folder ($$(readlink "$(VENV)")): remove it (rm $(VENV)) and run make again."; \
		exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "ASH-Nets needs Python 3.11 or newer (spikingjelly 2 does); $(PYTHON) is $$($(PYTHON) --version 2>&1)." \
		"Run make with PYTHON=python3.11 (or newer)."; exit 1; }
	$(PYTHON) -m venv $(VENV)

# uv, at the lock's version and hashes, bootstrapped with the environment's own pip.
$(BIN)/uv: $(LOCK) | $(BIN)/python
	awk '/^uv==/ {found = 1} found {print; if ($$0 !~ /\\$$/) exit}' $(LOCK) > $(VENV)/uv-requirement.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r $(VENV)/uv-requirement.txt
	touch $@

$(DEPS_STAMP): $(LOCK) | $(BIN)/uv
	$(BIN)/uv pip sync --python $(BIN)/python --require-hashes $(LOCK)
	$(BIN)/python -c "import torchvision, torchaudio, transformers, spikingjelly"
	rm -f $(VENV)/.ashnets-lock-* $(VENV)/.ashnets-deps-*
	touch $@

# Re-resolve the lock from setup.cfg (all extras) for every platform, Python 3.11+, with hashes. Existing pins
# are kept where they still satisfy setup.cfg; `make lock LOCK_ARGS=--upgrade` moves everything to the newest.
lock: $(BIN)/uv
	printf '%s\n' $(LOCK_TOOLS) | $(BIN)/uv pip compile setup.cfg - --all-extras --universal \
		--python-version 3.11 --generate-hashes --custom-compile-command "make lock" --quiet $(LOCK_ARGS) -o $(LOCK)

# Clone this repository into a temporary folder and run the README's two commands there with the default VENV
# and empty package caches; prints the set-up, test and demo times and the environment's size.
fresh-install-check:
	bash scripts/fresh_install_check.sh

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info
