#!/usr/bin/env bash
# Installs Arize Phoenix (an OTLP trace store with a REST API) and rotel (an OTLP
# collector hop) into their own virtualenv, .e2e/phoenix-venv, for the end-to-end
# tests. Their pins must not clash with the library's, hence the separate venv;
# bytecode is compiled at install time because Phoenix starts 20-30 s slower without
# it (this environment sets PYTHONDONTWRITEBYTECODE=1). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.e2e/phoenix-venv
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import phoenix, rotel" 2>/dev/null; then
  exit 0
fi
mkdir -p .e2e
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip uv
"$VENV/bin/uv" pip install -q -p "$VENV/bin/python" --compile-bytecode \
  "arize-phoenix>=20,<21" "rotel==0.0.1a15"
