#!/usr/bin/env bash
# Make sure a PostgreSQL we can log in to answers on 127.0.0.1, and print a DATABASE_URL for it.
# Uses the machine's server if it answers and lets the postgres user in without a password; else
# starts the Debian cluster; else initialises a throwaway cluster (trust auth, port 55432) under
# /tmp, as the postgres user when run as root (initdb refuses root).
set -euo pipefail
PORT="${PGPORT:-5432}"
DB_NAME="${1:-user_management}"
BIN="$( (pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin 2>/dev/null) | tail -1)"

usable() { psql -w -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; }

if ! usable "$PORT" && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in /etc/postgresql/*; do
    for cluster in "$version"/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" "$(basename "$cluster")" start >&2 || true
    done
  done
fi
if ! usable "$PORT"; then
  PORT=55432
  DATA=/tmp/user-management-pg
  if ! usable "$PORT"; then
    if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
      echo "PostgreSQL is not installed (apt-get install -y postgresql), and none answers on 127.0.0.1." >&2
      exit 1
    fi
    as_postgres() { if [ "$(id -u)" = "0" ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"
      [ "$(id -u)" = "0" ] && chown postgres:postgres "$DATA"
      as_postgres "$BIN/initdb -D $DATA -U postgres --auth=trust -E UTF8" >&2
    fi
    as_postgres "$BIN/pg_ctl -D $DATA -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $DATA/server.log -w start" >&2
  fi
fi
echo "postgres://postgres@127.0.0.1:${PORT}/${DB_NAME}"
