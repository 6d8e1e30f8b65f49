#!/usr/bin/env bash
# Install the system tools the test suite needs that pip cannot provide:
#   promtool, prometheus   Debian package "prometheus" (tests/deploy runs promtool for real)
#
# Idempotent: does nothing when the tools are already on PATH. Runs apt-get as root, through
# `sudo -n` when not root, and otherwise says what to run and exits non-zero.
set -euo pipefail

log() { printf 'install-system-deps: %s\n' "$*"; }

missing=()
for tool in promtool prometheus; do
    command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
done

if [ "${#missing[@]}" -eq 0 ]; then
    log "promtool and prometheus already installed ($(promtool --version 2>&1 | head -n 1))"
    exit 0
fi

log "missing: ${missing[*]}; installing the Debian package 'prometheus'"

if ! command -v apt-get > /dev/null 2>&1; then
    log "apt-get not found: install Prometheus 2.x or later (it ships promtool) with your" \
        "system's package manager, or put promtool and prometheus on PATH" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
    as_root=(sudo -n)
else
    log "not root and no password-less sudo: run as root" \
        "'apt-get update && apt-get install -y --no-install-recommends prometheus'" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends prometheus

for tool in promtool prometheus; do
    if ! command -v "$tool" > /dev/null 2>&1; then
        log "'$tool' is still not on PATH after installing the package" >&2
        exit 1
    fi
done
log "installed $(promtool --version 2>&1 | head -n 1)"
