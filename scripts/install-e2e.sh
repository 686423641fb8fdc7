#!/usr/bin/env bash
# Everything the end-to-end tests run against, installed from package registries:
# Debian's prometheus, prometheus-alertmanager, postgresql, chromium and valgrind
# (as root), and Phoenix + rotel from PyPI in their own venv. Idempotent; safe to
# run on every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  scripts/install-servers.sh
  if ! command -v chromium >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium >/dev/null
  fi
  # Not a server: benchmarks.instructions counts instructions under callgrind.
  if ! command -v valgrind >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      valgrind >/dev/null
  fi
fi
scripts/install-phoenix.sh
