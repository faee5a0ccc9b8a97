# Two commands for a new user:  make run   (every notebook, quick profile, into runs/)
#                               make test  (unit tests + strict nbval over the stored notebooks)
# Both create .venv with the exact pins of constraints.txt the first time and reuse it afterwards.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# the repository's tools (kae_tools): kae run, kae sweep, kae seeds, kae readme, kae pair, kae clean, kae zoo
KAE := $(BIN)/kae
STAMP := $(VENV)/.kae-installed
# notebooks to act on (stems or numbers), empty = all; extra runner arguments, e.g. ARGS="-p SEED 1"
NB ?=
ARGS ?=
JOBS ?= 1
# zoo entries to build (empty = every entry of ZOO_PROFILE: auto = all on a GPU, quick on a CPU), and where
NAMES ?=
ZOO_PROFILE ?= auto
DEVICE ?= auto
# numerics of the zoo builds: auto (bf16 where the hardware runs it natively), fp32 or bf16
PRECISION ?= auto
# a sweep file for `make sweep`, e.g. SWEEP=sweeps/kd_temperature.yaml
SWEEP ?=
# make gpu-check: its steps (smoke zoo notebooks), the notebooks of the last (empty: all, by priority), and the
# seconds after which it stops (one command of at most 10 minutes on a lent GPU)
GPU_STEPS ?= smoke zoo notebooks
GPU_NB ?=
GPU_DEADLINE ?= 570
GPU_CHECK_EXPORT ?=

# kernels and notebooks started by make: plain-text progress bars, the venv's own kernel spec
export KAE_PROGRESS ?= plain
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter
export PYTHONDONTWRITEBYTECODE := 1

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p tests.nbval_plugin

# Debian's Chromium for the browser tests; installed by `make browser-deps` when missing (as root, or with sudo)
CHROMIUM ?= chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup run test test-unit test-full-smoke test-notebooks test-notebooks-fp32 test-browser browser-deps docs pair outputs bench bench-precision reproduce \
	gpu-estimate gpu-check \
	sweep sweep-example seeds readme lint freeze clean zoo zoo-list zoo-verify

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

setup: $(STAMP)  ## create .venv and install kae_utils and kae_tools (the `kae` command) with the pinned dependencies

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is needed (3.11 recommended); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,docs,browser]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	@touch $(STAMP)

run: setup  ## run every notebook headlessly (quick profile) into runs/ and print a summary
	$(KAE) run $(NB) --profile quick --out runs --jobs $(JOBS) $(ARGS)

test: setup  ## unit tests, the site and JupyterLab in a browser, then strict nbval over the stored notebooks
	$(MAKE) --no-print-directory test-unit test-browser test-notebooks

test-unit: setup  ## unit tests, with every notebook's full profile at smoke scale (tests/test_full_profile.py, about 5 min)
	$(PY) -m pytest tests/ -p no:cacheprovider

test-full-smoke: setup  ## only the full profiles at smoke scale (KAE_SCALE=smoke; also part of test-unit)
	$(PY) -m pytest tests/test_full_profile.py tests/test_device_agnostic.py -p no:cacheprovider

test-browser: setup docs browser-deps  ## the built site and JupyterLab with widgets, in headless Chromium
	$(PY) -m pytest tests/browser -m browser -p no:cacheprovider

browser-deps:  ## install Debian's chromium (apt-get) when it is missing; Playwright drives it, downloads none
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  echo "$(CHROMIUM) not found: installing Debian's chromium with apt-get (about 2 minutes)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@command -v $(CHROMIUM) >/dev/null || { echo "$(CHROMIUM) is still missing after apt-get"; exit 1; }

docs: setup  ## build the site from the stored notebooks (no execution) into docs/_build/html; warnings fail
	$(PY) docs/build_site.py

pair: setup  ## rewrite the notebooks' paired text forms (notebooks/NN_*.py, jupytext percent) from the .ipynb
	$(KAE) pair $(NB)

test-notebooks: setup
	CUDA_VISIBLE_DEVICES= $(PY) -m pytest $(NBVAL) -p no:cacheprovider notebooks/

test-notebooks-fp32: setup  ## strict nbval with float32 forced (its own cache: cache keys do not include the numerics): do the stored outputs hold on a machine without bf16? (not in make test: CI's time)
	KAE_PRECISION=fp32 KAE_CACHE_DIR=.cache/kae-fp32 CUDA_VISIBLE_DEVICES= $(PY) -m pytest $(NBVAL) -p no:cacheprovider notebooks/

outputs: setup  ## regenerate the stored outputs in place (quick profile, CPU), then results/quick and README
	$(KAE) run $(NB) --in-place --out runs/outputs
	$(KAE) pair $(NB)
	$(KAE) readme --collect runs/outputs --profile quick

bench: setup  ## generator speeds, training throughput per numerics setting, the runner's overhead per run (local pool vs Dask), notebook quick-profile times from a cold cache (results/*.tsv)
	$(PY) -m data_scripts.bench_generators
	$(PY) -m data_scripts.bench_training
	$(PY) -m data_scripts.bench_runner
	$(KAE) run $(NB) --profile quick --fresh-cache --out runs_bench --timings results/timings_quick.tsv

bench-precision: setup  ## every notebook as a strict nbval run under fp32 (NCHW), fp32 (channels-last) and the default numerics, cold cache: wall times, cells that differ, claims that flip (results/precision_quick.tsv; SETTINGS="fp32 default" runs a subset)
	$(PY) -m data_scripts.bench_precision $(NB) $(if $(SETTINGS),--settings $(SETTINGS))

reproduce: setup  ## full profile (paper scale, several seeds; meant for a GPU) into runs_full/ and results/full
	$(KAE) run $(NB) --profile full --out runs_full --timeout 36000 $(ARGS)
	$(KAE) readme --collect runs_full --profile full

gpu-estimate: setup  ## the full profiles at smoke scale into runs/full-smoke, then each GPU step's time estimated from its counts (results/gpu_estimate.tsv, docs/profiles.md)
	rm -rf runs/full-smoke
	KAE_SMOKE_OUT=runs/full-smoke $(PY) -m pytest tests/test_full_profile.py -p no:cacheprovider -q
	cp runs/full-smoke/timings.tsv results/full_smoke_cpu.tsv
	$(PY) -m data_scripts.gpu_estimate runs/full-smoke
	$(KAE) readme

gpu-check: setup  ## on a lent GPU: smoke on CUDA, the full zoo, the full profiles by priority, each step committed (GPU_STEPS, GPU_NB, GPU_CHECK_EXPORT)
	$(PY) -m data_scripts.gpu_check --steps $(GPU_STEPS) $(if $(GPU_NB),--nb $(GPU_NB),) --deadline-s $(GPU_DEADLINE) \
	  $(if $(GPU_CHECK_EXPORT),--export $(GPU_CHECK_EXPORT),)

zoo: setup  ## train the zoo entries that are missing or stale (NAMES=..., DEVICE=cuda, ZOO_PROFILE=full), then verify
	$(KAE) zoo build $(NAMES) --device $(DEVICE) --profile $(ZOO_PROFILE) --precision $(PRECISION)
	$(KAE) zoo verify

zoo-list: setup  ## the zoo's entries: task, architecture, parameters, held-out metric, used by, built or not
	$(KAE) zoo list

zoo-verify: setup  ## rehash every zoo file against zoo/manifest.json (exit 1 on any mismatch)
	$(KAE) zoo verify

sweep: setup  ## a parameter sweep: make sweep SWEEP=sweeps/NAME.yaml [NB=..] [JOBS=2] [ARGS=--resume], into runs/sweeps/NAME/
	@test -n "$(SWEEP)" || { echo "usage: make sweep SWEEP=sweeps/NAME.yaml (shipped: $$(ls sweeps | tr '\n' ' '))" >&2; exit 2; }
	$(KAE) sweep $(SWEEP) $(NB) --jobs $(JOBS) $(ARGS)

sweep-example: setup  ## the example sweep of docs/batch.md (notebook 01, temperature x seed; ~5 min) into results/sweeps/kd_temperature/
	$(KAE) sweep sweeps/kd_temperature.yaml --out runs/sweeps/kd_temperature --jobs $(JOBS) --resume $(ARGS)
	$(KAE) readme --collect-sweep runs/sweeps/kd_temperature

seeds: setup  ## every notebook's quick profile at seeds 0-4 (about an hour on 2 cores; resumes) into results/seeds/ and the README
	$(KAE) seeds $(NB) --jobs $(JOBS) $(ARGS)

readme: setup  ## regenerate every generated block of README.md and docs/*.md (index, envelope, zoo, sweeps, tables) from results/
	$(KAE) readme

lint: setup  ## ruff over the packages, tests, docs and notebooks; stored notebooks clean and their text forms in sync
	$(BIN)/ruff check kae_utils kae_tools tests docs notebooks
	$(KAE) clean --check notebooks/[0-9][0-9]_*.ipynb
	$(KAE) pair --check

freeze: setup  ## rewrite constraints.txt from the current environment (after changing a pin)
	@{ echo "# Exact pins used by the Makefile (pip install -c constraints.txt). Direct dependencies first,"; \
	   echo "# then everything they pull in. environment.yml carries the same pins for the direct ones (tested)."; \
	   echo "# Regenerate with: make freeze"; \
	   $(PY) -m pip freeze --exclude-editable | grep -v -iE '^(kae.utils|pip|setuptools|wheel)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:  ## remove run outputs, caches and the built site (not .venv)
	rm -rf runs runs_bench runs_full .cache .pytest_cache docs/_build
