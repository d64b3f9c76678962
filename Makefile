# Tessera: `make run` brings the suite up behind the gateway; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
SERVICES := auth applets answers mailer sync chat

UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
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
tools: ## install uv and nginx when missing
	@command -v $(UV) >/dev/null 2>&1 || { echo "installing uv"; python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv; }
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
		if [ "$$(id -u)" = 0 ]; then echo "installing nginx"; \
			(apt-get install -y -qq nginx >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nginx >/dev/null)); \
		else echo "nginx is missing: sudo apt-get install nginx"; exit 1; fi; }

.venv/.synced: uv.lock pyproject.toml $(wildcard services/*/pyproject.toml) libs/common/pyproject.toml
	@$(MAKE) --no-print-directory tools
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
run: tools migrate ## start every service and the gateway (Ctrl-C stops all)
	@echo "Tessera on http://$${GATEWAY_HOST:-127.0.0.1}:$${GATEWAY_PORT:-8080} (docs: /auth/docs, /mail/docs, ...)"
	$(UV) run --no-sync honcho start -f Procfile

.PHONY: test
test: install tools ## run every test against the real servers
	$(UV) run --no-sync pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

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

.PHONY: bench
bench: install ## event latency from commit to consumer (p50/p99 over 1,000 events)
	$(UV) run --no-sync python bench/event_latency.py --events 1000
