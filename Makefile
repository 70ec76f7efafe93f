# mcp-prometheus — the two commands a newcomer needs:
#   make run    a local Prometheus + the server on config/standalone.toml
#   make test   every test (installs what it needs)

CARGO ?= cargo
PYTEST_ARGS ?= -q

.PHONY: run test test-unit test-integration test-chart lint build fmt

run:
	scripts/run-local.sh

build:
	$(CARGO) build --workspace --all-targets

test: lint test-unit test-integration test-chart test-ship

test-unit:
	$(CARGO) test --workspace

test-integration: build
	scripts/setup-test-env.sh
	scripts/setup-browser-test-env.sh
	MCP_PROMETHEUS_BIN=$(CURDIR)/target/debug/mcp-prometheus .venv/bin/python -m pytest tests/integration $(PYTEST_ARGS)

test-chart: build
	scripts/setup-chart-test-env.sh
	MCP_PROMETHEUS_BIN=$(CURDIR)/target/debug/mcp-prometheus .venv-chart/bin/python -m pytest tests/chart $(PYTEST_ARGS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Shipping (not part of `make test`; README "Install"): the release binary,
# its OCI image and its MCP Bundle, each under target/. Both scripts install
# what they need (buildah and skopeo; node's @anthropic-ai/mcpb).
#   make image        target/mcp-prometheus.oci.tar, built FROM scratch by buildah, no daemon, no pull
#   make bundle       target/mcp-prometheus.mcpb (this machine's platform), validated by `mcpb validate`
#   make test-image   the image unpacked and run in a chroot as user 65532 (tests/integration/test_image.py)
#   make test-bundle  the bundle unpacked and started as its manifest says (tests/integration/test_bundle.py)
#   make test-ship    both tests on the debug build's image and bundle (part of `make test`)
# TARGET_DIR is where cargo builds (CARGO_TARGET_DIR when set).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
RELEASE_BIN = $(TARGET_DIR)/release/mcp-prometheus
IMAGE_ARCHIVE = $(CURDIR)/target/mcp-prometheus.oci.tar
BUNDLE = $(CURDIR)/target/mcp-prometheus.mcpb
.PHONY: release image bundle test-image test-bundle test-ship

release:
	$(CARGO) build --release --locked --bin mcp-prometheus

image: release
	scripts/build-image.sh $(RELEASE_BIN) $(IMAGE_ARCHIVE)

bundle: release
	scripts/build-bundle.sh $(RELEASE_BIN) $(BUNDLE)

test-image: image
	scripts/setup-test-env.sh
	scripts/setup-chart-test-env.sh
	MCP_PROMETHEUS_IMAGE=$(IMAGE_ARCHIVE) MCP_PROMETHEUS_BIN=$(RELEASE_BIN) \
		.venv/bin/python -m pytest tests/integration/test_image.py $(PYTEST_ARGS)

test-bundle: bundle
	scripts/setup-test-env.sh
	MCP_PROMETHEUS_BUNDLE=$(BUNDLE) MCP_PROMETHEUS_BIN=$(RELEASE_BIN) \
		.venv/bin/python -m pytest tests/integration/test_bundle.py $(PYTEST_ARGS)

# In `make test`: the same image and bundle tests on artifacts of the debug
# build (debug info stripped), without a release build (scripts/test-ship.sh).
test-ship: build
	scripts/test-ship.sh $(TARGET_DIR)/debug/mcp-prometheus $(PYTEST_ARGS)

# docs/chart-example.png (not part of `make test`): render_range_query draws it
# from the local Prometheus that `make run` starts (PROMETHEUS_URL to change;
# give it a few minutes of data first). See README "Charts".
.PHONY: chart-example
chart-example:
	$(CARGO) build --bin mcp-prometheus
	python3 scripts/chart-example.py

# Fuzzing (not part of `make test`): every cargo-fuzz target for FUZZ_SECONDS (default 60) each.
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# Benchmarks (not part of `make test`): see README "Performance".
#   make bench        full run (~8 min plus the build): target/bench/results.{json,md} + README section,
#                     then the PromQL check overhead (bench/promql_overhead.py, ~10 s): README "PromQL check overhead"
#                     then the instructions per tool call (bench/instructions.py, ~14 min under callgrind)
#   make bench-smoke  the same harness with tiny sizes and the debug build (< 60 s)
#   make bench-instructions  only the instructions per call: target/bench/instructions.{json,md} + README block
# Both measure BENCH_BASELINE's release binary in the same run too (bench/instructions.py --baseline;
# built once into target/bench/baseline-<hash>/, ~5 min): c999e7d, the tree when issue 15 was filed;
# BENCH_BASELINE=none skips it.
BENCH_BASELINE ?= c999e7d
.PHONY: bench bench-smoke bench-instructions
bench:
	scripts/install-prometheus.sh
	$(CARGO) build --release -p mcp-prometheus -p loadgen
	$(CARGO) build --release -p mcp-prometheus-layers --example promql_overhead
	python3 bench/bench.py
	python3 bench/promql_overhead.py
	scripts/install-valgrind.sh
	python3 bench/instructions.py --baseline $(BENCH_BASELINE)

bench-instructions:
	scripts/install-prometheus.sh
	scripts/install-valgrind.sh
	$(CARGO) build --release -p mcp-prometheus
	python3 bench/instructions.py --baseline $(BENCH_BASELINE)

bench-smoke:
	scripts/install-prometheus.sh
	$(CARGO) build -p mcp-prometheus -p loadgen
	python3 bench/bench.py --smoke --profile debug

# Soak and fault injection (not part of `make test`): see README "Reliability".
#   make soak                  200 clients for SOAK_MINUTES (10) + faults: target/soak/results.{json,md} + README section
#   make soak SOAK_MINUTES=1   a short run (the README is only rewritten by runs of 10 minutes or more)
SOAK_MINUTES ?= 10
.PHONY: soak
soak:
	scripts/install-prometheus.sh
	scripts/setup-test-env.sh
	$(CARGO) build --release -p mcp-prometheus -p loadgen
	.venv/bin/python bench/soak.py --minutes $(SOAK_MINUTES)
