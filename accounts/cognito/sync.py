"""The Cognito outbox: record the desired state inside the transaction, apply it after commit.

One row per user (CognitoSync) holds the user's complete desired Cognito state, not a delta:
every change overwrites it and bumps `desired_version`, in the same transaction as the change
(`record_desired_state`, called by the signal receiver). Applying a state is idempotent, so a
task run twice, late or after a crash converges on the same account, and one user's tasks can't
be reordered because there is only ever one task per user and it always carries the newest state.

After commit, `apply_after_commit` tries the row inline (before the HTTP response), so no network
call ever runs inside a database transaction. Whatever the inline attempt can't finish stays
pending for `manage.py sync_cognito`.

Claiming. A worker takes rows with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL) and stamps each
with a lease (`claimed_until`) and its own `claim_token`; the inline attempt claims its one row
with a conditional UPDATE. Nobody takes a row whose lease is live, so no two workers apply a row at
once; a killed worker's lease lapses and the row is taken again, so nothing is lost. The lease is
renewed right before each row is applied, so it only has to cover one `apply_state`.

Finishing. Every result is written only under the worker's own claim_token, and:
- success marks `synced_version`; the row ends `synced` only if that version is still the latest,
  otherwise it stays pending and the same worker applies the newer state at once;
- a failure counts an attempt (with backoff; `failed` after MAX_ATTEMPTS) only if no newer state
  arrived meanwhile: a newer state is a new task, whose fresh attempts a stale failure must not
  clobber;
- a worker that finds its lease taken over (it outlived LEASE) may have written to Cognito after
  the new holder did, so it bumps `desired_version`: the row then can't end `synced` until one
  more complete apply has run after its writes.
"""

import contextlib
import contextvars
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.utils import timezone

from accounts import roles as role_names
from accounts.cognito.gateway import CognitoError, get_gateway
from accounts.models import CognitoSync, User

logger = logging.getLogger(__name__)

# Must exceed the longest single apply_state (a dozen calls, each bounded by the client's timeouts
# and retries); tests shorten it to show a killed worker's rows coming back.
LEASE = timedelta(seconds=int(os.environ.get("COGNITO_SYNC_LEASE_SECONDS", "") or 120))
MAX_ATTEMPTS = 8  # then the row is `failed` and waits for an operator's retry
_BACKOFF_BASE_SECONDS = 5
_BACKOFF_CAP_SECONDS = 15 * 60
# A user changed again while being applied is applied again at once, up to this many rounds.
_ROUNDS_PER_USER = 3
# After an inline failure that says Cognito is unavailable (timeouts, 5xx, throttling), requests
# in this process leave the work to the workers for a while instead of each waiting on it.
_INLINE_PAUSE_SECONDS = 30
_inline_paused_until = 0.0
_inline_pause_reason = ""


def desired_state(user: User) -> dict:
    """The complete state the Cognito account should have: applying it twice changes nothing."""
    return {
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "organization_id": str(user.organization_id),
        "groups": sorted(role_names.cognito_groups(user.roles)),
        "enabled": user.is_active and user.organization.is_active,
    }


def record_desired_state(user: User, *, new_user: bool = False) -> None:
    """Inside the caller's transaction: the newest desired state, with its version bumped.

    A new state is a new task: attempts start again and it is due now, even if the row had failed.
    """
    if user.organization_id is None:  # platform staff have no Cognito account
        return
    state = desired_state(user)
    now = timezone.now()
    if new_user:  # no row can exist yet: skip the UPDATE that would find nothing
        CognitoSync.objects.create(user=user, desired=state, next_attempt_at=now)
        return
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


# Bulk writers (import_users) turn the inline attempt off: one Cognito round trip per row would
# dominate a 100k-row import, and the outbox rows they leave pending are the workers' job anyway.
_inline_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("cognito_inline_disabled", default=False)


@contextlib.contextmanager
def inline_sync_disabled():
    """Within this block, changes only record their Cognito work; `sync_cognito` applies it."""
    token = _inline_disabled.set(True)
    try:
        yield
    finally:
        _inline_disabled.reset(token)


def apply_after_commit(user_id) -> None:
    if settings.COGNITO_SYNC_INLINE and not _inline_disabled.get():
        transaction.on_commit(lambda: _apply_inline(user_id))


def _apply_inline(user_id) -> None:
    """Runs after commit, before the response. Never raises: the change itself has succeeded."""
    global _inline_paused_until, _inline_pause_reason
    try:
        if time.monotonic() < _inline_paused_until:
            # Say on the row why it is still pending (no attempt was made, so none is counted).
            CognitoSync.objects.filter(pk=user_id, state=CognitoSync.State.PENDING).update(
                last_error=f"{_inline_pause_reason} (inline sync paused; queued for sync_cognito)"[:2000]
            )
            return
        error = sync_user(user_id)
        if isinstance(error, CognitoError) and error.retryable:
            _inline_paused_until = time.monotonic() + _INLINE_PAUSE_SECONDS
            _inline_pause_reason = str(error)
    except Exception as exc:  # e.g. the database went away after commit; the row stays pending
        # The class name only: an exception's text may echo values (PII).
        logger.error("Inline Cognito sync of user %s did not run: %s", user_id, type(exc).__name__)


@dataclass(frozen=True)
class Claim:
    user_id: uuid.UUID
    token: uuid.UUID
    version: int
    desired: dict
    attempts: int


def _due(now) -> Q:
    return Q(state=CognitoSync.State.PENDING) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def _read_claim(user_id, token) -> Claim:
    version, desired, attempts = CognitoSync.objects.filter(pk=user_id).values_list(
        "desired_version", "desired", "attempts"
    ).get()
    return Claim(user_id, token, version, desired, attempts)


def _claim_one(user_id) -> Claim | None:
    now = timezone.now()
    token = uuid.uuid4()
    claimed = CognitoSync.objects.filter(_due(now), pk=user_id).update(claimed_until=now + LEASE, claim_token=token)
    if not claimed:
        return None  # synced already, failed, or another worker holds it
    return _read_claim(user_id, token)


def _renew(claim: Claim) -> Claim | None:
    """Right before applying a batch row: extend the lease and pick up any newer desired state."""
    claimed = CognitoSync.objects.filter(pk=claim.user_id, claim_token=claim.token).update(
        claimed_until=timezone.now() + LEASE
    )
    return _read_claim(claim.user_id, claim.token) if claimed else None


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


def release(claims) -> int:
    """Give back claimed rows that were not applied (a stopping worker), so they are due at once."""
    released = 0
    for claim in claims:
        released += CognitoSync.objects.filter(pk=claim.user_id, claim_token=claim.token).update(
            claimed_until=None, claim_token=None
        )
    return released


def _apply(claim: Claim) -> Exception | None:
    """Apply one claimed state; record the outcome. Returns the error, or None on success."""
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
    except CognitoError as exc:
        error, message = exc, str(exc)  # operation and AWS code only, never request values
    except Exception as exc:  # a bug must not strand the row under a lease; its text may hold PII
        error, message = exc, f"Unexpected {type(exc).__name__} while applying the Cognito state"
    else:
        _record_success(claim)
        return None
    _record_failure(claim, message)
    logger.warning("Cognito sync of user %s failed (attempt %s): %s", claim.user_id, claim.attempts + 1, message)
    return error


def _settle(claim: Claim) -> Exception | None:
    """Apply, then apply again while newer states arrived meanwhile (bounded)."""
    rounds = 0
    while claim is not None:
        error = _apply(claim)
        rounds += 1
        if error is not None or rounds >= _ROUNDS_PER_USER:
            return error
        claim = _claim_one(claim.user_id)
    return None


def sync_user(user_id) -> Exception | None:
    """Apply one user's pending state now, unless another worker holds it. Returns the last error."""
    claim = _claim_one(user_id)
    return None if claim is None else _settle(claim)


def _record_success(claim: Claim) -> None:
    now = timezone.now()
    done = CognitoSync.objects.filter(pk=claim.user_id, claim_token=claim.token).update(
        synced_version=claim.version,
        # A newer state arrived while we worked: the row stays pending for it.
        state=Case(
            When(desired_version=claim.version, then=Value(CognitoSync.State.SYNCED)),
            default=Value(CognitoSync.State.PENDING),
        ),
        attempts=0,
        last_error="",
        claimed_until=None,
        claim_token=None,
        updated_at=now,
    )
    if not done:
        _lease_lost(claim)


def _record_failure(claim: Claim, message: str) -> None:
    attempts = claim.attempts + 1
    delay = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    now = timezone.now()
    same_task = Q(desired_version=claim.version)  # else a newer state arrived: its attempts stand
    fields = {name: CognitoSync._meta.get_field(name) for name in ("attempts", "next_attempt_at", "state")}
    done = CognitoSync.objects.filter(pk=claim.user_id, claim_token=claim.token).update(
        attempts=Case(When(same_task, then=Value(attempts)), default=F("attempts"), output_field=fields["attempts"]),
        next_attempt_at=Case(
            When(same_task, then=Value(now + timedelta(seconds=delay))),
            default=F("next_attempt_at"),
            output_field=fields["next_attempt_at"],
        ),
        state=Case(
            When(
                same_task,
                then=Value(CognitoSync.State.FAILED if attempts >= MAX_ATTEMPTS else CognitoSync.State.PENDING),
            ),
            default=F("state"),
            output_field=fields["state"],
        ),
        last_error=message[:2000],
        claimed_until=None,
        claim_token=None,
        updated_at=now,
    )
    if not done:
        _lease_lost(claim)


def _lease_lost(claim: Claim) -> None:
    # Our lease lapsed and another worker took the row: our Cognito writes may have landed after
    # its, so one more full apply must run after ours before the row may be `synced`.
    logger.warning("Cognito sync lease of user %s lapsed before the worker finished", claim.user_id)
    CognitoSync.objects.filter(pk=claim.user_id).update(
        desired_version=F("desired_version") + 1,
        state=CognitoSync.State.PENDING,
        next_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )


class PassResult(NamedTuple):
    applied: int
    failed: int
    released: int  # claimed but given back: the worker is stopping, or Cognito is unavailable


def process_due(limit: int = 50, should_stop=None) -> PassResult:
    """One pass of the worker over up to `limit` due rows.

    Stops early, giving back the rest of the batch without counting attempts against them, when
    `should_stop()` says so or when Cognito answers as unavailable (the other rows would only
    fail the same way).
    """
    applied = failed = 0
    claims = claim_batch(limit)
    for index, claim in enumerate(claims):
        if should_stop is not None and should_stop():
            return PassResult(applied, failed, release(claims[index:]))
        current = _renew(claim)
        if current is None:
            continue  # our lease lapsed and another worker has the row
        error = _settle(current)
        if error is None:
            applied += 1
            continue
        failed += 1
        if isinstance(error, CognitoError) and error.retryable:
            return PassResult(applied, failed, release(claims[index + 1 :]))
    return PassResult(applied, failed, 0)


def retry(queryset) -> int:
    """Operator's retry (admin action, `sync_cognito --retry-failed`): failed rows become due now."""
    now = timezone.now()
    return queryset.filter(state=CognitoSync.State.FAILED).update(
        state=CognitoSync.State.PENDING,
        attempts=0,
        next_attempt_at=now,
        claimed_until=None,
        claim_token=None,
        updated_at=now,
    )


def state_counts() -> dict[str, int]:
    """Rows by state, every state present (for `sync_cognito --status` and summaries)."""
    counts = dict.fromkeys(CognitoSync.State.values, 0)
    for state, count in CognitoSync.objects.values_list("state").annotate(n=Count("pk")).order_by():
        counts[state] = count
    return counts
