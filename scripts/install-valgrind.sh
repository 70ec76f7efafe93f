#!/usr/bin/env bash
# Installs valgrind (callgrind, callgrind_control, callgrind_annotate) from
# Debian's packages when missing, for bench/instructions.py. Idempotent.
set -euo pipefail
command -v callgrind_control >/dev/null 2>&1 && exit 0
exec "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" valgrind
