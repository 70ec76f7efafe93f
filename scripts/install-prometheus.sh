#!/usr/bin/env bash
# Installs Prometheus, promtool and Alertmanager from Debian's packages when
# they are missing. Idempotent; instant when they are present.
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ ${#missing[@]} -eq 0 ] && exit 0
exec "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" "${missing[@]}"
