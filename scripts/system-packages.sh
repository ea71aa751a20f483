#!/usr/bin/env bash
# The system programs patron's tests and benchmarks run for real: redis-server (the Redis online
# store), wrk (the service benchmark), chromium (the web app's browser tests, driven by
# Playwright with executable_path: Playwright's own browser download is not used) and LibreOffice
# Calc without its GUI (the workbook tests recalculate its formulas). Installed from Debian's
# packages when missing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-calc-nogui)
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
echo "patron: please install ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]}); the Redis, browser and workbook tests need them" >&2
# without them the Redis tests are skipped locally, and fail under CI
[ -z "${CI:-}" ] || exit 1
