# RevOps Suite — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv on PATH, else the module pip installed (works wherever pip put its scripts).
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?= -n auto
# Source trees mypy checks (config: [tool.mypy] in pyproject.toml): every package.
TYPECHECK_PATHS ?= packages/revops-core/src src/revops_suite servers/sales/src servers/marketing/src servers/cs/src
export UV_LINK_MODE ?= copy

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: setup
setup: ## Install uv if missing, then the locked environment (uv sync --frozen), bytecode compiled
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --user --quiet uv
	@$(UV) sync --frozen --all-packages --compile-bytecode

.PHONY: demo
demo: setup ## Run the walkthrough on the embedded SQLite default
	@$(UV) run --frozen python -m revops_suite.demo

.PHONY: test
test: setup ## Run the whole test suite
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## uv.lock up to date, ruff format --check, ruff check and mypy on TYPECHECK_PATHS
	@$(UV) lock --check --quiet
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy $(TYPECHECK_PATHS)

.PHONY: typecheck
typecheck: setup ## mypy on TYPECHECK_PATHS only
	@$(UV) run --frozen mypy $(TYPECHECK_PATHS)

.PHONY: format
format: setup ## Apply ruff formatting and safe fixes
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

.PHONY: bench
bench: setup ## Measure start-up, round trips, RSS and core throughput against a bare SDK server
	@$(UV) run --frozen python -m revops_suite.bench --output docs/benchmarks.md

.PHONY: conformance
conformance: setup ## Run the official MCP conformance scenarios against each server over HTTP (needs npm)
	@$(UV) run --frozen python -m revops_core.conformance

.PHONY: serve-sales serve-marketing serve-cs
serve-sales: setup ## Serve the Sales server over streamable HTTP
	@$(UV) run --frozen revops-sales --transport http --port 8101
serve-marketing: setup ## Serve the Marketing server over streamable HTTP
	@$(UV) run --frozen revops-marketing --transport http --port 8102
serve-cs: setup ## Serve the Customer Success server over streamable HTTP
	@$(UV) run --frozen revops-cs --transport http --port 8103

.PHONY: compose-up compose-down
compose-up: ## Start postgres, redis and the three servers with Docker Compose
	docker compose up -d --build
compose-down: ## Stop the Compose stack
	docker compose down
