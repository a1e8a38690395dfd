#!/usr/bin/env bash
# Make sure a PostgreSQL answers on 127.0.0.1 and print a DATABASE_URL for it.
# Uses the machine's server if one answers; else starts the Debian cluster; else initialises a
# throwaway cluster (as the postgres user: initdb refuses root) under /tmp.
set -euo pipefail
PORT="${PGPORT:-5432}"
DB_NAME="${1:-user_management}"
BIN=/usr/lib/postgresql/15/bin

answers() { pg_isready -q -h 127.0.0.1 -p "$1" 2>/dev/null; }

if ! answers "$PORT"; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >&2 || true
  fi
fi
if ! answers "$PORT"; then
  PORT=55432
  DATA=/tmp/user-management-pg
  if ! answers "$PORT"; then
    if [ ! -x "$BIN/initdb" ]; then
      echo "PostgreSQL 15 is not installed: apt-get install -y postgresql-15" >&2
      exit 1
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA" && chown postgres:postgres "$DATA"
      su postgres -s /bin/sh -c "$BIN/initdb -D $DATA -U postgres --auth=trust -E UTF8" >&2
    fi
    su postgres -s /bin/sh -c "$BIN/pg_ctl -D $DATA -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $DATA/server.log -w start" >&2
  fi
fi
echo "postgres://postgres@127.0.0.1:${PORT}/${DB_NAME}"
