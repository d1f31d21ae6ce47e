#!/usr/bin/env bash
# System pieces some tests drive for real: headless Chromium (HTML report test).
# Installed from Debian's packages when missing and we may (root + apt-get).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the browser tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found: the browser test will fail; install Debian's 'chromium' package" >&2
  fi
fi
