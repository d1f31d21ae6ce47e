#!/usr/bin/env bash
# Benchmarks: aitel's overhead next to its peers, pipeline throughput, memory.
#
#   bash scripts/bench.sh --quick              # a fast smoke run
#   bash scripts/bench.sh --json results.json  # the full run, also as JSON
#   bash scripts/bench.sh --help               # every option
#
# The peers (Langfuse, LangSmith, OpenInference, OpenTelemetry) are installed in
# their own virtualenv, .venv-bench, so the main .venv stays lean.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${BENCH_VENV:-.venv-bench}"
BIN="$VENV/bin"
STAMP="$VENV/.bench-installed"

if [ ! -x "$BIN/python" ]; then
  "$PYTHON" -m venv "$VENV"
  printf '*\n' > "$VENV/.gitignore"
fi
if [ ! -x "$BIN/uv" ]; then
  "$BIN/python" -m pip install -q --upgrade pip uv
fi

# Reinstall when the requirements or the packages' metadata changed.
packages=(-e ".[all]" -e integrations/langchain)
if [ -f integrations/llama-index/pyproject.toml ]; then
  packages+=(-e integrations/llama-index)
fi
fingerprint="$(cat benchmarks/requirements.txt pyproject.toml integrations/*/pyproject.toml 2>/dev/null | cksum)"
if [ "${BENCH_REINSTALL:-0}" = "1" ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$fingerprint" ]; then
  "$BIN/uv" pip install -q --python "$BIN/python" "${packages[@]}" -r benchmarks/requirements.txt
  printf '%s' "$fingerprint" > "$STAMP"
fi

exec "$BIN/python" benchmarks/run.py "$@"
