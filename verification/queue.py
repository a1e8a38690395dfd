"""The register check's queue: recorded in the change's transaction, tried inline after commit
within HI_VERIFY_INLINE_BUDGET_SECONDS, and otherwise by the worker, with back-off, under the
one request budget (verification/rate.py).

Claiming is core/outbox.py's Outbox (SKIP LOCKED, a lease, a claim token), so two workers never
ask about one provider at once, and a killed worker's rows come back when the lease lapses. An
answer is applied only while the claim is still ours and the task's `version` is the one we read:
details changed meanwhile mean the answer is about old details, and the newer check runs instead.
"""

import collections
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.cognito import sync as cognito_sync
from accounts.models import ProviderDetails, User, VerificationStatus, verification_status_when_asked
from audit.context import Actor
from core.errors import ApplicationError
from core.outbox import Outbox
from core.request_id import request_started_at
from core.switches import ContextSwitch
from core.write_gate import released_while_waiting
from hi_service import client as hi_client
from verification import rate, services
from verification.models import VerificationTask

logger = logging.getLogger(__name__)

# Must exceed one call (the client's connect + read timeouts) with its wait for a free moment.
LEASE = timedelta(seconds=60)
OUTBOX = Outbox(VerificationTask, lease=LEASE)
_BACKOFF_BASE_SECONDS = 5
_BACKOFF_CAP_SECONDS = 60 * 60
# The worker waits at most this long for a free moment before giving the rest of its batch back.
WORKER_RATE_WAIT_SECONDS = 1.0
# An inline call with less than this left is not started: it could not end in time.
_INLINE_MIN_SECONDS = 0.1

# What process() did with a claimed task.
DONE = "done"  # an answer was recorded
RETRY = "retry"  # recorded as error, asked again after a back-off
RELEASED = "released"  # given back untouched (no free moment, out of budget, or details changed)
GONE = "gone"  # nothing left to ask about (no details, no identity), or the claim was lost


def requested_by(actor: Actor) -> str:
    return f"{actor.type}:{actor.id or actor.name}"


def task_record(*, user: User, actor: Actor, priority=VerificationTask.Priority.CHANGE, new: bool = False) -> None:
    """Inside the caller's transaction: the provider is to be asked about (again), due now.
    `new`: the provider details were just made, so there is no task to update (one INSERT)."""
    now = timezone.now()
    fields = {
        "version": F("version") + 1,
        "requested_by": requested_by(actor),
        "attempts": 0,
        "last_error": "",
        "next_attempt_at": now,
        "updated_at": now,
    }
    if priority == VerificationTask.Priority.CHANGE:
        fields["priority"] = priority
    if new or not VerificationTask.objects.filter(pk=user.pk).update(**fields):
        VerificationTask.objects.create(
            user_id=user.pk, organization_id=user.organization_id, priority=priority,
            requested_by=requested_by(actor), next_attempt_at=now,
        )


def task_forget(*, user: User) -> None:
    """Nothing to ask about any more (no HPI-I and no AHPRA number)."""
    VerificationTask.objects.filter(pk=user.pk).delete()


# Bulk writers (import_users, verify_providers) only queue: the workers ask at the register's rate.
_inline_verification = ContextSwitch("hi_inline_verification")
inline_verification_disabled = _inline_verification.off


def schedule_inline(user_id) -> None:
    """One attempt after the commit, ending within HI_VERIFY_INLINE_BUDGET_SECONDS of when the
    write asked: the request's arrival (its wait for a write turn, its own work and the Cognito
    sync before this attempt all count), or now outside a request. So a write answers within the
    budget and a little, whatever the register does and however many writes wait on it at once."""
    bulk = _inline_verification.is_off() or cognito_sync.inline_disabled()  # import_users: the workers ask
    if settings.HI_VERIFY_INLINE and not bulk and hi_client.configured():
        asked = request_started_at() or time.monotonic()
        deadline = asked + settings.HI_VERIFY_INLINE_BUDGET_SECONDS
        transaction.on_commit(lambda: verify_inline(user_id, deadline=deadline))


def verify_inline(user_id, *, deadline: float) -> str | None:
    """After commit, before the response: one attempt by `deadline` (monotonic). Never raises."""
    if deadline - time.monotonic() < _INLINE_MIN_SECONDS:
        return None  # the write has spent its budget already: the worker asks
    try:
        token = OUTBOX.claim_one(user_id, Q(next_attempt_at__lte=timezone.now()))
        if token is None:
            return None  # a worker holds it, or it is backing off
        return process(user_id, token, deadline=deadline)
    except Exception as exc:  # the change itself has succeeded; the task stays for the worker
        logger.error("Inline register check of user %s did not run: %s", user_id, type(exc).__name__)
        return None


def process(user_id, token, *, deadline: float | None = None) -> str:
    """Ask the register about one claimed task and record the answer. `deadline` (monotonic):
    the inline attempt's; past it, or on an answer that says the register could not be asked,
    the task is given back for the worker (who has the full timeouts) without counting a failure."""
    inline = deadline is not None
    task = VerificationTask.objects.filter(pk=user_id, claim_token=token).values("version", "requested_by").first()
    if task is None:
        return GONE
    details = ProviderDetails.objects.select_related("organization").filter(pk=user_id).first()
    search = services.search_for(details) if details is not None else None
    if search is None:
        VerificationTask.objects.filter(pk=user_id, claim_token=token, version=task["version"]).delete()
        return GONE
    operation, provider_search = search
    hpio = details.organization.hpio_number
    if not hpio:
        no_hpio = services.Outcome(VerificationStatus.ERROR, None, services.NO_HPIO_MESSAGE)
        return _finish(details, token, task["version"], no_hpio)

    wait_at_most = (deadline - time.monotonic() - _INLINE_MIN_SECONDS) if inline else WORKER_RATE_WAIT_SECONDS
    wait = rate.reserve(wait_at_most=max(0.0, wait_at_most))
    if wait is None:
        OUTBOX.release([user_id], token)
        return RELEASED
    timeout = None
    with released_while_waiting():  # a write lends its turn while it waits on the register
        if wait > 0:
            time.sleep(wait)
        if inline:
            timeout = deadline - time.monotonic()
            if timeout < _INLINE_MIN_SECONDS:
                OUTBOX.release([user_id], token)
                return RELEASED
        result = hi_client.get_client().search_provider_individual(
            hpio=hpio, user_id=task["requested_by"], search=provider_search, timeout=timeout
        )
    services.register_call_record(
        details=details, hpio=hpio, user_id_sent=task["requested_by"], operation=operation, result=result
    )
    if inline and result.outcome == "error":
        # Timed out within the write's budget, or the register is unreachable: the worker asks.
        VerificationTask.objects.filter(pk=user_id, claim_token=token).update(
            last_error=services.messages_text(result), claimed_until=None, claim_token=None
        )
        return RELEASED
    outcome = services.outcome_of(result, by_ahpra=operation == services.RegisterCall.Operation.SEARCH_BY_AHPRA)
    return _finish(details, token, task["version"], outcome)


def _finish(details: ProviderDetails, token, version: int, outcome: services.Outcome) -> str:
    with transaction.atomic():
        task = VerificationTask.objects.select_for_update().filter(pk=details.pk, claim_token=token).first()
        if task is None:
            return GONE  # the lease lapsed and another holds it: its answer counts, not ours
        if task.version != version:  # the details changed while the register was asked
            OUTBOX.release([details.pk], token)
            return RELEASED
        services.verification_record(user_id=details.pk, outcome=outcome)
        if outcome.status != VerificationStatus.ERROR:
            task.delete()
            return DONE
        attempts = task.attempts + 1
        delay = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** min(attempts - 1, 20))
        OUTBOX.finish(
            details.pk, token, attempts=attempts, last_error=outcome.message[:500],
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        return RETRY


def enqueue_revalidations(*, limit: int = 500) -> int:
    """Queue the providers whose next check is due (active users, nothing queued for them yet),
    while fewer than `limit` revalidations wait: a backlog (a first pass, an outage) is queued as
    the workers work it off, so the search for due providers skips at most `limit` queued ones
    instead of scanning the whole backlog on every pass."""
    queued = VerificationTask.objects.filter(priority=VerificationTask.Priority.REVALIDATION)[:limit].count()
    if queued >= limit:
        return 0
    now = timezone.now()
    due = list(
        ProviderDetails.objects.filter(
            verification_next_check_at__lte=now, user__status=User.Status.ACTIVE, user__verification_task__isnull=True
        )
        .order_by("verification_next_check_at")
        .values_list("user_id", "organization_id")[: limit - queued]
    )
    VerificationTask.objects.bulk_create(
        [
            VerificationTask(
                user_id=user_id, organization_id=organization_id, priority=VerificationTask.Priority.REVALIDATION,
                next_attempt_at=now,
            )
            for user_id, organization_id in due
        ],
        ignore_conflicts=True,
    )
    return len(due)


def process_due(*, limit: int = 20, should_stop=lambda: False, concurrency: int | None = None) -> dict:
    """One worker pass: queue due revalidations, then ask about due tasks, changes first, with up
    to `concurrency` (HI_WORKER_CONCURRENCY) calls in flight. Returns counts by what process() did.

    The calls run in threads of this pass: the request budget (rate.py), not one call's round
    trip, sets the pace, so one worker reaches HI_MAX_REQUESTS_PER_SECOND against a register that
    takes a while to answer. A RELEASED answer (no free moment within the wait: the budget is spent
    elsewhere) gives back what the pass has not started."""
    counts = {DONE: 0, RETRY: 0, RELEASED: 0, GONE: 0}
    if not hi_client.configured():
        return counts  # nobody to ask: the tasks wait (the providers stay unverified)
    enqueue_revalidations()
    token, pks = OUTBOX.claim_due(
        Q(next_attempt_at__lte=timezone.now()), order_by=("priority", "next_attempt_at"), limit=limit
    )
    if not pks:
        return counts
    pending = collections.deque(pks)
    lock = threading.Lock()
    given_back = threading.Event()

    def next_pk():
        with lock:
            if given_back.is_set() or should_stop() or not pending:
                return None
            return pending.popleft()

    database_errors: list[DatabaseError] = []

    def drain() -> None:
        try:
            while (pk := next_pk()) is not None:
                if not OUTBOX.renew(pk, token):
                    continue  # the lease lapsed and another worker holds it
                try:
                    result = process(pk, token)
                except DatabaseError:
                    raise
                except Exception as exc:  # one provider's failure must not stop the pass; its lease lapses
                    logger.error("Register check of user %s failed: %s", pk, type(exc).__name__)
                    continue
                with lock:
                    counts[result] += 1
                if result == RELEASED:
                    given_back.set()
        except DatabaseError as exc:
            # The database itself: the pass stops, and the error reaches the worker in the pass's
            # own thread (its shared back-off, its log line without the driver's message), not
            # Python's thread hook. What the pass holds comes back when the lease lapses.
            with lock:
                database_errors.append(exc)
            given_back.set()

    threads = min(concurrency or settings.HI_WORKER_CONCURRENCY, len(pks))
    if threads <= 1:
        drain()
    else:
        workers = [threading.Thread(target=_with_own_connection, args=(drain,), name=f"hi-verification-{n}")
                   for n in range(threads)]
        for each in workers:
            each.start()
        for each in workers:
            each.join()
    if database_errors:
        raise database_errors[0]
    if pending:
        counts[RELEASED] += OUTBOX.release(list(pending), token)
    return counts


def _with_own_connection(work) -> None:
    """A pass's thread: its own database connection, closed when its share of the pass is done."""
    try:
        work()
    finally:
        connections.close_all()


def provider_verification_request(*, user: User, actor: Actor) -> User:
    """Ask the register about the user's provider details again (the API's verify, the admin's
    "verify now", verify_providers). A `verified` provider stays verified until the answer; any
    other state becomes `pending` (asked). 409 for a disabled user or nothing to search by."""
    from accounts.services import refuse_if_disabled

    with transaction.atomic():
        user = User.objects.select_for_update(of=("self",)).select_related("provider_details").get(pk=user.pk)
        refuse_if_disabled(user)
        details = getattr(user, "provider_details", None)
        if details is None or not details.has_identity:
            raise ApplicationError(
                "This user has no provider details with an HPI-I or AHPRA number: there is nothing to "
                "ask the HI Service about. Set provider_details.hpii_number or ahpra_number first.",
                code="nothing_to_verify",
                status=409,
            )
        _mark_asked(details)
        task_record(user=user, actor=actor)
        schedule_inline(user.pk)
    return user


def _mark_asked(details: ProviderDetails) -> None:
    """Inside the caller's transaction: `pending` (or `unverified` with no register), audited, unless verified."""
    status = verification_status_when_asked()
    if details.verification_status in (VerificationStatus.VERIFIED, status):
        return
    before = details.verification_status
    details.verification_status = status
    services.state_save(details)
    User.objects.filter(pk=details.user_id).update(updated_at=details.updated_at)
    services.verification_changed_record(details=details, changes={"status": {"from": before, "to": status}})
