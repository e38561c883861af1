# One entry point for learners, instructors and maintainers. Every target bootstraps what it needs:
# on a fresh machine `make lab` or `make test` creates .venv and installs the pinned environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := course-lib
# The optional stable-baselines3 (the sb3 extra): installed once, not by setup, with
# requirements.lock as constraints so that nothing the course pins changes version.
SB3_STAMP := $(VENV)/.installed-sb3

.DEFAULT_GOAL := help
.PHONY: help setup sb3 lab test test-fast notebooks exercises site slides lock bench bench-peers wheelhouse clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# A workshop room without (good) internet: `make wheelhouse` on a connected machine, carry the
# folder over, then `make setup WHEELHOUSE=path/to/wheelhouse` installs from it alone (no index).
WHEELHOUSE ?=
PIP_SOURCE := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE)))

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_SOURCE) -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Python (course_lib)" >/dev/null
	@touch $@

setup: $(STAMP) ## Create .venv with the pinned packages and register the Jupyter kernel

# Containers often run as root, which Jupyter refuses without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup ## Open the course in JupyterLab, starting at lesson 00
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/00_welcome.ipynb

# Extra pytest options, e.g. `make test-fast PYTEST_ARGS=--lf` re-runs only what failed last time.
PYTEST_ARGS ?=

# tests/browser drives JupyterLab in Debian's chromium: installed here when missing (needs root and
# apt); without it those tests fail and say why.
test: setup $(SB3_STAMP) ## Run everything: unit tests, every lesson (rerun if it starts Ray), solution (nbval), exercise, the site
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "could not install chromium: tests/browser will fail and say why"
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

# Only tests/ is collected, so nbval never starts a notebook kernel; `make test` still runs all.
test-fast: setup ## Unit tests without notebooks and slow tests (the edit-test loop, < 3 min)
	$(BIN)/python -m pytest tests -m "not notebooks and not slow" --durations=10 $(PYTEST_ARGS)

notebooks: setup ## Re-execute the lessons and solutions in place, storing their outputs and run times
	$(BIN)/python tools/run_notebooks.py notebooks solutions

exercises: setup ## Regenerate exercises/ from solutions/
	$(BIN)/python tools/make_exercises.py

# Built from the stored outputs (no notebook runs); warnings are errors, so a broken link fails.
site: setup ## Build the course site (lessons, exercises, API reference, snippets, guide) into build/site/
	$(BIN)/sphinx-build -W --keep-going -q -b html -c docs . build/site
	@echo "open build/site/docs/index.html"

slides: setup ## Render one reveal.js slide deck per lesson (its key cells) into build/slides/
	$(BIN)/python tools/make_slides.py --render build/slides

lock: setup ## Refresh requirements.lock and environment.yml from the installed environment
	$(BIN)/python tools/lock.py

bench: setup ## Run the benchmarks and print their tables (see BENCHMARKS.md)
	$(BIN)/python benchmarks/bench_parallel.py
	$(BIN)/python benchmarks/bench_sample_batch.py
	$(BIN)/python benchmarks/bench_rollout.py
	$(BIN)/python benchmarks/bench_algorithms.py
	$(BIN)/python benchmarks/bench_traffic.py
	$(BIN)/python benchmarks/bench_vs_rllib.py
	$(BIN)/python benchmarks/bench_serving.py

$(SB3_STAMP): $(STAMP) requirements-sb3.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_SOURCE) -c requirements.lock -r requirements-sb3.lock
	@touch $@

sb3: $(SB3_STAMP) ## Add the optional stable-baselines3 (lesson 03's env check, make bench-peers)

bench-peers: setup $(SB3_STAMP) ## course_lib against SB3 and RLlib side by side (installs SB3)
	$(BIN)/python benchmarks/bench_peers.py

# Wheels for this machine's platform and Python by default; for a room of other laptops pass pip's
# platform options, e.g. WHEEL_PLATFORM="--platform macosx_11_0_arm64 --python-version 3.11".
WHEEL_PLATFORM ?=
wheelhouse: ## Download every locked wheel into wheelhouse/ (offline rooms: make setup WHEELHOUSE=wheelhouse)
	$(PYTHON) -m pip download --quiet --disable-pip-version-check --only-binary=:all: $(WHEEL_PLATFORM) \
		-d wheelhouse -r requirements.lock -r requirements-sb3.lock
	@echo "wheelhouse/: $$(ls wheelhouse | wc -l) wheels, $$(du -sh wheelhouse | cut -f1); copy it, then: make setup WHEELHOUSE=wheelhouse"

clean: ## Remove .venv, caches and results
	rm -rf $(VENV) .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
