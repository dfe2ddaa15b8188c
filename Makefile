# Real-time CDC lakehouse — the README's two commands are `make demo` and `make test`.
# `make help` lists every target (built from the ## comments).

SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help setup install browser up down status demo test test-long lint unit java spark integration scale-out clean wipe compose-env compose-check

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv with the lakehouse CLI (idempotent)

install: setup ## fetch/build every service artifact into the cache (idempotent, shows progress)
	$(BIN)/lakehouse install

browser: setup ## install/check Debian's headless chromium + chromium-driver (browser tests)
	$(BIN)/lakehouse install --browser

up: install ## start the native stack (Postgres, MinIO, Kafka, Connect with Debezium and the bronze S3 sink, silver, Trino, web page)
	$(BIN)/lakehouse up

down: setup ## stop what `up` started (data is kept; `make wipe` also deletes it)
	$(BIN)/lakehouse down

wipe: setup ## stop the stack and delete its data, logs and generated secrets
	$(BIN)/lakehouse down --wipe

status: setup ## show each service and connector
	$(BIN)/lakehouse status

demo: install ## main job: stack up, MovieLens loaded, gentle changes, the edit-a-row page (Ctrl-C stops the changes)
	$(BIN)/lakehouse demo

compose-env: setup ## write .env for `docker compose up -d` (versions from versions.env, credentials generated once)
	$(BIN)/lakehouse compose env

compose-check: setup ## validate docker-compose.yml with the real `docker compose config` (built with Go once)
	$(BIN)/lakehouse compose check

lint: setup ## ruff + mypy
	$(BIN)/ruff check app tests tools
	$(BIN)/ruff format --check app tests tools
	$(BIN)/mypy

unit: setup ## fast tests, no services
	$(BIN)/pytest -m unit

spark: install ## CDC rules on a local SparkSession (crafted events, no services)
	$(BIN)/pytest -m spark

integration: install browser ## tests against the real native stack (incl. headless chromium)
	$(BIN)/pytest -m integration

scale-out: install ## the stack in scale-out mode: Spark cluster, Trino worker, partitioned topics
	$(BIN)/pytest -m scale_out

java: install ## the bronze S3 sink connector's unit tests (Maven Surefire, connect/s3-sink)
	$(BIN)/lakehouse install --test-java

test: install browser compose-check lint java ## what CI runs: compose validation, lint, Surefire, unit, spark, integration, then scale-out tests (not the long ones)
	$(BIN)/pytest -m "not scale_out and not long"
	$(BIN)/pytest -m "scale_out and not long"

test-long: install browser ## the long scenarios `make test` leaves out (rebuild from bronze, re-snapshot, blocked table, every crash point, ...)
	$(BIN)/pytest -m "long and not scale_out"

clean: ## remove the venv and Python caches (not the artifact cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	find app tests -name __pycache__ -type d -exec rm -rf {} +
