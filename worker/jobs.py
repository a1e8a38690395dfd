"""The worker's jobs: one line each (name, callable, seconds between runs when there was nothing to do).

A job is `run(should_stop) -> int`: it does one bounded pass and returns how many things it
handled. When it handled any, the worker runs it again at once (more may be waiting); otherwise
after its interval. It must be safe with several workers running it at once (claims with SKIP
LOCKED, or idempotent deletes) and should check `should_stop()` between items so SIGTERM is
answered within one item. The jobs of a lane share a thread; lanes run side by side (worker/runner.py).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from accounts import expiry
from accounts.api.oauth import delete_expired_tokens
from accounts.cognito import sync
from organizations.models import IdempotencyKey
from verification import queue as verification_queue
from webhooks import delivery, retention
from worker.heartbeat import heartbeat_record

COGNITO_BATCH_SIZE = 50
COGNITO_PASS_SECONDS = 3.0
# Attempts in one pass (WEBHOOK_DELIVERY_CONCURRENCY at once); the pass claims as slots free up.
WEBHOOK_BATCH_SIZE = 200
# The jobs run one after another: a pass of slow receivers (up to WEBHOOK_TIMEOUT_SECONDS each) must not
# hold the Cognito sync and the access expiry back; past this budget the pass gives the rest back.
WEBHOOK_PASS_SECONDS = 5.0
EXPIRY_BATCH_SIZE = 100
VERIFICATION_BATCH_SIZE = 20
# A pass claims what the request budget lets it ask in this long (at least the batch size) and
# gives back what it has not started by then, so SIGTERM is answered within a pass.
VERIFICATION_PASS_SECONDS = 2.0
# A first pass over months of history must not hold the deliveries and the Cognito sync back either.
RETENTION_PASS_SECONDS = 2.0


MAIN_LANE = "main"


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Callable[[], bool]], int]
    interval: float  # seconds
    # The jobs of one lane run one after another in one thread; each lane has its own thread, so
    # a job that waits on a slow remote (the register) can't hold the others back.
    lane: str = MAIN_LANE


def cognito_sync(should_stop) -> int:
    # A pass gives the rest of its batch back after COGNITO_PASS_SECONDS, so a backlog after a bulk
    # change (an import, a deactivation) can't keep the webhooks' 5-second promise waiting.
    deadline = time.monotonic() + COGNITO_PASS_SECONDS
    result = sync.process_due(COGNITO_BATCH_SIZE, should_stop=lambda: should_stop() or time.monotonic() > deadline)
    if result.released and (should_stop() or time.monotonic() <= deadline):
        return 0  # stopping, or Cognito unavailable: wait the interval, don't spin
    return result.applied + result.failed  # budget spent: run again after the other jobs


def expired_tokens(should_stop) -> int:
    delete_expired_tokens()  # django-oauth-toolkit's own clear_expired: tokens, grants, stale refresh tokens
    return 0  # one pass deletes them all (in batches); nothing to run again at once


def expired_idempotency_keys(should_stop) -> int:
    IdempotencyKey.purge_expired()
    return 0


def webhook_delivery(should_stop) -> int:
    deadline = time.monotonic() + WEBHOOK_PASS_SECONDS
    delivered, failed, released = delivery.deliver_due(
        limit=WEBHOOK_BATCH_SIZE,
        should_stop=lambda: should_stop() or time.monotonic() > deadline,
        linger=delivery.LINGER_SECONDS,
    )
    if released and should_stop():  # stopping: give the rest back and wait
        return 0
    return delivered + failed  # budget spent with some given back: run again after the other jobs


def webhook_retention(should_stop) -> int:
    # Batches of retention.BATCH_SIZE until none is left or the budget is spent; rows deleted means
    # more may be left, so it runs again after the other jobs.
    deadline = time.monotonic() + RETENTION_PASS_SECONDS
    result = retention.purge_webhook_history(should_stop=lambda: should_stop() or time.monotonic() > deadline)
    return result.deliveries + result.events


def hi_verification(should_stop) -> int:
    # Due revalidations are queued, then changes and requests are asked about before them, under
    # HI_MAX_REQUESTS_PER_SECOND across every worker and request (verification/rate.py), with
    # HI_WORKER_CONCURRENCY calls in flight; errors back off to an hour. Nothing is asked while
    # HI_SERVICE_URL is unset. In its own lane: a hung register holds no other job.
    deadline = time.monotonic() + VERIFICATION_PASS_SECONDS
    limit = max(VERIFICATION_BATCH_SIZE, math.ceil(settings.HI_MAX_REQUESTS_PER_SECOND * VERIFICATION_PASS_SECONDS))
    counts = verification_queue.process_due(
        limit=limit, should_stop=lambda: should_stop() or time.monotonic() > deadline
    )
    if counts[verification_queue.RELEASED] and should_stop():
        return 0
    return counts[verification_queue.DONE] + counts[verification_queue.RETRY]


def access_expiry(should_stop) -> int:
    # Each expired user is disabled through user_disable (actor system "access expiry"), one
    # transaction each, SKIP LOCKED between workers; more than a batch waiting runs again at once.
    return expiry.disable_expired_users(limit=EXPIRY_BATCH_SIZE, should_stop=should_stop)


def heartbeat(should_stop) -> int:
    heartbeat_record()
    return 0


JOBS: tuple[Job, ...] = (
    # First, so a worker beats as it starts; every 10 s, well inside the minute /healthz allows.
    Job("heartbeat", heartbeat, interval=10.0),
    Job("cognito_sync", cognito_sync, interval=1.0),
    Job("expired_tokens", expired_tokens, interval=15 * 60.0),
    Job("expired_idempotency_keys", expired_idempotency_keys, interval=15 * 60.0),
    # WEBHOOK_POLL_SECONDS (0.2 s): an event is attempted well within 5 s of its commit while a worker runs.
    Job("webhook_delivery", webhook_delivery, interval=settings.WEBHOOK_POLL_SECONDS),
    # Access that ends by itself is ended within a minute.
    Job("access_expiry", access_expiry, interval=15.0),
    Job("webhook_retention", webhook_retention, interval=15 * 60.0),
    # A change is asked about within a second or two of the inline attempt leaving it.
    Job("hi_verification", hi_verification, interval=1.0, lane="register"),
)
