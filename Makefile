# Karya — every target installs what it needs first (make install is a prerequisite of all).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KARYA := $(BIN)/karya
STACK_ENV := .local/stack.env
DEMO_ARGS ?=
BENCH_ARGS ?=
FAULTS_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install lock stack-up stack-down stack-status test test-unit promtool browser lint demo bench faults schemas clean-local observe observe-stop

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet -c constraints.txt --upgrade pip
	@$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

stack-up: install
	@$(KARYA) stack up

stack-down: install
	@$(KARYA) stack down

stack-status: install
	@$(KARYA) stack status

# apt-get update once for the Debian packages below: skipped when this checkout updated the lists less than an hour
# ago (a fresh machine that lacks both promtool and chromium updates them for the first and reuses them for the second).
APT_UPDATE := { test -n "$$(find .local/.apt-updated -mmin -60 2>/dev/null)" || { apt-get update -qq && mkdir -p .local && touch .local/.apt-updated; }; }

# promtool for tests/unit/test_alert_rules.py, from Debian's prometheus package when it is not on PATH (as root).
# Its postinst would start the prometheus daemon; /usr/sbin/policy-rc.d (exit 101) on these machines prevents that.
promtool:
	@command -v promtool >/dev/null || ($(APT_UPDATE) && apt-get install -y -qq --no-install-recommends prometheus)

# A local Prometheus (Debian's package, installed with promtool) scraping the running services with every rule file
# loaded, on loopback; state and pid in .local/observe (deploy/prometheus/observe.py). The demo prints its services'
# ports: OBSERVE_ARGS="--target orders=127.0.0.1:PORT --target ledger=... --target gateway=...", "--port 0".
OBSERVE_ARGS ?=
observe: install promtool
	@$(BIN)/python deploy/prometheus/observe.py start $(OBSERVE_ARGS)

observe-stop:
	@$(BIN)/python deploy/prometheus/observe.py stop

# The browser tests' parts: Debian's chromium package (as root; Playwright's own browser download is refused on these
# machines, so never `playwright install`: the tests point Playwright at the system executable) and Playwright for
# Python at its pinned version (a dev dependency; installed here too if a venv predates it).
browser: install
	@command -v chromium >/dev/null || ($(APT_UPDATE) && apt-get install -y -qq chromium)
	@$(BIN)/python -c 'import playwright' 2>/dev/null || $(BIN)/pip install --quiet -c constraints.txt playwright

test: install promtool browser
	@$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install promtool
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: install
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

# Rewrite constraints.txt from the venv's versions of karya[dev] (after a pyproject change or a pip install -U).
lock:
	@test -x $(BIN)/python || { echo "make install first"; exit 1; }
	@$(BIN)/python .ci/lock.py

schemas: install
	@$(KARYA) schemas gen
	@$(KARYA) docs settings

demo: install
	@$(KARYA) stack up --quiet
	@source $(STACK_ENV) && $(KARYA) demo $(DEMO_ARGS)

bench: install
	@$(KARYA) stack up --quiet
	@source $(STACK_ENV) && $(BIN)/python -m bench $(BENCH_ARGS)

# Fault experiments against a PRIVATE PostgreSQL + Kafka of their own (.local/faults, ports 17432/17092/17093),
# never the shared stack; FAULTS_ARGS="--quick", "--only R4 R8", "--orders 4000" (see faults/__main__.py).
faults: install
	@$(BIN)/python -m faults $(FAULTS_ARGS)
