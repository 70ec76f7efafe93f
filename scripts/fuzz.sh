#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target (fuzz/fuzz_targets) for
# FUZZ_SECONDS each (default 60) with libFuzzer. Needs a nightly toolchain
# (cargo-fuzz's sanitizers); installs cargo-fuzz when missing. Not part of
# `make test`: the same parsers run there as bounded proptest properties.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "make fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd fuzz
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Done)' || true
    if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
        echo "!! $target found crashes: fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "no crash in ${seconds}s per target"
