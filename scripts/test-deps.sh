#!/usr/bin/env bash
# Real third-party pieces some tests drive, installed when missing:
# - Arize Phoenix, a real OTLP receiver, in its own venv (.venv/phoenix) so its
#   dependencies and pytest plugins stay out of the project's environment;
# - headless Chromium (Debian's package) for the HTML report test, when we may
#   (root + apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/phoenix/bin/phoenix ]; then
  echo "installing arize-phoenix into .venv/phoenix (OTLP receiver for the tests)"
  .venv/bin/uv venv -q --python .venv/bin/python .venv/phoenix
  .venv/bin/uv pip install -q --python .venv/phoenix/bin/python arize-phoenix
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the browser test"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found: the browser test needs Debian's 'chromium' package" >&2
  fi
fi
