#!/usr/bin/env bash
# `make run`: a local Prometheus (and Alertmanager) on 127.0.0.1 with the demo
# config in config/, then mcp-prometheus on config/standalone.toml in the
# foreground. Ctrl-C stops everything.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$repo/.run"
mkdir -p "$state/prometheus" "$state/alertmanager"

# Prometheus and Alertmanager from Debian packages, installed when missing.
"$repo/scripts/install-prometheus.sh"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_busy 9090; then
    echo "[run] something already listens on 127.0.0.1:9090; using it as Prometheus" >&2
else
    prometheus --config.file="$repo/config/prometheus.yml" \
        --storage.tsdb.path="$state/prometheus" \
        --web.listen-address=127.0.0.1:9090 \
        --enable-feature=exemplar-storage \
        --rules.alert.resend-delay=2s >"$state/prometheus.log" 2>&1 &
    pids+=($!)
fi
if ! port_busy 9093; then
    prometheus-alertmanager --config.file="$repo/config/alertmanager.yml" \
        --storage.path="$state/alertmanager" \
        --web.listen-address=127.0.0.1:9093 \
        --cluster.listen-address= >"$state/alertmanager.log" 2>&1 &
    pids+=($!)
fi

for _ in $(seq 50); do
    curl -fsS http://127.0.0.1:9090/-/ready >/dev/null 2>&1 && break
    sleep 0.2
done
echo "[run] Prometheus at http://127.0.0.1:9090 (logs in .run/)" >&2

cargo build --release --bin mcp-prometheus
echo "[run] MCP at http://127.0.0.1:8080/mcp, metrics at http://127.0.0.1:9091/metrics" >&2
"$repo/target/release/mcp-prometheus" serve --config "$repo/config/standalone.toml" &
pids+=($!)
wait "${pids[-1]}"
