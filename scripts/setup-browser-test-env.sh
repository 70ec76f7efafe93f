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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" setup-browser-test-env
chromium=/usr/bin/chromium

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
# playwright-core has no install script and fetches no browser; say so
# anyway, in case a later version grows one.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_sync "$browser_dir"

log "ok: $version, playwright-core $(node -p "require('$browser_dir/node_modules/playwright-core/package.json').version")"
