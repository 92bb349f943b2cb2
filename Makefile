# The two commands in the README: `make run` and `make test`. Everything they need is installed here.
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_DB ?= fengqiao_test
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/$(PG_TEST_DB)

.PHONY: run test setup assets test-sqlite test-postgres lint translations bench

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

translations: $(BIN)/.installed
	$(BIN)/pybabel -q compile --use-fuzzy -d translations

## The browser bundles (bpmn-js) from the pinned npm packages; needs node and npm (see scripts/build-assets.sh).
assets:
	scripts/build-assets.sh

setup: $(BIN)/.installed translations assets

## Serve Fengqiao on http://127.0.0.1:5000 with SQLite and the demo data, and a worker in the same process.
run: setup
	FENGQIAO_DEMO=1 $(BIN)/flask --app wsgi init-db
	FENGQIAO_DEMO=1 $(BIN)/flask --app wsgi load-demo
	FENGQIAO_DEMO=1 $(BIN)/flask --app wsgi serve --host 127.0.0.1 --port 5000

## The whole suite: lint, SQLite pass, PostgreSQL pass.
test: setup
	scripts/ensure-chromium.sh
	scripts/ensure-postgres.sh $(PG_TEST_DB)
	$(MAKE) --no-print-directory lint test-sqlite test-postgres

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy

test-sqlite:
	$(BIN)/pytest -q

test-postgres:
	FENGQIAO_TEST_DATABASE=$(PG_TEST_URL) $(BIN)/pytest -q tests/engine tests/api tests/faults -m "not browser"

## Benchmarks (not part of the test run): one table, each figure with its same-run baseline and the ratio.
## BENCH_ARGS=--quick for small sizes; BENCH_ARGS='--only tasklist,timers' for some of them.
bench: setup
	scripts/ensure-postgres.sh fengqiao_bench
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
