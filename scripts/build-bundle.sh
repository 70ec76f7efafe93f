#!/usr/bin/env bash
# Builds the MCP Bundle (one-click install in Claude Desktop and other MCPB
# hosts) for this machine's platform:
#   scripts/build-bundle.sh BINARY [OUT]      (OUT: target/mcp-prometheus.mcpb)
# Installs the official tool (npm @anthropic-ai/mcpb, pinned in
# packaging/mcpb/package-lock.json) when missing, generates the manifest from
# the binary (packaging/mcpb/build.mjs), validates it (`mcpb validate`) and
# packs it (`mcpb pack`). Needs Node >= 20 (Debian: nodejs, npm).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" bundle
(($# >= 1)) || { log "usage: $0 BINARY [OUT]"; exit 2; }
binary=$1
out="${2:-$repo/target/mcp-prometheus.mcpb}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    "$repo/scripts/apt-install.sh" nodejs npm
fi
npm_sync "$repo/packaging/mcpb"
mkdir -p "$(dirname "$out")"
node "$repo/packaging/mcpb/build.mjs" "$binary" "$out"
