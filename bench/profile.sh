#!/usr/bin/env bash
# CPU profile of the server under the stateless `execute_query up` load at
# 32 clients (the figure furthest from its target): perf record -g on the
# server process while loadgen runs, then the top of perf report.
#   bench/profile.sh [AUTH=1]   (run after make bench: reuses its binaries)
# Output: target/bench/profile/{perf.data,report.txt}
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec python3 "$repo/bench/profile.py" "$@"
