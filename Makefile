# QPI developer commands. Each target delegates to one tool; see README.md.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
UV    := $(shell command -v uv 2>/dev/null || echo $(BIN)/uv)

.PHONY: setup proto proto-check build dashboard dashboard-deps dashboard-api demo serve test \
	test-deps test-py test-sqlite test-postgres test-e2e-dashboard lint format bench clean

## setup: create .venv with every part and extra installed (uv, from the lock file)
# Bytecode is compiled here, once: where PYTHONDONTWRITEBYTECODE is set (it is on the CI
# machines) Python never caches it, so every process (each `qpi serve`, driver and parser
# worker the tests start) compiled its imports again: `qpi superuser upsert` took 8.6 s
# instead of 3.8 s. A source edited later is compiled in memory until the next setup.
setup:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.8"
	uv sync --all-extras --locked --compile-bytecode
	$(BIN)/python -m compileall -q -j 0 proto server driver sdk gateway

## proto: regenerate the Python stubs from proto/qpi/v1/*.proto
proto: setup
	./scripts/gen_proto.sh

## build: everything needed to run: the Python parts and the dashboard (dashboard/dist)
build: setup dashboard

## dashboard: dashboard/dist (npm ci + type check + vite build + size budget); Node.js is
## needed only here, never at run time. Without npm the server explains at /dashboard/.
dashboard:
	@if command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory dashboard-deps && cd dashboard && npm run --silent build; \
	else \
		echo "npm not found: skipping the dashboard build (install Node.js >= 20.19 to build it)"; \
	fi

dashboard-deps: dashboard/node_modules/.package-lock.json

dashboard/node_modules/.package-lock.json: dashboard/package-lock.json dashboard/package.json
	cd dashboard && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

## dashboard-api: regenerate the dashboard's API types from the gateway's OpenAPI document
dashboard-api: setup dashboard-deps
	./scripts/gen_dashboard_api.sh

## demo: server with an embedded SQLite database, a mock driver and the dashboard
demo: build
	$(BIN)/python scripts/demo.py

serve: demo

## test: lint, then the whole suite on SQLite and again on PostgreSQL, then the browser tests
test: setup test-deps lint test-sqlite test-postgres test-e2e-dashboard

## test-deps: the real OpenID Connect provider the OAuth2 login tests start (npm, lock file)
test-deps:
	npm ci --prefix tests/support/oidc --no-audit --no-fund --loglevel=error

## test-py: only the Python driver's tests (unit and in-process integration; no server, no
## database): the quick loop while working on qpi-driver. PYTEST_ARGS adds options, e.g. -x.
test-py: setup
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/driver tests/integration/driver $(PYTEST_ARGS)

test-sqlite:
	QPI_TEST_DATABASE=sqlite $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

test-postgres:
	./scripts/ensure_postgres.sh
	# Every suite that touches a database runs again on PostgreSQL (driver and unit tests do not).
	QPI_TEST_DATABASE=postgres $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/integration tests/e2e \
		--ignore=tests/integration/driver --ignore=tests/e2e/driver --ignore=tests/e2e/test_cli.py \
		--ignore=tests/integration/replicas

## test-e2e-dashboard: dashboard unit tests (vitest) and browser tests (Playwright driving
## Debian's chromium against real `qpi serve` and `qpi-driver` processes)
test-e2e-dashboard: setup test-deps dashboard-deps
	cd dashboard && npm run --silent build && npx vitest run && npx playwright test

## lint: ruff, mypy, buf lint, stale-stub and stale-dashboard-client checks
lint: setup dashboard-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/buf lint
	./scripts/check_proto_current.sh
	./scripts/check_dashboard_api_current.sh

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: every benchmark (SQLite and PostgreSQL), tables written to docs/benchmarks.md
bench: setup
	./scripts/ensure_postgres.sh
	$(BIN)/python bench/run_all.py

clean:
	rm -rf qpi_data bin .pytest_cache .mypy_cache .ruff_cache dashboard/dist dashboard/test-results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
