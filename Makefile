# Tessera: `make run` brings the suite up behind the gateway; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv is pinned and private to the checkout: `make tools` puts it in .tools/ (a venv made by
# python3 -m venv), so nothing needs it on PATH. UV=/path/to/uv uses another one.
UV_VERSION := 0.13.8
TOOLS := $(CURDIR)/.tools
UV ?= $(TOOLS)/bin/uv
PYTHON3 ?= python3
# uv trusts the system's certificate store (as curl and git do), not only its bundled roots.
UV_SYSTEM_CERTS ?= 1
export UV_SYSTEM_CERTS
PYTEST_WORKERS ?= 2

# The real servers the tests use (see README); override to point elsewhere.
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672/
export TEST_POSTGRES_URL TEST_REDIS_URL TEST_RABBITMQ_URL

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: tools
tools: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/.uv-$(UV_VERSION)) ## uv (pinned, into .tools/) and nginx when missing
	@command -v "$(UV)" >/dev/null || { echo "uv not found: UV=$(UV)"; exit 1; }
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
		if [ "$$(id -u)" = 0 ]; then echo "installing nginx"; \
			(apt-get install -y -qq nginx >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nginx >/dev/null)); \
		else echo "nginx is missing: sudo apt-get install nginx"; exit 1; fi; }

# Debian's python3 refuses `pip install` outside a venv (PEP 668), hence the private venv.
$(TOOLS)/.uv-$(UV_VERSION):
	@echo "installing uv $(UV_VERSION) into .tools/"
	@$(TOOLS)/bin/python -c '' 2>/dev/null || $(PYTHON3) -m venv --clear $(TOOLS) || { \
		if [ "$$(id -u)" = 0 ]; then echo "installing python3-venv"; \
			(apt-get install -y -qq python3-venv >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null)) \
			&& $(PYTHON3) -m venv --clear $(TOOLS); \
		else echo "python3 -m venv does not work: sudo apt-get install python3-venv"; exit 1; fi; }
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@touch $@

.venv/.synced: uv.lock pyproject.toml $(wildcard services/*/pyproject.toml) libs/common/pyproject.toml | tools
	$(UV) sync --locked --all-packages
	@touch $@

.PHONY: install
install: .venv/.synced ## install the workspace (uv sync --locked)

.PHONY: infra
infra: install ## check that PostgreSQL, Redis and RabbitMQ answer
	@$(UV) run --no-sync tessera-admin check-infra

.PHONY: migrate
migrate: infra ## create roles and schemas, then apply every service's migrations
	@$(UV) run --no-sync python scripts/migrate.py

.PHONY: run
run: migrate ## start every service and the gateway, supervised (Ctrl-C stops all)
	@echo "Tessera on http://$${GATEWAY_HOST:-127.0.0.1}:$${GATEWAY_PORT:-8080} (docs: /auth/docs, /mail/docs, ...)"
	@echo "state: .venv/bin/supervisorctl -c .run/supervisord.conf status"
	@$(CURDIR)/.venv/bin/python scripts/run.py

.PHONY: test
test: install ## run every test against the real servers
	$(UV) run --no-sync pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Mutation testing of the kernel's messaging (libs/common/src/tessera/common/messaging/),
# security.py and revocation.py with mutmut 3 (config: [tool.mutmut] in
# libs/common/pyproject.toml), against libs/common/tests only and the real servers. Run from
# libs/common: mutmut copies src/ and tests/ to libs/common/mutants/ (git-ignored; the
# sources themselves are never touched), records which tests call each function, then runs
# only those for each mutant, MUTATION_WORKERS at a time. ~1,900 mutants, about 65 minutes
# on 2 cores from scratch; a rerun only tests mutants of functions that changed. Results:
# `cd libs/common && ../../.venv/bin/mutmut results` (survivors), `mutmut show <name>` (the
# diff), `mutmut browse`. Not part of `make test`. PYTHONPATH makes the programs the tests
# start (tests/programs/) import the mutated copy too. scripts/mutation gives the run a RabbitMQ
# vhost of its own (a mutant may declare anything; it goes with the vhost).
# `make mutation MUTANTS="name ..."` runs the named mutants again (after a new test, say).
MUTATION_WORKERS ?= 2
.PHONY: mutation
mutation: install ## mutation testing of the kernel's messaging and token checks (slow)
	bash scripts/mutation $(UV) $(MUTATION_WORKERS) $(MUTANTS)

.PHONY: lint
lint: install ## ruff (lint + format) and mypy
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy libs/common/src services/*/src

.PHONY: format
format: install
	$(UV) run --no-sync ruff format .
	$(UV) run --no-sync ruff check --fix .

.PHONY: contracts
contracts: install ## regenerate contracts/ (event JSON Schemas and AsyncAPI documents)
	$(UV) run --no-sync python scripts/contracts.py write

.PHONY: bench-request
bench-request: install ## one authenticated request against its floor (wrk; README Benchmarks)
	@command -v wrk >/dev/null 2>&1 || command -v hey >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null); \
		else echo "install wrk: sudo apt-get install wrk"; exit 1; fi; }
	$(UV) run --no-sync python bench/request_path.py

.PHONY: bench
bench: install ## event latency from commit to consumer (p50/p99 over 1,000 events)
	$(UV) run --no-sync python bench/event_latency.py --events 1000

.PHONY: bench-applets
bench-applets: install ## an applet of 20 x 30 items created and replaced through nginx, against asyncpg
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null); \
		else echo "install wrk: sudo apt-get install wrk"; exit 1; fi; }
	$(UV) run --no-sync python bench/applets.py

.PHONY: bench-mailer
bench-mailer: install ## emails/s from queued events to SMTP, against aiosmtplib alone
	$(UV) run --no-sync python bench/mailer.py

.PHONY: bench-sync
bench-sync: install ## a pull of 1,000 x 1,000 attributes, re-pulls, one huge event, against COPY
	$(UV) run --no-sync python bench/sync.py
