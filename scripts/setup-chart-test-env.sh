#!/usr/bin/env bash
# Prepare what the Helm chart tests (tests/chart) need: a Python venv at
# $(repo)/.venv-chart (override with VENV=...) with the pinned packages of
# tests/chart/requirements.txt (helm-python-sdk embeds Helm 4, so there is no
# helm binary to install; kubernetes-validate carries the Kubernetes schemas).
# pip runs only when that file or the Python version changed (a hash is kept
# in the venv). Idempotent; well under a second when everything is in place.
#
# The check-config tests also need target/debug/mcp-prometheus (cargo build
# --bin mcp-prometheus; they are skipped with a reason when it is missing,
# unless MCP_PROMETHEUS_BIN names another binary).
#
# Then run:  .venv-chart/bin/python -m pytest tests/chart -q
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" setup-chart-test-env
venv="${VENV:-$repo/.venv-chart}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    "$repo/scripts/apt-install.sh" python3-venv
fi

venv_sync "$venv" "$repo/tests/chart/requirements.txt" "$python"

# Fail here, not in the middle of the tests, if the embedded Helm cannot load.
"$venv/bin/python" -c 'import helm_python, kubernetes_validate; print("helm", helm_python.helm_sdk_version())' >&2 ||
    { log "helm-python-sdk does not load in $venv"; exit 1; }
log "ok"
