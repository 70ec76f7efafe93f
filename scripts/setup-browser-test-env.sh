#!/usr/bin/env bash
# Prepare what the real-browser test (tests/integration/test_oauth_browser.py)
# needs, on top of scripts/setup-test-env.sh:
#   * Chromium from the Debian package chromium (/usr/bin/chromium), installed
#     only when missing (about 120 MB of .debs with its libraries);
#   * npm playwright-core in tests/browser/node_modules (`npm ci` from
#     tests/browser/package-lock.json, only when the lock file or the Node
#     major version changed). playwright-core downloads no browser: the test
#     drives the system Chromium (tests/browser/login.mjs).
# Idempotent, and fast (well under a second) when everything is in place.
#
# Then run:  .venv/bin/python -m pytest tests/integration/test_oauth_browser.py -q
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chromium=/usr/bin/chromium

log() { printf '[setup-browser-test-env] %s\n' "$*" >&2; }

# --- Debian package chromium ------------------------------------------------
if [[ ! -x $chromium ]]; then
    "$repo/scripts/apt-install.sh" chromium
fi
# It must start, not merely exist (the launcher script checks the CPU, then
# runs /usr/lib/chromium/chromium).
version="$("$chromium" --version 2>/dev/null)" || { log "$chromium --version failed"; exit 1; }

# --- npm playwright-core (tests/browser) ------------------------------------
browser_dir="$repo/tests/browser"
[[ -f $browser_dir/package-lock.json ]] || { log "$browser_dir/package-lock.json is missing"; exit 1; }
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    { log "node and npm (Node >= 20) are needed for tests/browser"; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || { log "Node >= 20 needed for tests/browser, found $(node --version)"; exit 1; }
want="$( (cat "$browser_dir/package-lock.json"; echo "node $node_major") | sha256sum | cut -d' ' -f1)"
stamp="$browser_dir/node_modules/.mcp-prometheus-lock.sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "tests/browser/node_modules is up to date"
else
    log "installing tests/browser npm packages (npm ci)"
    # playwright-core has no install script and fetches no browser; say so
    # anyway, in case a later version grows one.
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
fi

log "ok: $version, playwright-core $(node -p "require('$browser_dir/node_modules/playwright-core/package.json').version")"
