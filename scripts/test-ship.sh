#!/usr/bin/env bash
# The shipping artifacts of a given build, tested: its OCI image (make image's
# script) and its MCP Bundle (make bundle's script), then
# tests/integration/test_image.py (the image unpacked and run in a chroot as
# 65532) and tests/integration/test_bundle.py (the bundle installed and run
# as a host runs it).
#   scripts/test-ship.sh BINARY [PYTEST_ARG...]
# `make test` runs it on the debug build with its debug info stripped (the
# same libraries, users and manifest as a release build, a tenth of the
# size, no release build in the test budget); `make test-image` and
# `make test-bundle` test the release artifacts themselves. Needs root (chroot).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" test-ship
(($# >= 1)) || { log "usage: $0 BINARY [PYTEST_ARG...]"; exit 2; }
binary=$1
shift
command -v strip >/dev/null 2>&1 || "$repo/scripts/apt-install.sh" binutils
"$repo/scripts/setup-test-env.sh"
"$repo/scripts/setup-chart-test-env.sh"

out="$repo/target/test-ship"
mkdir -p "$out"
strip --strip-debug -o "$out/mcp-prometheus" "$binary"
"$repo/scripts/build-image.sh" "$out/mcp-prometheus" "$out/mcp-prometheus.oci.tar"
"$repo/scripts/build-bundle.sh" "$out/mcp-prometheus" "$out/mcp-prometheus.mcpb"
MCP_PROMETHEUS_IMAGE="$out/mcp-prometheus.oci.tar" MCP_PROMETHEUS_BUNDLE="$out/mcp-prometheus.mcpb" \
    MCP_PROMETHEUS_BIN="$out/mcp-prometheus" \
    "$repo/.venv/bin/python" -m pytest "$repo/tests/integration/test_image.py" \
    "$repo/tests/integration/test_bundle.py" "$@"
