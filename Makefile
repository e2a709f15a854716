# `make help` lists the targets. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MAX_FREQ ?= 20
UI_PORT ?= 5000
# The default study: 5 max_freqs × 5 seeds × 200 epochs on jax (faster than TensorFlow on a
# CPU: benchmarks/README.md; whether the two are equivalent waits for a `make backends`
# record: docs/results.md), about 5 minutes on 2 cores.
STUDY ?= default
MAX_FREQS ?= 5,10,20,30,40
SEEDS ?= 5
STUDY_BACKEND ?= jax
BACKEND_SEEDS ?= 20
CAUSE_SEEDS ?= 10
CAUSE_BACKEND ?= jax
# The budget study: every max_freq gets the same number of optimizer updates.
BUDGET_MAX_FREQS ?= 10,20,30,40,50,60
BUDGET_SEEDS ?= 16
BUDGET_STEPS ?= 6000
# Does divergence peak at max_freq 30 in the budget study because an epoch of its 290 series
# ends on a batch of 2? batch_size 29, 32, 33, 36 end each epoch on a batch of 29 (full), 2, 26
# and 2 (the answer, not supported: docs/results.md, "Why is max_freq 30 the worst?").
REMAINDER_BATCHES ?= 29,32,33,36
# Failure or delay, by experiment: max_freq 20–50 at 24,000 updates (4× the budget study's),
# checked every 150 updates (so 6,000 is a check), stopping each run once it is confirmed off
# the plateau: only the runs still on it pay for the longer budget.
EXTEND_MAX_FREQS ?= 20,30,40,50
EXTEND_SEEDS ?= 24
EXTEND_STEPS ?= 24000
CHECK_EVERY ?= 150
# The shape of divergence: max_freq 10…50 in steps of 5, 6,000 updates, each run stopped once
# confirmed off the plateau (stop_on_escape: it counts runs that never learned; see relapse).
# SHAPE_FIRST_SEED grows the study later: its seeds follow.
SHAPE_MAX_FREQS ?= 10,15,20,25,30,35,40,45,50
SHAPE_SEEDS ?= 32
SHAPE_FIRST_SEED ?= 0
# Do stopped runs' verdicts hold to the budget? The shape study's first seeds at 20–40, trained
# to the full 6,000 updates without stopping: how often a run that left the plateau is back on it
# at the end (a relapse), and the end-of-budget divergence beside shape's stopped counts.
RELAPSE_MAX_FREQS ?= 20,25,30,35,40
RELAPSE_SEEDS ?= 16
# Does scaling the target remove divergence where it is highest? target_scale none and max_freq
# × max_freq 10…50 × 24 seeds at the reference 200 epochs, trained to the end (no stopping), so
# every run has its divergence verdict and its error (about 70 min on 2 cores).
SCALE_MAX_FREQS ?= 10,20,30,40,50
SCALE_SEEDS ?= 24
# The setting of the original question (pipeline/config.py ORIGINAL; a test keeps them equal).
ORIGINAL = -P time_steps=2000 -P max_freq=301 -P samples_per_freq=1 -P test_samples_per_freq=1
ORIGINAL_BACKEND ?= jax
# Its record: the target raw and scaled, ORIGINAL_SEEDS seeds each, at the reference 200 epochs.
ORIGINAL_SEEDS ?= 4
EPOCHS ?= 200
# The suite in TEST_WORKERS processes (pytest-xdist; 1: one process, no xdist). Most tests
# wait on a child process or train on one core, so two share two cores well (on 2 cores: make
# test about 8 min, make test-slow about 14); the Ray tests and the team server's run in one
# worker each (xdist_group).
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
.PHONY: help venv run study report reap test test-slow test-all lint format bench ui clean
.PHONY: backends causes scale budget remainder extend shape relapse original original-run
.PHONY: server server-stop server-status postgres

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

study: venv ## the default study (5 max_freqs × 5 seeds on jax, ~5 min), then its report
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=$(MAX_FREQS) -P seeds=$(SEEDS) -P backend=$(STUDY_BACKEND) -P study=$(STUDY) --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study $(STUDY)

backends: venv ## tensorflow vs jax: max_freqs 10,20,30 × 20 seeds each (about 65 min), then the report
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=10,20,30 -P seeds=$(BACKEND_SEEDS) -P backend=tensorflow,jax -P study=backends --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study backends

causes: venv ## the three claimed causes crossed: samples_per_freq 1,10 × target_scale × max_freq 10,50, then the report
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=10,50 -P seeds=$(CAUSE_SEEDS) -P samples_per_freq=1,10 -P target_scale=none,max_freq -P backend=$(CAUSE_BACKEND) -P study=causes --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study causes

scale: venv ## scaling the target where divergence is highest: target_scale none,max_freq × max_freq 10…50 × 24 seeds, 200 epochs (about 70 min)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=$(SCALE_MAX_FREQS) -P seeds=$(SCALE_SEEDS) -P target_scale=none,max_freq -P backend=$(STUDY_BACKEND) -P study=scale --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study scale

budget: venv ## failure or delay? max_freq 10…60 × 16 seeds, 6,000 updates each on jax (about 2 h), then the report
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=$(BUDGET_MAX_FREQS) -P seeds=$(BUDGET_SEEDS) -P train_steps=$(BUDGET_STEPS) -P backend=$(STUDY_BACKEND) -P study=budget --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study budget

remainder: venv ## the last partial batch as a factor: max_freq 30 × batch_size 29,32,33,36 × 16 seeds, 6,000 updates (about 60 min)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=30 -P seeds=$(BUDGET_SEEDS) -P batch_size=$(REMAINDER_BATCHES) -P train_steps=$(BUDGET_STEPS) -P backend=$(STUDY_BACKEND) -P study=remainder --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study remainder

extend: venv ## failure or delay: max_freq 20–50 × 24 seeds to 24,000 updates, stopping once off the plateau (1 h 30 min measured)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=$(EXTEND_MAX_FREQS) -P seeds=$(EXTEND_SEEDS) -P train_steps=$(EXTEND_STEPS) -P check_every=$(CHECK_EVERY) -P stop_on_escape=true -P backend=$(STUDY_BACKEND) -P study=extend --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study extend

shape: venv ## divergence against max_freq 10…50 (steps of 5) × 32 seeds, 6,000 updates, stopped once off the plateau (about 1 h 30 min)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=$(SHAPE_MAX_FREQS) -P seeds=$(SHAPE_SEEDS) -P first_seed=$(SHAPE_FIRST_SEED) -P train_steps=$(BUDGET_STEPS) -P stop_on_escape=true -P backend=$(STUDY_BACKEND) -P study=shape --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study shape

relapse: venv ## shape's seeds 0…15 at max_freq 20–40 to the full 6,000 updates, not stopped: how often a learned run falls back (about 75 min)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep -P max_freqs=$(RELAPSE_MAX_FREQS) -P seeds=$(RELAPSE_SEEDS) -P train_steps=$(BUDGET_STEPS) -P backend=$(STUDY_BACKEND) -P study=relapse --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study relapse

original: venv ## the asker's setting (one 2,000-point series per frequency 1…300) with the target raw and scaled × 4 seeds, 200 epochs, then the report
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . -e sweep $(subst max_freq=,max_freqs=,$(ORIGINAL)) -P seeds=$(ORIGINAL_SEEDS) -P epochs=$(EPOCHS) -P target_scale=none,max_freq -P backend=$(ORIGINAL_BACKEND) -P study=original --env-manager local $(EXPERIMENT_ARG)
	$(BIN)/python -m analysis --study original

original-run: venv ## one run of the asker's setting, target raw (EPOCHS=…)
	@$(BIN)/python -m pipeline.tracking
	$(BIN)/mlflow run . $(ORIGINAL) -P epochs=$(EPOCHS) -P backend=$(ORIGINAL_BACKEND) --env-manager local $(EXPERIMENT_ARG)

report: venv ## the report of study STUDY (default: default) in reports/STUDY/
	$(BIN)/python -m analysis --study $(STUDY)

reap: venv ## mark RUNNING runs of study STUDY whose process died (no heartbeat 10 min) KILLED
	$(BIN)/python -m pipeline.reap --study $(STUDY)

test: venv postgres ## the test suite (slow tests excluded; see test-all), TEST_WORKERS processes
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

test-slow: venv postgres ## only the tests marked slow (CI runs make test, then this)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m slow

test-all: venv postgres ## the whole suite: make test and make test-slow in one run
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "slow or not slow"

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

ui: venv ## the MLflow UI on the store (UI_PORT=5000), its link to the project's runs printed first
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
