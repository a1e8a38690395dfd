"""The Cognito outbox: record the desired state inside the transaction, apply it after commit.

One row per user (CognitoSync) holds the user's complete desired Cognito state, not a delta:
every change overwrites it and bumps `desired_version`, in the same transaction as the change
(`record_desired_state`, called by the signal receiver). Applying a state is idempotent, so a
task run twice, late or after a crash converges on the same account, and one user's tasks can't
be reordered because there is only ever one task per user and it always carries the newest state.

After commit, `apply_after_commit` tries the row inline (before the HTTP response), so no network
call ever runs inside a database transaction. Whatever the inline attempt can't finish stays
pending for `manage.py sync_cognito`.

Budget. The inline attempt has COGNITO_SYNC_INLINE_BUDGET_SECONDS (default 1.5) in all: one
attempt per call, timeouts cut to what is left, no call started that can't end in time. When the
budget runs out the row stays pending, due at once for the worker, and no attempt is counted
against it (slowness is not the change's fault; the worker, with full timeouts and retries, counts
its own). Like a timeout or a 5xx, it pauses the inline attempts of this process for a while.

Fewer calls. Each row keeps `synced`, the state last applied in full: the next apply sends only
the differences (a role change is its group calls, a rename one AdminUpdateUserAttributes, a
disable AdminDisableUser + AdminUserGlobalSignOut + the group removals). A row never applied
creates the account without reading first. `synced` is forgotten (NULL: read the account first)
when an apply fails after sending a write, or when a lease lapses.

Claiming (core/outbox.py, as for webhooks). A worker takes rows with SELECT ... FOR UPDATE SKIP
LOCKED (PostgreSQL) and stamps each with a lease (`claimed_until`) and its own `claim_token`; the
inline attempt claims its one row with a conditional UPDATE. Nobody takes a row whose lease is
live, so no two workers apply a row at once; a killed worker's lease lapses and the row is taken
again, so nothing is lost. The lease is
renewed right before each row is applied, so it only has to cover one `apply_state`.

Finishing. Every result is written only under the worker's own claim_token, and:
- success marks `synced_version`; the row ends `synced` only if that version is still the latest,
  otherwise it stays pending and the same worker applies the newer state at once;
- a failure counts an attempt (with backoff; `failed` after MAX_ATTEMPTS, or at once when Cognito
  answered that it can never succeed: not retryable) only if no newer state arrived meanwhile: a
  newer state is a new task, whose fresh attempts a stale failure must not clobber. A row that
  becomes `failed` writes the audit event `user.cognito_sync_failed` in the same transaction;
- a worker that finds its lease taken over (it outlived the lease) may have written to Cognito after
  the new holder did, so it bumps `desired_version`: the row then can't end `synced` until one
  more complete apply has run after its writes.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts import roles as role_names
from accounts.cognito.gateway import Budget, CognitoBudgetExceeded, CognitoError, get_gateway
from accounts.models import CognitoSync, User
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from core.db import PreparedQuery
from core.outbox import Outbox
from core.switches import ContextSwitch
from organizations.models import Organization

logger = logging.getLogger(__name__)



def _lease() -> timedelta:
    """How long a claim holds (settings.COGNITO_SYNC_LEASE_SECONDS); tests shorten it to show a killed
    worker's rows coming back."""
    return timedelta(seconds=settings.COGNITO_SYNC_LEASE_SECONDS)


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
SYNC_ACTOR = Actor.system("cognito sync")
# The user's fields its Cognito account carries (with its organization, roles and status).
ACCOUNT_FIELDS = frozenset({"email", "given_name", "family_name"})


def desired_state(user: User, *, organization_active: bool | None = None) -> dict:
    """The complete state the Cognito account should have: applying it twice changes nothing.

    The account is enabled exactly when the user and its organization are both active."""
    if organization_active is None:
        organization_active = user.organization.is_active
    return {
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "organization_id": str(user.organization_id),
        "groups": sorted(role_names.cognito_groups(user.roles)),
        "enabled": user.is_active and organization_active,
    }


# Every change Cognito carries reads this (compiled once: core/db.py).
_ORGANIZATION_ACTIVE = PreparedQuery(
    lambda organization_id: Organization.objects.filter(pk=organization_id).values("is_active"),
    organization_id=uuid.UUID,
)


def record_desired_state(user: User, *, new_user: bool = False, read_account: bool = False) -> None:
    """Inside the caller's transaction: the newest desired state, with its version bumped.

    A new state is a new task: attempts start again and it is due now, even if the row had failed.
    `read_account` forgets the last applied state, so the next apply reads the account and
    converges on what it finds (reconcile_cognito --fix repairs drift this way).
    """
    if user.organization_id is None:  # platform staff have no Cognito account
        return
    # Read now, not from the copy the request loaded: a deactivation that committed since (an API
    # call authenticated just before it) must not leave this account enabled. Reading after the
    # caller locked or inserted the user is enough: organization_deactivate locks the organization
    # (which an insert's foreign-key check waits on) and then the users, before recording theirs.
    organization_id = user.organization_id
    if not isinstance(organization_id, uuid.UUID):
        organization_id = uuid.UUID(str(organization_id))
    organization_active = _ORGANIZATION_ACTIVE.rows(organization_id=organization_id)[0]["is_active"]
    state = desired_state(user, organization_active=organization_active)
    now = timezone.now()
    if new_user:  # no row can exist yet: skip the UPDATE that would find nothing
        CognitoSync.objects.create(user=user, desired=state, next_attempt_at=now)
        return
    forget = {"synced": None} if read_account else {}
    updated = CognitoSync.objects.filter(pk=user.pk).update(
        desired=state,
        desired_version=F("desired_version") + 1,
        state=CognitoSync.State.PENDING,
        attempts=0,
        next_attempt_at=now,
        updated_at=now,
        **forget,
    )
    if not updated:
        CognitoSync.objects.create(user=user, desired=state, next_attempt_at=now)


# Bulk writers (import_users) turn the inline attempt off: within `inline_sync_disabled()`, changes
# only record their Cognito work for `sync_cognito`, and other inline work after commit (the register
# check) is left to the workers too (`inline_disabled()`).
_inline_sync = ContextSwitch("cognito_inline_sync")
inline_sync_disabled = _inline_sync.off
inline_disabled = _inline_sync.is_off


def apply_after_commit(user_id) -> None:
    if settings.COGNITO_SYNC_INLINE and not _inline_sync.is_off():
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
        error = sync_user(user_id, budget=Budget(settings.COGNITO_SYNC_INLINE_BUDGET_SECONDS))
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
    synced: dict | None = None  # the state last applied, when known
    synced_version: int = 0  # 0: the outbox has never applied a state for this user


_CLAIM_FIELDS = ("desired_version", "desired", "attempts", "synced", "synced_version")


def _outbox() -> Outbox:
    # Built per use: the lease is read from the settings each time (tests shorten it).
    return Outbox(CognitoSync, lease=_lease())


_PENDING = Q(state=CognitoSync.State.PENDING)


def _read_claim(user_id, token) -> Claim:
    return Claim(user_id, token, *CognitoSync.objects.filter(pk=user_id).values_list(*_CLAIM_FIELDS).get())


def _claim_one(user_id) -> Claim | None:
    """Claim one pending row nobody holds and read its state in the same statement: every inline
    sync runs this."""
    claimed = _outbox().claim_one_returning(user_id, _CLAIM_FIELDS, state=CognitoSync.State.PENDING)
    if claimed is None:
        return None  # synced already, failed, or another worker holds it
    token, row = claimed
    return Claim(user_id, token, *row)


def _db_value(field_name: str, value, connection):
    return CognitoSync._meta.get_field(field_name).get_db_prep_value(value, connection)


def _renew(claim: Claim) -> Claim | None:
    """Right before applying a batch row: extend the lease and pick up any newer desired state."""
    return _read_claim(claim.user_id, claim.token) if _outbox().renew(claim.user_id, claim.token) else None


def claim_batch(limit: int = 50) -> list[Claim]:
    """Claim up to `limit` due rows. Concurrent workers skip each other's locked rows."""
    token, ids = _outbox().claim_due(
        _PENDING & Q(next_attempt_at__lte=timezone.now()), order_by=("next_attempt_at",), limit=limit
    )
    if not ids:
        return []
    rows = CognitoSync.objects.filter(pk__in=ids, claim_token=token).values_list("pk", *_CLAIM_FIELDS)
    return [Claim(pk, token, *fields) for pk, *fields in rows]


def release(claims) -> int:
    """Give back claimed rows that were not applied (a stopping worker), so they are due at once."""
    by_token: dict[uuid.UUID, list] = {}
    for claim in claims:
        by_token.setdefault(claim.token, []).append(claim.user_id)
    return sum(_outbox().release(user_ids, token) for token, user_ids in by_token.items())


def _apply(claim: Claim, budget: Budget | None = None) -> Exception | None:
    """Apply one claimed state; record the outcome. Returns the error, or None on success."""
    return _apply_and_record(claim, budget)[0]


def _apply_and_record(claim: Claim, budget: Budget | None = None) -> tuple[Exception | None, bool]:
    """As _apply, and whether the row ended `synced` (no newer state arrived meanwhile)."""
    desired = claim.desired
    gateway = get_gateway(budget=budget)
    try:
        gateway.apply_state(
            username=str(claim.user_id),
            email=desired["email"],
            given_name=desired["given_name"],
            family_name=desired["family_name"],
            organization_id=desired["organization_id"],
            groups=set(desired["groups"]),
            enabled=desired["enabled"],
            send_invitation=settings.COGNITO_SEND_INVITATION,
            applied=claim.synced,
            never_applied=claim.synced_version == 0,
        )
    except CognitoBudgetExceeded as exc:
        spent = f" (inline budget of {budget.seconds} s)" if budget is not None else ""
        _record_deferred(claim, f"{exc}{spent}", wrote=gateway.wrote)
        return exc, False
    except CognitoError as exc:
        error, reason = exc, f"{exc.operation}: {exc.code}"  # never request values
        permanent = not exc.retryable
    except Exception as exc:  # a bug must not strand the row under a lease; its text may hold PII
        # Counted and retried like an outage: a fix is deployed, not the user changed.
        error, reason, permanent = exc, f"apply_state: {type(exc).__name__}", False
    else:
        return None, _record_success(claim)
    _record_failure(claim, reason, permanent=permanent, wrote=gateway.wrote)
    logger.warning("Cognito sync of user %s failed (attempt %s): %s", claim.user_id, claim.attempts + 1, reason)
    return error, False


def _settle(claim: Claim, budget: Budget | None = None) -> Exception | None:
    """Apply, then apply again while newer states arrived meanwhile (bounded)."""
    rounds = 0
    while claim is not None:
        error, synced = _apply_and_record(claim, budget)
        rounds += 1
        # Synced: the finish saw no newer state, so a claim now would find nothing to apply.
        if error is not None or synced or rounds >= _ROUNDS_PER_USER:
            return error
        claim = _claim_one(claim.user_id)
    return None


def sync_user(user_id, *, budget: Budget | None = None) -> Exception | None:
    """Apply one user's pending state now, unless another worker holds it. Returns the last error.

    With a `budget`, the inline sync's: see the module's docstring."""
    claim = _claim_one(user_id)
    return None if claim is None else _settle(claim, budget)


def _finish(claim: Claim, *, where: Q | None = None, **fields) -> bool:
    """Write the outcome and give the row back, only while the claim still holds it."""
    return _outbox().finish(claim.user_id, claim.token, where=where, updated_at=timezone.now(), **fields)


def _record_success(claim: Claim) -> bool:
    """Mark the claimed version applied and give the row back; True when it ended `synced` (a newer
    state that arrived while we worked keeps it pending). One UPDATE ... RETURNING, for the state."""
    connection = connections[router.db_for_write(CognitoSync)]
    quote = connection.ops.quote_name
    opts = CognitoSync._meta
    now = timezone.now()
    # Names from the model's _meta; every value is a parameter.
    sql = (
        f"UPDATE {quote(opts.db_table)} SET {quote('synced_version')} = %s, {quote('synced')} = %s, "  # noqa: S608
        f"{quote('state')} = CASE WHEN {quote('desired_version')} = %s THEN %s ELSE %s END, "
        f"{quote('attempts')} = 0, {quote('last_error')} = '', {quote('updated_at')} = %s, "
        f"{quote('claimed_until')} = NULL, {quote('claim_token')} = NULL "
        f"WHERE {quote(opts.pk.column)} = %s AND {quote('claim_token')} = %s "
        f"RETURNING {quote('state')}"
    )
    params = [
        claim.version,
        _db_value("synced", claim.desired, connection),
        claim.version,
        CognitoSync.State.SYNCED,
        CognitoSync.State.PENDING,
        _db_value("updated_at", now, connection),
        _db_value("user", claim.user_id, connection),
        _db_value("claim_token", claim.token, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        _lease_lost(claim)
        return False
    return row[0] == CognitoSync.State.SYNCED


def _forget_if(wrote: bool) -> dict:
    # A write may have landed: the account is somewhere between the last applied state and this one.
    return {"synced": None} if wrote else {}


def _record_deferred(claim: Claim, message: str, *, wrote: bool) -> None:
    """The inline budget ran out: no attempt counted, due at once for the worker."""
    done = _finish(
        claim,
        last_error=f"{message} (queued for sync_cognito)"[:2000],
        next_attempt_at=timezone.now(),
        **_forget_if(wrote),
    )
    if not done:
        _lease_lost(claim)


def _record_failure(claim: Claim, reason: str, *, permanent: bool, wrote: bool) -> None:
    attempts = claim.attempts + 1
    delay = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    fails = permanent or attempts >= MAX_ATTEMPTS
    now = timezone.now()
    common = {"last_error": reason[:2000], **_forget_if(wrote)}
    with transaction.atomic():
        # The same task (no newer state arrived): the attempt counts.
        counted = _finish(
            claim,
            where=Q(desired_version=claim.version),
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            state=CognitoSync.State.FAILED if fails else CognitoSync.State.PENDING,
            **common,
        )
        if counted and fails:
            audit_event_record(
                action=AuditEvent.Action.USER_COGNITO_SYNC_FAILED,
                actor=SYNC_ACTOR,
                organization_id=claim.desired["organization_id"],
                user_id=claim.user_id,
                changes={"cognito_sync": {"from": "pending", "to": "failed"}, "error": {"from": None, "to": reason}},
            )
            logger.error("Cognito sync of user %s failed for good: %s", claim.user_id, reason)
        # Else a newer state is a new task whose fresh attempts stand; or our lease is gone.
        if not counted and not _finish(claim, **common):
            _lease_lost(claim)


def _lease_lost(claim: Claim) -> None:
    # Our lease lapsed and another worker took the row: our Cognito writes may have landed after
    # its, so one more full apply (reading the account first) must run after ours before the row
    # may be `synced`.
    logger.warning("Cognito sync lease of user %s lapsed before the worker finished", claim.user_id)
    CognitoSync.objects.filter(pk=claim.user_id).update(
        desired_version=F("desired_version") + 1,
        state=CognitoSync.State.PENDING,
        synced=None,
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
