#!/usr/bin/env bash
# Installs Debian's postgresql (server binaries: initdb, pg_ctl, postgres) for the
# checkpointer end-to-end tests, as root, without starting any system cluster: a
# policy-rc.d that exits 101 is in place while apt runs (and removed again if this
# script created it). The tests start their own cluster in a temporary directory,
# on 127.0.0.1, as the package's unprivileged `postgres` user. Idempotent.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && id postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-postgres: run as root to install postgresql" >&2
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
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
