# Every target bootstraps itself (PostgreSQL packages when root, .venv, the package).
.DEFAULT_GOAL := help
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help run test soak test-containers containers-down bench schema bootstrap lint

help:
	@echo "make run     serve on 127.0.0.1:8080 (embedded PostgreSQL under .data/ unless DATABASE_URL)"
	@echo "make test    the test suite against a real PostgreSQL (PYTEST_ARGS=... to pass options)"
	@echo "make soak    the tests too long for make test (marker soak: the failover awaiting pg_cron); CI runs both"
	@echo "make test-containers  only the migration tests in a PostgreSQL container (tests/containers)"
	@echo "make containers-down  stop the container engine scripts/container-engine.sh started"
	@echo "make bench   benchmarks (never part of the tests)"
	@echo "make schema  regenerate sql/schema.sql from a fully migrated database"

$(STAMP): pyproject.toml scripts/bootstrap.sh
	./scripts/bootstrap.sh

bootstrap: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hierarchy run

test: $(STAMP)
	$(VENV)/bin/pytest -q -m "not soak" $(PYTEST_ARGS)

soak: $(STAMP)
	$(VENV)/bin/pytest -q -m soak $(PYTEST_ARGS)

# The tests start (and stop) the engine themselves (scripts/container-engine.sh up/down).
test-containers: $(STAMP)
	$(VENV)/bin/pytest -q tests/containers $(PYTEST_ARGS)

containers-down:
	./scripts/container-engine.sh down

bench: $(STAMP)
	$(VENV)/bin/python -m bench

schema: $(STAMP)
	$(VENV)/bin/python -m service.schema_dump

lint: $(STAMP)
	$(VENV)/bin/ruff check service tests
