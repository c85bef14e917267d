# QPI developer commands. Each target delegates to one tool; see README.md.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
UV    := $(shell command -v uv 2>/dev/null || echo $(BIN)/uv)

.PHONY: setup proto proto-check build demo serve test test-deps test-sqlite test-postgres lint format bench clean

## setup: create .venv with every part and extra installed (uv, from the lock file)
setup:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.8"
	uv sync --all-extras --locked

## proto: regenerate the Python stubs from proto/qpi/v1/*.proto
proto: setup
	./scripts/gen_proto.sh

## build: everything needed to run (stubs are committed; the dashboard arrives with its issue)
build: setup

## demo: server with an embedded SQLite database and a mock driver attached
demo: setup
	$(BIN)/python scripts/demo.py

serve: demo

## test: lint, then the whole suite on SQLite and again on PostgreSQL
test: setup test-deps lint test-sqlite test-postgres

## test-deps: the real OpenID Connect provider the OAuth2 login tests start (npm, lock file)
test-deps:
	npm ci --prefix tests/support/oidc --no-audit --no-fund --loglevel=error

test-sqlite:
	QPI_TEST_DATABASE=sqlite $(BIN)/pytest -q -p no:cacheprovider

test-postgres:
	./scripts/ensure_postgres.sh
	# Every suite that touches a database runs again on PostgreSQL (driver and unit tests do not).
	QPI_TEST_DATABASE=postgres $(BIN)/pytest -q -p no:cacheprovider tests/integration tests/e2e \
		--ignore=tests/integration/driver --ignore=tests/e2e/driver --ignore=tests/e2e/test_cli.py

## lint: ruff, mypy, buf lint, stale-stub check
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/buf lint
	./scripts/check_proto_current.sh

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: hot-path benchmarks (medians and ratios)
bench: setup
	$(BIN)/python bench/dispatch_latency.py
	$(BIN)/python bench/driver_overhead.py
	$(BIN)/python bench/aer_transpile.py
	$(BIN)/python bench/gateway_job_pages.py
	$(BIN)/python bench/nng_vs_grpc.py

clean:
	rm -rf qpi_data bin .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
