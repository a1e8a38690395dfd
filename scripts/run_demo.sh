#!/usr/bin/env bash
# The README's run command: the service with demo data on SQLite, with moto's server as the local
# Cognito, on http://127.0.0.1:8000. Nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
COGNITO_PORT="${COGNITO_PORT:-5011}"
PORT="${PORT:-8000}"
HI_EMULATOR_PORT="${HI_EMULATOR_PORT:-5012}"

# Before anything is installed, seeded or written (var/demo.env): a port another program holds
# would only fail at the end, with the demo's files already rewritten.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for entry in "PORT=${PORT}" "COGNITO_PORT=${COGNITO_PORT}" "HI_EMULATOR_PORT=${HI_EMULATOR_PORT}"; do
  port="${entry#*=}"
  case "$port" in
    ''|*[!0-9]*|??????*) bad=1 ;;  # not digits, or more than five of them
    *) bad=$(( 10#$port < 1 || 10#$port > 65535 )) ;;  # 10#: a leading 0 is not octal
  esac
  if [ "$bad" = 1 ]; then
    echo "${entry%%=*} must be a port number from 1 to 65535, not '${port}'." >&2
    exit 1
  fi
done
PORT=$((10#$PORT)) COGNITO_PORT=$((10#$COGNITO_PORT)) HI_EMULATOR_PORT=$((10#$HI_EMULATOR_PORT))  # 08000 is 8000
if [ "$PORT" = "$COGNITO_PORT" ] || [ "$PORT" = "$HI_EMULATOR_PORT" ] || [ "$COGNITO_PORT" = "$HI_EMULATOR_PORT" ]; then
  echo "PORT (${PORT}), COGNITO_PORT (${COGNITO_PORT}) and HI_EMULATOR_PORT (${HI_EMULATOR_PORT}) must be three different ports." >&2
  exit 1
fi
for entry in "PORT=${PORT}" "COGNITO_PORT=${COGNITO_PORT}" "HI_EMULATOR_PORT=${HI_EMULATOR_PORT}"; do
  if port_taken "${entry#*=}"; then
    echo "Port ${entry#*=} on 127.0.0.1 is already in use (${entry%%=*}). Stop what holds it, or choose another: make run ${entry%%=*}=<free port>" >&2
    exit 1
  fi
done
./scripts/bootstrap.sh dev

export DJANGO_DEBUG=true
export DJANGO_SECURE_SSL_REDIRECT=false
unset DATABASE_URL
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=ap-southeast-2 AWS_DEFAULT_REGION=ap-southeast-2
export AWS_EC2_METADATA_DISABLED=true
# Development only: the demo's webhook endpoints may point at a receiver on this machine.
export WEBHOOK_ALLOW_PRIVATE_TARGETS=true
export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="http://127.0.0.1:${COGNITO_PORT}"

mkdir -p var
.venv/bin/moto_server -H 127.0.0.1 -p "$COGNITO_PORT" >var/moto.log 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:${COGNITO_PORT}" && break
  sleep 0.2
done

# The local HI Service emulator (hi_service/emulator.py): a throwaway CA and certificates in var/hi,
# the HI_* settings that point the service at it in var/hi/hi.env.
rm -f var/hi/hi.env
.venv/bin/python manage.py run_hi_emulator --port "$HI_EMULATOR_PORT" --dir var/hi >var/hi-emulator.log 2>&1 &
HI_PID=$!
trap 'kill $HI_PID $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s var/hi/hi.env ] && break
  sleep 0.2
done
[ -s var/hi/hi.env ] || { echo "The HI Service emulator did not start: see var/hi-emulator.log" >&2; exit 1; }
set -a; . var/hi/hi.env; set +a
echo "Local HI Service (emulator) at ${HI_SERVICE_URL}"

.venv/bin/python manage.py migrate --noinput -v0
COGNITO_USER_POOL_ID="$(.venv/bin/python manage.py setup_local_cognito)"
export COGNITO_USER_POOL_ID
echo "Local Cognito (moto) at ${AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER}, user pool ${COGNITO_USER_POOL_ID}"
.venv/bin/python manage.py seed_demo --credentials-file var/demo-credentials.json
# moto keeps nothing across restarts: a second `make run` starts an empty pool while the database's
# outbox says synced. Recreate whatever the new pool lacks (missing accounts, groups).
.venv/bin/python manage.py reconcile_cognito --fix >var/reconcile.log 2>&1 || \
  echo "Some Cognito drift remains after the repair: see var/reconcile.log" >&2
tail -1 var/reconcile.log

# Operator commands (`manage.py create_organization ...`) need the same environment as the server.
cat >var/demo.env <<ENV
DJANGO_DEBUG=true
DJANGO_SECURE_SSL_REDIRECT=false
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_REGION=ap-southeast-2
AWS_DEFAULT_REGION=ap-southeast-2
AWS_EC2_METADATA_DISABLED=true
WEBHOOK_ALLOW_PRIVATE_TARGETS=true
AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER=${AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER}
COGNITO_USER_POOL_ID=${COGNITO_USER_POOL_ID}
ENV
cat var/hi/hi.env >>var/demo.env
echo
echo "Service: http://127.0.0.1:${PORT}/   API docs: http://127.0.0.1:${PORT}/v1/docs   admin: http://127.0.0.1:${PORT}/admin/"
echo "Operator commands, in another terminal: set -a; . var/demo.env; set +a   (then .venv/bin/python manage.py help)"
# The background work (Cognito retries, webhook deliveries, access expiry): its log in var/worker.log.
.venv/bin/python manage.py run_worker >var/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill $WORKER_PID $HI_PID $MOTO_PID 2>/dev/null || true' EXIT
echo "Worker: run_worker (log in var/worker.log)"
echo
.venv/bin/python manage.py runserver "127.0.0.1:${PORT}" --noreload
