"""Access expiry: users whose `access_expires_at` has passed are disabled by the worker.

`disable_expired_users` is one pass; `run_worker` calls it every few seconds, so a user is
disabled within a minute of the moment. Each user is claimed and disabled in a transaction of its
own: the claim is `SELECT ... FOR UPDATE SKIP LOCKED`, so several workers at once take different
users and none waits on another, and `user_disable` (which locks the row again and is idempotent)
writes the one audit event, the history row and the Cognito outbox work, as every disable does.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.cognito import sync
from accounts.models import User
from audit.context import Actor

ACTOR_NAME = "access expiry"


def disable_expired_users(*, now: datetime.datetime | None = None, limit: int = 500, should_stop=None) -> int:
    """Disable up to `limit` active users whose access expired at or before `now` (default: the
    current time), oldest expiry first. Returns how many this call disabled.

    The Cognito work is only recorded: the worker's own Cognito job applies it, so one pass never
    waits on Cognito user after user (which would hold up the worker's other jobs)."""
    now = now or timezone.now()
    actor = Actor.system(ACTOR_NAME)
    disabled = 0
    while disabled < limit and not (should_stop is not None and should_stop()):
        with transaction.atomic(), sync.inline_sync_disabled():
            user = (
                User.objects.select_for_update(skip_locked=True, of=("self",))
                # The partial index user_access_expiry_due_idx serves exactly this condition.
                .filter(status=User.Status.ACTIVE, access_expires_at__isnull=False, access_expires_at__lte=now)
                .order_by("access_expires_at", "pk")
                .first()
            )
            if user is None:
                break
            services.user_disable(
                user=user, actor=actor, reason=f"Access expired at {user.access_expires_at.isoformat()}."
            )
        disabled += 1
    return disabled
