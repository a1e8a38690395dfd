"""The worker's jobs: one line each (name, callable, seconds between runs when there was nothing to do).

A job is `run(should_stop) -> int`: it does one bounded pass and returns how many things it
handled. When it handled any, the worker runs it again at once (more may be waiting); otherwise
after its interval. It must be safe with several workers running it at once (claims with SKIP
LOCKED, or idempotent deletes) and should check `should_stop()` between items so SIGTERM is
answered within one item.
"""

from collections.abc import Callable
from dataclasses import dataclass

from oauth2_provider.models import clear_expired

from accounts.cognito import sync
from organizations.models import IdempotencyKey

COGNITO_BATCH_SIZE = 50


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Callable[[], bool]], int]
    interval: float  # seconds


def cognito_sync(should_stop) -> int:
    result = sync.process_due(COGNITO_BATCH_SIZE, should_stop=should_stop)
    if result.released:  # stopping, or Cognito unavailable: wait the interval, don't spin
        return 0
    return result.applied + result.failed


def expired_tokens(should_stop) -> int:
    clear_expired()  # django-oauth-toolkit's own: expired access tokens, grants, stale refresh tokens
    return 0  # one pass deletes them all (in batches); nothing to run again at once


def expired_idempotency_keys(should_stop) -> int:
    IdempotencyKey.purge_expired()
    return 0


JOBS: tuple[Job, ...] = (
    Job("cognito_sync", cognito_sync, interval=1.0),
    Job("expired_tokens", expired_tokens, interval=15 * 60.0),
    Job("expired_idempotency_keys", expired_idempotency_keys, interval=15 * 60.0),
    # Job("webhook_delivery", webhooks.delivery.deliver_due, interval=1.0),
    # Job("access_expiry", accounts.expiry.disable_expired, interval=15.0),
)
