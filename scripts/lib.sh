# Shared steps of the setup scripts (sourced, not run):
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" TAG
# sets $repo (the checkout) and log() (messages on stderr, prefixed [TAG]).
# Each step is idempotent and instant when there is nothing to do: it keeps
# a hash of what it installed from and compares it first.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_tag="${1:-setup}"

log() { printf '[%s] %s\n' "$log_tag" "$*" >&2; }

# stamp_current STAMP HASH: the file STAMP holds HASH.
stamp_current() { [[ -f $1 && "$(cat "$1")" == "$2" ]]; }

# venv_sync VENV REQUIREMENTS PYTHON: a venv at VENV (made by PYTHON) with
# the packages of REQUIREMENTS; pip runs only when that file or the Python
# version changed since the last install (a hash is kept in the venv).
venv_sync() {
    local venv=$1 req=$2 python=$3 want stamp
    want="$( (cat "$req"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
    stamp="$venv/.requirements.sha256"
    if [[ -x "$venv/bin/python" ]] && stamp_current "$stamp" "$want"; then
        log "venv $venv is up to date"
        return
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating venv $venv"
        "$python" -m venv "$venv"
    fi
    log "installing Python packages from $req"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
    echo "$want" >"$stamp"
}

# npm_sync DIR: `npm ci` in DIR (under the repo) from its package-lock.json,
# only when the lock file or the Node major version changed since the last
# install (a hash is kept in DIR/node_modules). Needs node and npm, Node >= 20.
npm_sync() {
    local dir=$1 name node_major want stamp
    name="${dir#"$repo"/}"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        { log "node and npm (Node >= 20) are needed for $name"; exit 1; }
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    ((node_major >= 20)) || { log "Node >= 20 needed for $name, found $(node --version)"; exit 1; }
    want="$( (cat "$dir/package-lock.json"; echo "node $node_major") | sha256sum | cut -d' ' -f1)"
    stamp="$dir/node_modules/.mcp-prometheus-lock.sha256"
    if stamp_current "$stamp" "$want"; then
        log "$name/node_modules is up to date"
        return
    fi
    log "installing $name npm packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
}
