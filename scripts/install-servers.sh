#!/usr/bin/env bash
# Installs Debian's prometheus (with promtool) and prometheus-alertmanager (with
# amtool) for the end-to-end tests and the promtool rule tests, as root, without
# starting any system daemon: a policy-rc.d that exits 101 is in place while apt
# runs (and removed again if this script created it). Idempotent.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null \
  && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-servers: run as root to install prometheus and alertmanager" >&2
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
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
# The packages must not leave daemons listening on all interfaces.
for name in prometheus prometheus-alertmanager; do
  for pid in $(pgrep -f "^/usr/bin/$name( |$)" || true); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "/etc/prometheus/"; then
      kill "$pid" || true
    fi
  done
done
