"""`manage.py run_worker` as a real process on PostgreSQL: SIGTERM, two at once, memory."""

import os
import time

import pytest

from accounts.models import CognitoSync
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL (DATABASE_URL)"
    ),
]

MEMORY_LIMIT_MB = 200


def synced():
    return CognitoSync.objects.filter(state=CognitoSync.State.SYNCED).count()


def test_a_worker_syncs_new_work_and_stops_cleanly_on_sigterm(queued, start_worker):
    worker = start_worker()
    wait_until(lambda: "Worker started" in worker.log, 30, what="the worker to start")
    users = queued(5)  # arriving while it runs: picked up within its one-second interval

    wait_until(lambda: synced() == len(users), 30, what="the sync")
    rss = worker.peak_rss_mb()
    started = time.monotonic()
    assert worker.terminate() == 0
    print(f"worker peak RSS {rss:.0f} MB; stopped {time.monotonic() - started:.1f}s after SIGTERM")

    assert time.monotonic() - started < 5
    assert worker.handled("cognito_sync") == len(users)
    assert rss < MEMORY_LIMIT_MB
    assert "Traceback" not in worker.log


def test_sigterm_while_cognito_hangs_gives_back_the_claimed_rows(queued, start_worker, cognito_server):
    users = queued(10)
    cognito_server.stall()  # the worker claims its batch, then waits on its first Cognito call
    try:
        worker = start_worker()
        wait_until(lambda: CognitoSync.objects.filter(claim_token__isnull=False).count() == len(users), 30, what="claims")
        assert worker.terminate() == 0  # the call in flight times out (2 s in the tests), the rest is given back
    finally:
        cognito_server.start()

    assert not CognitoSync.objects.filter(claim_token__isnull=False).exists()  # nothing left under a lease
    assert CognitoSync.objects.filter(state=CognitoSync.State.PENDING).count() == len(users)
    assert "Worker stopped" in worker.log

    again = start_worker("after")  # and the next worker takes them at once, not after a lease
    wait_until(lambda: synced() == len(users), 60, what="the next worker")
    assert again.terminate() == 0


def test_two_workers_share_the_work_with_nothing_lost_or_doubled(queued, start_worker):
    users = queued(150)
    first, second = start_worker("first"), start_worker("second")

    wait_until(lambda: synced() == len(users), 120, what="every row")
    peaks = first.peak_rss_mb(), second.peak_rss_mb()
    assert first.terminate() == 0 and second.terminate() == 0

    handled = first.handled("cognito_sync"), second.handled("cognito_sync")
    print(f"applied by each worker: {handled}; peak RSS MB: {peaks[0]:.0f}, {peaks[1]:.0f}")
    assert sum(handled) == len(users)  # each row applied once: none lost, none twice
    assert CognitoSync.objects.exclude(state=CognitoSync.State.SYNCED).count() == 0
    assert max(peaks) < MEMORY_LIMIT_MB
