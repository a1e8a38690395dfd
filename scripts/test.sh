#!/usr/bin/env bash
# The one test command (README's `make test`, and .ci/run): sets everything up, runs every test
# against PostgreSQL, exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# One run's own names, so two runs on one machine never share anything: the test databases (while
# another run holds the usual names), Redis keys and temporary files (tests/isolation.py).
export TEST_RUN_ID="${TEST_RUN_ID:-$$}"
RUN_TMP="$(mktemp -d "${TMPDIR:-/tmp}/user-management-tests.XXXXXX")"
chmod 711 "$RUN_TMP"  # the throwaway PostgreSQL clusters under it run as the postgres user
trap 'rm -rf "$RUN_TMP"' EXIT
export TMPDIR="$RUN_TMP"

./scripts/bootstrap.sh dev

if [ "$(id -u)" = "0" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the admin browser tests..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
    echo "chromium could not be installed; browser tests will be skipped" >&2
fi

# Redis on 127.0.0.1:6379 for the rate-limit tests across processes (keys under a run's prefix): start a
# throwaway one (no persistence) when none answers, installing Debian's redis-server as root.
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "Installing Debian's redis-server for the rate-limit tests..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) || true
  fi
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  else
    echo "redis-server is not available; the Redis rate-limit tests will be skipped" >&2
  fi
fi

DATABASE_URL="${DATABASE_URL:-$(./scripts/ensure_postgres.sh user_management)}"
export DATABASE_URL
echo "Database: ${DATABASE_URL}" >&2

.venv/bin/ruff check .
# Against SQLite: only the models matter here, and the test database does not exist yet.
env -u DATABASE_URL .venv/bin/python manage.py makemigrations --check --dry-run --settings=config.test_settings >/dev/null
# The published OpenAPI document must be valid and generate without a single warning.
.venv/bin/python manage.py spectacular --validate --fail-on-warn --settings=config.test_settings \
  --file "$RUN_TMP/openapi-schema.yaml"
# The docs build with every link and anchor resolving (mkdocs.yml's validation; --strict fails on any).
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$RUN_TMP/docs-site"
# `make run` serves the demo from SQLite: the API's user paths must work there too (a UUID, for
# one, reaches SQLite as a hex string). A short run on SQLite first, then everything on PostgreSQL.
echo "API user paths on SQLite:" >&2
env -u DATABASE_URL .venv/bin/pytest -q -p no:cacheprovider tests/api/test_workflows.py tests/api/test_users_list.py \
  tests/api/test_users_create.py tests/api/test_users_update.py tests/api/test_users_roles.py \
  tests/api/test_users_disable.py tests/perf/test_prepared_query.py tests/perf/test_query_budgets.py
# In parallel: one pytest-xdist worker per CPU (TEST_WORKERS overrides), each with its own test
# database, Cognito (moto) server, Redis key prefix and temporary directory. Not `exec`: the trap
# removes the run's temporary directory after pytest's summary line and keeps its exit status.
.venv/bin/pytest --create-db -n "${TEST_WORKERS:-auto}" "$@"
