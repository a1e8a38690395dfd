"""Several workers at once, and a worker killed with SIGKILL: PostgreSQL only (SKIP LOCKED, and a
second process must see the test database)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.cognito import sync
from accounts.models import CognitoSync
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL (DATABASE_URL)"
    ),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queued(make_user):
    def make(count):
        with sync.inline_sync_disabled():
            return [make_user(n, roles=["rx_reader"]) for n in range(count)]

    return make


def test_parallel_workers_apply_every_row_exactly_once(queued, applied_per_user):
    users = queued(30)  # six claims of 5 for the 4 workers to race over
    start = threading.Barrier(4)
    errors = []

    def slow_claim(execute, sql, params, many, context):
        # Widen the race: hold the claim's SELECT open a moment, so workers overlap inside it.
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("SELECT") and "claimed_until" in sql and "LIMIT" in sql:
            time.sleep(0.05)
        return result

    def worker():
        try:
            start.wait()
            with connection.execute_wrapper(slow_claim):
                while True:
                    result = sync.process_due(limit=5)
                    if not (result.applied or result.failed or result.released):
                        break
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert {str(u.pk) for u in users} == set(applied_per_user)
    assert set(applied_per_user.values()) == {1}  # no row applied twice
    assert CognitoSync.objects.exclude(state=CognitoSync.State.SYNCED).count() == 0


def _database_url():
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_a_worker_killed_with_sigkill_mid_batch_loses_nothing(queued, cognito_server, capsys):
    users = queued(10)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": _database_url(),
        "COGNITO_SYNC_LEASE_SECONDS": "4",
    }
    cognito_server.stall()  # the worker claims its batch, then hangs on its first Cognito call
    try:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "sync_cognito", "--loop", "--batch-size", "10"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: CognitoSync.objects.filter(claim_token__isnull=False).count() >= len(users),
                       timeout=30, what="the worker to claim its batch")
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
    finally:
        cognito_server.start()

    claimed = CognitoSync.objects.filter(state=CognitoSync.State.PENDING, claimed_until__gt=timezone.now())
    assert claimed.count() == len(users)  # orphaned under the dead worker's lease
    wait_until(lambda: not CognitoSync.objects.filter(claimed_until__gt=timezone.now()).exists(), timeout=30,
               what="the dead worker's lease to lapse")

    call_command("sync_cognito")
    assert "applied: 10  failed: 0  still pending: 0" in capsys.readouterr().out
    assert CognitoSync.objects.exclude(state=CognitoSync.State.SYNCED).count() == 0
