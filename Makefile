# Two commands set everything up: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AEON := "aeon>=1.0,<2"
CHROMIUM := /usr/bin/chromium
APT_CHROMIUM := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

.PHONY: demo test bench clean

demo: $(STAMP)
	$(VENV)/bin/gated tour --out tour
	@echo "Watch these models read, live: $(VENV)/bin/gated serve   (then open http://127.0.0.1:8000/)"

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest

bench: $(STAMP)
	$(VENV)/bin/gated bench

# torch is pinned and installed first: a CPU build of 2.13.0 lies on these machines,
# while an unpinned torch would pull a multi-GB CUDA build. The speech task's JapaneseVowels comes
# as .ts files inside aeon, which gated reads and never imports; aeon goes in without its
# dependencies, whose cap on numba (<0.64) would downgrade the fused engine's numba. The fused
# kernels are then compiled once into numba's cache (about a minute), so no first call pays for it.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,data,baselines,report,serve,export]"
	$(PY) -m pip install --quiet --no-deps $(AEON)
	$(PY) -m gated.engines.warm
	touch $(STAMP)

# The browser test (tests/browser.py) drives the system's Chromium; Playwright never downloads one.
# A file target: once /usr/bin/chromium exists this rule does nothing.
$(CHROMIUM):
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "make test needs Chromium at $(CHROMIUM); install it with: sudo sh -c '$(APT_CHROMIUM)'" >&2; \
		exit 1; \
	fi
	$(APT_CHROMIUM)

clean:
	rm -rf $(VENV) .pytest_cache
