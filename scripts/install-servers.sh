#!/usr/bin/env bash
# Installs Debian's prometheus (with promtool), prometheus-alertmanager (with
# amtool) and postgresql (initdb, pg_ctl, postgres) for the end-to-end tests and
# the promtool rule tests, as root, without starting any system daemon or cluster:
# a policy-rc.d that exits 101 is in place while apt runs (and removed again if
# this script created it). The PostgreSQL tests start their own cluster in a
# temporary directory, on 127.0.0.1, as the package's `postgres` user. Idempotent.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null \
  && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
  && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  && id postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-servers: run as root to install prometheus, alertmanager and" \
    "postgresql" >&2
  exit 1
fi
created=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created=1
fi
cleanup() { if [ -n "$created" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager \
  postgresql >/dev/null
# The packages must not leave daemons listening on all interfaces.
for name in prometheus prometheus-alertmanager; do
  for pid in $(pgrep -f "^/usr/bin/$name( |$)" || true); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "/etc/prometheus/"; then
      kill "$pid" || true
    fi
  done
done
