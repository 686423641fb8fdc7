#!/usr/bin/env bash
# LangGraph's own test suite, bare and with every compiled graph instrumented
# (lg_otel's zero-code instrumentor): every test must end the same way.
#   scripts/langgraph-suite.sh [WORKDIR]        (default /tmp/lg_otel-langgraph-suite)
# Takes the tests from the sdist of the installed langgraph (PyPI), in its own venv;
# servers are not needed (NO_DOCKER=true: memory and SQLite savers). About 4 minutes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/lg_otel-langgraph-suite}
PY=${PYTHON:-python3}
mkdir -p "$WORK"
VERSION=$("$ROOT/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("langgraph"))')
if [ ! -x "$WORK/venv/bin/python" ]; then
  "$PY" -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q uv
fi
# LangGraph's tests compare lc_versions metadata exactly: langchain (a test extra of
# lg_otel) must not be installed beside them.
"$WORK/venv/bin/uv" pip install -q -p "$WORK/venv/bin/python" -e "$ROOT[otlp]" \
  "langgraph==$VERSION" langgraph-checkpoint-sqlite pytest pytest-asyncio pytest-mock \
  syrupy pytest-xdist pytest-timeout pytest-repeat pytest-dotenv pycryptodome httpx \
  redis 'psycopg[binary,pool]' langgraph-checkpoint-postgres requests langsmith orjson opentelemetry-instrumentation
if [ ! -d "$WORK/tests" ]; then
  rm -rf "$WORK/sdist"
  "$WORK/venv/bin/python" -m pip download -q --no-deps --no-binary :all: \
    "langgraph==$VERSION" -d "$WORK/sdist"
  tar -xzf "$WORK"/sdist/langgraph-*.tar.gz -C "$WORK/sdist"
  cp -r "$WORK"/sdist/langgraph-*/tests "$WORK/tests"
  cp "$WORK"/sdist/langgraph-*/pyproject.toml "$WORK/pyproject.toml"
fi
cd "$WORK"
export NO_DOCKER=true
run() {  # $1: bare | instrumented
  local extra=()
  if [ "$1" = instrumented ]; then
    extra=(-p lg_otel_plugin)
    export PYTHONPATH="$ROOT/scripts/langgraph_suite" LG_OTEL_SPAN_DIR="$WORK/spans"
    rm -rf "$LG_OTEL_SPAN_DIR" && mkdir -p "$LG_OTEL_SPAN_DIR"
  fi
  "$WORK/venv/bin/python" -m pytest "${extra[@]}" -p no:cacheprovider -n 2 \
    --timeout 300 -q --junitxml="$WORK/$1.xml" tests > "$WORK/$1.log" 2>&1 || true
  tail -1 "$WORK/$1.log"
}
run bare
run instrumented
echo "spans exported while instrumented: $(cat "$WORK"/spans/*.txt | awk '{s += $1} END {print s}')"
"$WORK/venv/bin/python" "$ROOT/scripts/langgraph_suite/compare.py" "$WORK/bare.xml" "$WORK/instrumented.xml"
