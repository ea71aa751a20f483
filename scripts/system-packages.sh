#!/usr/bin/env bash
# The system programs patron's tests and benchmarks run for real: redis-server (the Redis online
# store) and wrk (the service benchmark). Installed from Debian's packages when missing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
        exit 0
    fi
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
            || { sudo apt-get update -q >/dev/null && sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
        exit 0
    fi
fi
echo "patron: please install ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]}); the Redis tests need it" >&2
# without them the Redis tests are skipped locally, and fail under CI
[ -z "${CI:-}" ] || exit 1
