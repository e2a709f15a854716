# `make help` lists the targets. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MAX_FREQ ?= 20
UI_PORT ?= 5000
# A study is a file: studies/<NAME>.toml holds its grid, fixed values and report sections,
# with the reason beside each (docs/studies.md). SET overrides values: SET="seeds=4 epochs=3".
NAME ?= default
SET ?=
STUDY_FILE = $(if $(findstring /,$(NAME)),$(NAME),studies/$(NAME).toml)
SET_FLAGS = $(foreach kv,$(SET),--set $(kv))
# `make report` reports on STUDY.
STUDY ?= default
# The setting of the original question (pipeline/config.py ORIGINAL; a test keeps them equal).
ORIGINAL = -P time_steps=2000 -P max_freq=301 -P samples_per_freq=1 -P test_samples_per_freq=1
ORIGINAL_BACKEND ?= jax
EPOCHS ?= 200
# The suite in TEST_WORKERS processes (pytest-xdist; 1: one process, no xdist). Most tests
# wait on a child process or train on one core, so two share two cores well (on 2 cores, from
# a fresh clone: make test 11 min 38 s, measured); the Ray tests and the team server's run in
# one worker each (xdist_group).
TEST_WORKERS ?= 2
PYTEST_PARALLEL = $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)
# The team tracking server (services/server.py): state in .server/, PostgreSQL on 127.0.0.1 only.
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 5000
SERVER_PG_PORT ?= 5433
SERVER_ARGS = --root .server --host $(SERVER_HOST) --port $(SERVER_PORT) --pg-port $(SERVER_PG_PORT)
# Runs go to the project's experiment (opened in the UI's model-training view), or to
# MLFLOW_EXPERIMENT_NAME when set.
EXPERIMENT_ARG = --experiment-name "$${MLFLOW_EXPERIMENT_NAME:-sine-lstm}"
# `mlflow run --env-manager local` runs `python …` from PATH: make it the venv's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv run study report reap test test-slow test-all test-studies lint format bench ui clean
.PHONY: backends causes scale budget remainder extend shape relapse original original-run
.PHONY: server server-stop server-status postgres chromium

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "error: PYTHON=$(PYTHON) is Python " + sys.version.split()[0] + ": the project pins its packages for Python 3.11 (docs/troubleshooting.md); install it, or run make PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(BIN)/.installed ## create .venv and install the pinned requirements

run: venv ## one experiment, mlflow run . -P max_freq=20 (MAX_FREQ=… to change), store mlflow.db
	@$(BIN)/python -m pipeline.tracking  # fail in seconds if the tracking server is away
	$(BIN)/mlflow run . -P max_freq=$(MAX_FREQ) --env-manager local $(EXPERIMENT_ARG)
	@echo
	@echo "Results: the run above, in tracking store $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}"
	@echo "Browse and compare runs: make ui    A study of many runs and its report: make study"

study: venv ## run study file NAME (default: studies/default.toml, about 5 min), then its report; SET="seeds=4" overrides
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e study -P file=$(STUDY_FILE) -P set="$(SET)" --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study "$$($(BIN)/python -m pipeline.study $(STUDY_FILE) $(SET_FLAGS) --name)"

# One line per study of the records (docs/results.md): `make shape` is `make study NAME=shape`.
backends: ; @$(MAKE) --no-print-directory study NAME=$@ ## tensorflow vs jax, paired seeds (about 65 min at 10 seeds)
causes: ; @$(MAKE) --no-print-directory study NAME=$@ ## samples_per_freq × target_scale × max_freq 10,50 crossed
scale: ; @$(MAKE) --no-print-directory study NAME=$@ ## target raw vs scaled × max_freq 10…50 × 24 seeds (about 2 h 20 min)
budget: ; @$(MAKE) --no-print-directory study NAME=$@ ## max_freq 10…60 × 16 seeds at 6,000 updates each (about 2 h)
remainder: ; @$(MAKE) --no-print-directory study NAME=$@ ## max_freq 30 × the epoch's last batch (batch_size 29,32,33,36)
extend: ; @$(MAKE) --no-print-directory study NAME=$@ ## max_freq 20–50 to 24,000 updates, stopped once learned (1 h 30 min)
shape: ; @$(MAKE) --no-print-directory study NAME=$@ ## max_freq 10…50 by 5 × 32 seeds, 6,000 updates, stopped once learned
relapse: ; @$(MAKE) --no-print-directory study NAME=$@ ## shape's seeds 0…15 at 20–40 to the full budget, not stopped
original: ; @$(MAKE) --no-print-directory study NAME=$@ ## the asker's setting (2,000-point series, max_freq 301), raw vs scaled

original-run: venv ## one run of the asker's setting, target raw (EPOCHS=…)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . $(ORIGINAL) -P epochs=$(EPOCHS) -P backend=$(ORIGINAL_BACKEND) --env-manager local $(EXPERIMENT_ARG)

report: venv ## the report of study STUDY (default: default) in reports/STUDY/
	$(BIN)/python -m analysis --study $(STUDY)

reap: venv ## mark RUNNING runs of study STUDY whose process died (no heartbeat 10 min) KILLED
	$(BIN)/python -m pipeline.reap --study $(STUDY)

test: venv postgres ## the test suite (slow tests excluded; see test-all), TEST_WORKERS processes
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

test-slow: venv postgres chromium ## only the tests marked slow (CI runs make test, then this)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m slow

test-all: venv postgres chromium ## the whole suite: make test and make test-slow in one run
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "slow or not slow"

test-studies: venv ## every study file of studies/ run in smoke mode with its report (pytest -k study_file)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "slow or not slow" -k study_file

lint: venv ## ruff check and format check, and the import floors' contracts (docs/architecture.md)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache

format: venv ## ruff format and autofix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: venv ## the benchmarks (about 40 minutes): main vs bare Keras, fixed costs, fit, sweeps, analysis, server
	$(BIN)/python benchmarks/bench_main.py
	$(BIN)/python benchmarks/bench_fixed_costs.py
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_analysis.py
	$(BIN)/python benchmarks/bench_executors.py
	$(BIN)/python benchmarks/bench_server.py

ui: venv ## the MLflow UI on the store (UI_PORT=5000): prints a link to the newest study's runs, answers in about 30 s, holds this shell until Ctrl-C
	@$(BIN)/python -m pipeline.tracking --ui_link http://127.0.0.1:$(UI_PORT)
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port $(UI_PORT)

clean: ## remove the local tracking store and caches (keeps .venv)
	rm -rf mlflow.db mlruns mlartifacts .pytest_cache .ruff_cache

server: venv postgres ## the team tracking server (SERVER_HOST=0.0.0.0 to share it), state in .server/
	$(BIN)/python -m services.server start $(SERVER_ARGS)

server-stop: ## stop the team tracking server and its PostgreSQL
	$(BIN)/python -m services.server stop $(SERVER_ARGS)

server-status: ## what of the team tracking server runs (exit status 3: stopped)
	$(BIN)/python -m services.server status $(SERVER_ARGS)

chromium: ## install Debian's chromium package (apt-get) for the slow UI test, unless a chromium is on PATH
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	sudo=; if [ "$$(id -u)" -ne 0 ]; then \
		if command -v sudo >/dev/null; then sudo=sudo; else \
			echo "error: chromium is not installed and installing it needs root: install Debian's chromium package (the slow UI test drives it headless)" >&2; exit 2; \
		fi; \
	fi; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

postgres: ## install Debian's postgresql package (apt-get), unless PostgreSQL is there already (POSTGRES_BINDIR, initdb on PATH)
	@if [ -n "$$POSTGRES_BINDIR" ] || command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then \
		exit 0; \
	fi; \
	sudo=; if [ "$$(id -u)" -ne 0 ]; then \
		if command -v sudo >/dev/null; then sudo=sudo; else \
			echo "error: PostgreSQL is not installed and installing it needs root: install Debian's postgresql package, or set POSTGRES_BINDIR to the bin folder of an installed PostgreSQL (docs/troubleshooting.md)" >&2; exit 2; \
		fi; \
	fi; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
