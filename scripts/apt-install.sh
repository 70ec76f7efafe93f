#!/usr/bin/env bash
# Installs Debian packages for the test and run scripts: as root or with
# sudo, non-interactively, without starting the services they bring (a
# policy-rc.d forbids it while installing, unless the machine has one).
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail
(($#)) || exit 0
log() { printf '[apt-install] %s\n' "$*" >&2; }
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "need root (or sudo) to install: $*"; exit 1; }
    sudo="sudo"
fi
log "installing Debian packages: $*"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && made_policy=1
fi
status=0
{ $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$@"; } || status=$?
if [[ -n $made_policy ]]; then $sudo rm -f "$policy"; fi
((status == 0)) || { log "apt-get failed ($status)"; exit "$status"; }
