"""The Cognito outbox: record the desired state inside the transaction, apply it after commit.

`record_desired_state` runs inside the service's transaction (from the signal receiver).
`apply_after_commit` schedules the inline attempt with transaction.on_commit, so no network call
ever runs inside a database transaction. Whatever the inline attempt can't finish stays pending
for `manage.py sync_cognito`, whose workers claim rows with SELECT ... FOR UPDATE SKIP LOCKED and
a lease, so several can run at once and a killed one loses nothing.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts import roles as role_names
from accounts.cognito.gateway import CognitoError, get_gateway
from accounts.models import CognitoSync, User

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
MAX_ATTEMPTS = 8  # then the row is `failed` and waits for an operator's retry
_BACKOFF_BASE_SECONDS = 5
_BACKOFF_CAP_SECONDS = 15 * 60
# After an inline failure, requests in this process leave the work to the workers for a while
# instead of each waiting on a Cognito that is down.
_INLINE_PAUSE_SECONDS = 30
_inline_paused_until = 0.0


def desired_state(user: User) -> dict:
    """The complete state the Cognito account should have: applying it twice changes nothing."""
    return {
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "organization_id": str(user.organization_id),
        "groups": sorted(role_names.cognito_groups(user.roles)),
        "enabled": user.is_active,
    }


def record_desired_state(user: User) -> None:
    """Inside the caller's transaction: the newest desired state, with its version bumped."""
    if user.organization_id is None:  # platform staff have no Cognito account
        return
    state = desired_state(user)
    now = timezone.now()
    updated = CognitoSync.objects.filter(pk=user.pk).update(
        desired=state,
        desired_version=F("desired_version") + 1,
        state=CognitoSync.State.PENDING,
        attempts=0,
        next_attempt_at=now,
        updated_at=now,
    )
    if not updated:
        CognitoSync.objects.create(user=user, desired=state, next_attempt_at=now)


def apply_after_commit(user_id) -> None:
    if settings.COGNITO_SYNC_INLINE:
        transaction.on_commit(lambda: _apply_inline(user_id))


def _apply_inline(user_id) -> None:
    global _inline_paused_until
    if time.monotonic() < _inline_paused_until:
        return
    claim = _claim_one(user_id)
    if claim is not None and not _apply(claim):
        _inline_paused_until = time.monotonic() + _INLINE_PAUSE_SECONDS


@dataclass(frozen=True)
class Claim:
    user_id: uuid.UUID
    token: uuid.UUID
    version: int
    desired: dict
    attempts: int


def _due(now) -> Q:
    return Q(state=CognitoSync.State.PENDING) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def _claim_one(user_id) -> Claim | None:
    now = timezone.now()
    token = uuid.uuid4()
    claimed = CognitoSync.objects.filter(_due(now), pk=user_id).update(
        claimed_until=now + LEASE, claim_token=token
    )
    if not claimed:
        return None  # synced already, or another worker holds it
    row = CognitoSync.objects.get(pk=user_id)
    return Claim(row.user_id, token, row.desired_version, row.desired, row.attempts)


def claim_batch(limit: int = 50) -> list[Claim]:
    """Claim up to `limit` due rows. Concurrent workers skip each other's locked rows."""
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(
            CognitoSync.objects.select_for_update(skip_locked=True)
            .filter(_due(now), next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        CognitoSync.objects.filter(pk__in=ids).update(claimed_until=now + LEASE, claim_token=token)
        rows = CognitoSync.objects.filter(pk__in=ids).values_list("pk", "desired_version", "desired", "attempts")
        return [Claim(pk, token, version, desired, attempts) for pk, version, desired, attempts in rows]


def _apply(claim: Claim) -> bool:
    desired = claim.desired
    try:
        get_gateway().apply_state(
            username=str(claim.user_id),
            email=desired["email"],
            given_name=desired["given_name"],
            family_name=desired["family_name"],
            organization_id=desired["organization_id"],
            groups=set(desired["groups"]),
            enabled=desired["enabled"],
            send_invitation=settings.COGNITO_SEND_INVITATION,
        )
    except CognitoError as error:
        _record_failure(claim, str(error))
        logger.warning("Cognito sync of user %s failed (attempt %s): %s", claim.user_id, claim.attempts + 1, error)
        return False
    _record_success(claim)
    return True


def _record_success(claim: Claim) -> None:
    # If a newer state arrived while we worked, the row stays pending for it.
    CognitoSync.objects.filter(pk=claim.user_id, claim_token=claim.token).update(
        synced_version=claim.version,
        state=Case(
            When(desired_version=claim.version, then=Value(CognitoSync.State.SYNCED)),
            default=Value(CognitoSync.State.PENDING),
        ),
        attempts=0,
        last_error="",
        claimed_until=None,
        claim_token=None,
        updated_at=timezone.now(),
    )


def _record_failure(claim: Claim, message: str) -> None:
    attempts = claim.attempts + 1
    delay = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    now = timezone.now()
    CognitoSync.objects.filter(pk=claim.user_id, claim_token=claim.token).update(
        attempts=attempts,
        last_error=message[:2000],
        next_attempt_at=now + timedelta(seconds=delay),
        state=CognitoSync.State.FAILED if attempts >= MAX_ATTEMPTS else CognitoSync.State.PENDING,
        claimed_until=None,
        claim_token=None,
        updated_at=now,
    )


def process_due(limit: int = 50) -> tuple[int, int]:
    """One pass of the worker: (applied, failed)."""
    applied = failed = 0
    for claim in claim_batch(limit):
        if _apply(claim):
            applied += 1
        else:
            failed += 1
    return applied, failed


def retry(queryset) -> int:
    """Operator's retry (admin action, `sync_cognito --retry-failed`): failed rows become due now."""
    return queryset.filter(state=CognitoSync.State.FAILED).update(
        state=CognitoSync.State.PENDING, attempts=0, next_attempt_at=timezone.now(), updated_at=timezone.now()
    )
