# mcp-prometheus — the two commands a newcomer needs:
#   make run    a local Prometheus + the server on config/standalone.toml
#   make test   every test (installs what it needs)

CARGO ?= cargo
PYTEST_ARGS ?= -q

.PHONY: run test test-unit test-integration lint build fmt

run:
	scripts/run-local.sh

build:
	$(CARGO) build --workspace --all-targets

test: lint test-unit test-integration

test-unit:
	$(CARGO) test --workspace

test-integration: build
	scripts/setup-test-env.sh
	MCP_PROMETHEUS_BIN=$(CURDIR)/target/debug/mcp-prometheus .venv/bin/python -m pytest tests/integration $(PYTEST_ARGS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
