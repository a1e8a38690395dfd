"""Sending webhook deliveries: claim due rows, POST each signed event, record the outcome.

Claims go through the outbox rules of core/outbox.py (a lease and a token; results written only
under the token), so several workers can run at once, none sends one attempt twice, and a killed
worker's deliveries come back when its lease lapses (at least once). No transaction is open while
a request is out.

Fair and concurrent: a worker keeps up to WEBHOOK_DELIVERY_CONCURRENCY attempts in flight, at most
one per endpoint, across every worker (an endpoint's row is locked while its deliveries are claimed,
and none are claimed while one of them is held), and sends each endpoint's due deliveries in order
of `sequence`. A free slot goes to the next organization in rotation; healthy endpoints go before
slow or failing ones, which share at most half the slots. So one practice's flooded, slow or dead
receivers hold back its own events only. Attempts run in threads that only talk to the network; the
database work (claims, results) stays in the calling thread.

Each attempt checks the URL again (its host resolved now, within WEBHOOK_DNS_TIMEOUT_SECONDS, every
address public unless WEBHOOK_ALLOW_PRIVATE_TARGETS), then connects to the address it checked (the
network backend handed to httpcore's connection pool, its documented extension point, connects the
URL's host to that address and nowhere else), with the URL's host in Host and TLS SNI (certificates
are verified against that name), follows no redirect, and reads no proxy settings. A 2xx within
the timeout is success; anything else is retried after the next gap of WEBHOOK_RETRY_SCHEDULE, and
the delivery is `failed` once the schedule is spent.
"""

import functools
import json
import logging
import ssl
import threading
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import certifi
import httpcore
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from core.errors import ApplicationError
from core.outbox import Outbox
from webhooks import secrets, services, targets
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

FAILING_ENDPOINT_DISABLED_AFTER = timedelta(days=3)
# Deliveries of one endpoint claimed together: sent one after another, so a busy endpoint costs one
# claim per this many attempts.
LANE_BATCH = 20
# Lanes (endpoints) a worker holds per slot: enough that every organization with work has a turn in
# this worker, few enough that other workers find endpoints to take.
LANES_PER_SLOT = 2
# While slots are free, look for newly due work at most this often (a lane that drained looks at the
# next database turn).
CLAIM_EVERY_SECONDS = 0.05
# While attempts are out, the results that came in and the next claim wait for a turn this often: each
# turn is a transaction or two, whatever the number of results.
DATABASE_TURN_SECONDS = 0.02
# A worker's pass that found work keeps looking (every CLAIM_EVERY_SECONDS) this long after it last
# found some: changes keep coming at a steady rate, and a pass that ended at the first empty look
# would leave the next ones for the idle poll (WEBHOOK_POLL_SECONDS).
LINGER_SECONDS = 1.0

_HTTP_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
    ssl.SSLError,
    OSError,
)


def outbox() -> Outbox:
    # Read each time: tests shorten the lease to show a killed worker's deliveries coming back.
    return Outbox(WebhookDelivery, lease=timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS))


class PassResult(NamedTuple):
    delivered: int
    failed: int  # attempts that failed (retried later, or the delivery gave up)
    released: int  # claimed but given back: the worker is stopping


# --- One attempt: the network side (runs in a sender thread; touches no database) -----------------


class Outcome(NamedTuple):
    attempted_at: datetime
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return not self.error


def signature_headers(*, endpoint: WebhookEndpoint, webhook_id: str, body: str, now: datetime) -> dict:
    """Standard Webhooks headers; during a rotation both secrets sign (space-separated)."""
    keys = [secrets.decrypt(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        keys.append(secrets.decrypt(endpoint.previous_secret_encrypted))
    stamp = now.astimezone(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": " ".join(Webhook(key).sign(webhook_id, stamp, body) for key in keys),
    }


_tls_context_lock = threading.Lock()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle takes 20 to 300 ms of CPU, more than the POST
    itself. Under a lock: the sender threads' first attempts all start at once, and each would
    otherwise load the bundle itself."""
    with _tls_context_lock:
        return _shared_tls_context()


@functools.cache
def _shared_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until one deadline: timeouts are per
    read, so a receiver dripping a byte of its headers just inside each one could hold a slot for
    hours."""

    def __init__(self, stream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def _left(self, timeout, error):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("The webhook attempt's total time is spent.")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes, timeout=None):
        return self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer, timeout=None):
        return self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self):
        return self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        tls = self._stream.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network backend for one checked target: the URL's host and port connect to the
    address the check resolved (no second lookup a hostile name server could answer differently),
    any other host is refused, and the whole attempt ends at one deadline. TLS is untouched: httpcore
    still sends the URL's host as SNI and the certificate is verified against it."""

    def __init__(self, target: targets.Target, *, deadline: float):
        self._target, self._deadline = target, deadline
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if (host, port) != (_url_host(self._target.host), self._target.port):
            raise httpcore.ConnectError("Only the checked webhook target may be connected to.")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("The webhook attempt's total time is spent.")
        timeout = left if timeout is None else min(timeout, left)
        stream = self._backend.connect_tcp(self._target.address, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("Webhooks are sent over TCP only.")

    def sleep(self, seconds):
        self._backend.sleep(seconds)


def _url_host(host: str) -> str:
    """The host as httpcore reads it back from the URL (IDNA-encoded; IPv6 literals bare)."""
    try:
        return host.encode("ascii").decode()
    except UnicodeEncodeError:
        return host.encode("idna").decode()


def _post(target: targets.Target, *, body: bytes, headers: dict, deadline: float) -> int:
    host = _url_host(target.host)
    default_port = 443 if target.scheme == "https" else 80
    url_host = f"[{host}]" if ":" in host else host
    host_header = url_host if target.port == default_port else f"{url_host}:{target.port}"
    seconds = settings.WEBHOOK_TIMEOUT_SECONDS
    timeouts = {"connect": min(seconds, 5.0), "read": seconds, "write": seconds, "pool": seconds}
    # One connection for one request: no pool kept between attempts, so every attempt connects to the
    # address its own check resolved.
    backend = PinnedBackend(target, deadline=deadline)
    tls = _tls_context() if target.scheme == "https" else None  # plain http (tests, development) needs none
    pool = httpcore.ConnectionPool(ssl_context=tls, max_connections=1, retries=0, network_backend=backend)
    with (
        pool,
        pool.stream(
            "POST",
            f"{target.scheme}://{url_host}:{target.port}{target.path}",
            headers={
                **headers,
                "Host": host_header,
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "User-Agent": "user-management-webhooks/1",
            },
            content=body,
            extensions={"timeout": timeouts},
        ) as response,  # the status is all we need; never read a huge body
    ):
        return response.status


def send(delivery: WebhookDelivery) -> Outcome:
    """POST one delivery (read with its event and endpoint) once. No database access: it runs in a
    sender thread."""
    endpoint, event = delivery.endpoint, delivery.event
    now = timezone.now()
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=False)
    status_code, error = None, ""
    started = time.monotonic()
    deadline = started + settings.WEBHOOK_TIMEOUT_SECONDS  # the resolution, then the POST
    try:
        target = targets.check(endpoint.url, dns_timeout=min(settings.WEBHOOK_DNS_TIMEOUT_SECONDS, deadline - started))
        headers = signature_headers(endpoint=endpoint, webhook_id=event.webhook_id, body=body, now=now)
        status_code = _post(target, body=body.encode(), headers=headers, deadline=deadline)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except targets.ResolutionTimeout as exc:
        error = f"DNS resolution timed out after {exc.seconds:.3g} s"
    except ApplicationError as exc:
        error = f"Target refused: {exc.message}"
    except httpcore.TimeoutException:
        error = f"Timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s"
    except _HTTP_ERRORS as exc:
        error = f"{type(exc).__name__}"  # the class only: a message may echo the URL's query
    except Exception as exc:  # a bug must not strand the row under its lease
        error = f"Unexpected {type(exc).__name__}"
    return Outcome(now, status_code, error, int((time.monotonic() - started) * 1000))


# --- Recording an outcome (the calling thread) ----------------------------------------------------


def attempt(delivery: WebhookDelivery, token) -> bool:
    """Send one claimed delivery (read with its event and endpoint) once, in this thread; record the
    outcome. True on success."""
    if delivery.endpoint.status != WebhookEndpoint.Status.ENABLED:  # disabled since the claim: not sent
        outbox().release([delivery.pk], token)
        return False
    return record(delivery, token, send(delivery))


def record(delivery: WebhookDelivery, token, outcome: Outcome) -> bool:
    """Write the attempt, the delivery's next state and the endpoint's health. True on success."""
    return record_all([(delivery, outcome)], token).delivered == 1


class Recorded(NamedTuple):
    delivered: int
    failed: int  # failed attempts, and attempts whose delivery vanished before they were recorded


def record_all(answered: list, token) -> Recorded:
    """Record a batch of answered attempts, [(delivery, outcome)], at once: the deliveries' next states
    (only those still held under `token`) and the attempts' log rows in one statement, and in the same
    transaction each endpoint's health where it changes. A worker answers several attempts at once,
    and a transaction per attempt (four round trips) was most of its database time.

    A delivery deleted while its POST was out (its endpoint deleted) fails the batch at commit (the
    foreign keys are checked then); the batch is then recorded one attempt at a time, so only that
    attempt's record is lost."""
    if not answered:
        return Recorded(0, 0)
    try:
        states, health = _write(answered, token)
    except IntegrityError:
        if len(answered) > 1:
            counts = [record_all([one], token) for one in answered]
            return Recorded(sum(c.delivered for c in counts), sum(c.failed for c in counts))
        logger.info("Webhook delivery %s vanished before its attempt was recorded", answered[0][0].pk)
        return Recorded(0, 1)
    # Committed: the claimed copies learn their new state (the lane's endpoint is shared by its deliveries).
    for (delivery, _), (number, status, _) in zip(answered, states, strict=True):
        delivery.attempts, delivery.status = number, status
    endpoints = {delivery.endpoint_id: delivery.endpoint for delivery, _ in answered}
    for endpoint_id, change in health.items():
        for name, value in change.items():
            setattr(endpoints[endpoint_id], name, value)
    last_outcome = {delivery.endpoint_id: outcome for delivery, outcome in answered}
    for delivery, outcome in answered:
        if not outcome.succeeded:
            logger.warning(
                "Webhook delivery %s to endpoint %s failed: %s", delivery.pk, delivery.endpoint_id, outcome.error
            )
    cutoff = timezone.now() - FAILING_ENDPOINT_DISABLED_AFTER
    for endpoint_id, outcome in last_outcome.items():
        failing_since = endpoints[endpoint_id].failing_since
        if not outcome.succeeded and failing_since and failing_since <= cutoff:
            services.webhook_endpoint_disable_failing(
                endpoint_id=endpoint_id, failing_for=FAILING_ENDPOINT_DISABLED_AFTER
            )
    delivered = sum(outcome.succeeded for _, outcome in answered)
    return Recorded(delivered, len(answered) - delivered)


def _health_change(health: dict, outcome: Outcome) -> dict:
    """The endpoint's new failing_since / slow_since (only the fields that change), from its current
    `health` ({"failing_since", "slow_since"})."""
    if not outcome.succeeded:
        return {} if health["failing_since"] else {"failing_since": outcome.attempted_at}
    change = {"failing_since": None} if health["failing_since"] else {}
    slow = outcome.duration_ms > settings.WEBHOOK_SLOW_SECONDS * 1000
    if slow and not health["slow_since"]:
        change["slow_since"] = outcome.attempted_at
    elif not slow and health["slow_since"]:
        change["slow_since"] = None
    return change


def _next_state(delivery: WebhookDelivery, outcome: Outcome, finished_at: datetime) -> tuple:
    """(attempts, status, next_attempt_at) after this attempt."""
    number = delivery.attempts + 1
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if outcome.succeeded:
        return number, WebhookDelivery.Status.SUCCEEDED, None
    if number <= len(schedule):
        return number, WebhookDelivery.Status.PENDING, finished_at + timedelta(seconds=schedule[number - 1])
    return number, WebhookDelivery.Status.FAILED, None


def _write(answered: list, token) -> tuple[list, dict]:
    """The batch's rows. Returns each delivery's (attempts, status, next_attempt_at) and each
    endpoint's health change."""
    finished_at = timezone.now()
    states, rows = [], []
    health, changes = {}, {}  # endpoint id -> its health as the batch goes / what changed
    for delivery, outcome in answered:
        number, status, next_attempt_at = state = _next_state(delivery, outcome, finished_at)
        states.append(state)
        rows.append(
            (
                delivery.pk,
                status,
                number,
                next_attempt_at or delivery.next_attempt_at,
                finished_at,
                delivery.endpoint_id,
                outcome.attempted_at,
                outcome.succeeded,
                outcome.status_code,
                outcome.error[:500],
                outcome.duration_ms,
                next_attempt_at,
            )
        )
        endpoint = delivery.endpoint
        current = health.setdefault(
            endpoint.pk, {"failing_since": endpoint.failing_since, "slow_since": endpoint.slow_since}
        )
        change = _health_change(current, outcome)
        current.update(change)
        changes.setdefault(endpoint.pk, {}).update(change)
    changes = {pk: change for pk, change in changes.items() if change}
    if changes:  # an endpoint starts or stops failing or being slow: a transaction for the two tables
        with transaction.atomic():
            kept = _finish_and_log(rows, token)
            for endpoint_id, change in changes.items():
                _store_health(endpoint_id, change)
    else:  # the usual batch: one statement, atomic by itself
        kept = _finish_and_log(rows, token)
    for pk in {row[0] for row in rows} - kept:
        logger.warning("Webhook delivery %s: the lease lapsed before the attempt was recorded", pk)
    return states, changes


_OUTCOME_ROW = (
    "(%s::bigint, %s::varchar, %s::integer, %s::timestamptz, %s::timestamptz, %s::uuid, %s::timestamptz,"
    " %s::boolean, %s::smallint, %s::varchar, %s::integer, %s::timestamptz)"
)


def _finish_and_log(rows: list, token) -> set:
    """One statement: each delivery's next state, written only while `token` still holds it (the
    outbox's rule), and its attempt in the log. Returns the pks whose state was written."""
    deliveries = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    attempts = connection.ops.quote_name(WebhookAttempt._meta.db_table)
    sql = f"""
        WITH outcome (id, status, attempts, next_attempt_at, updated_at, endpoint_id, attempted_at, succeeded,
                      status_code, error, duration_ms, retry_at) AS (VALUES {", ".join([_OUTCOME_ROW] * len(rows))}),
        finished AS (
            UPDATE {deliveries} SET status = outcome.status, attempts = outcome.attempts,
                next_attempt_at = outcome.next_attempt_at, updated_at = outcome.updated_at,
                claimed_until = NULL, claim_token = NULL
            FROM outcome WHERE {deliveries}.id = outcome.id AND {deliveries}.claim_token = %s
            RETURNING {deliveries}.id
        ),
        logged AS (
            INSERT INTO {attempts} (delivery_id, endpoint_id, number, attempted_at, succeeded, status_code, error,
                                    duration_ms, next_attempt_at)
            SELECT id, endpoint_id, attempts, attempted_at, succeeded, status_code, error, duration_ms, retry_at
            FROM outcome
        )
        SELECT id FROM finished
    """  # noqa: S608 (our tables)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row] + [token])
        return {row[0] for row in cursor.fetchall()}


def _store_health(endpoint_id, change: dict) -> None:
    # Only one worker sends to an endpoint at a time, so the copy read at the claim is current; the
    # condition keeps a racing re-enable (which clears failing_since) from being undone.
    WebhookEndpoint.objects.filter(pk=endpoint_id, status=WebhookEndpoint.Status.ENABLED).update(**change)


# --- Claiming: whole lanes, one endpoint at a time ------------------------------------------------


def _lagging(endpoint: WebhookEndpoint) -> bool:
    return endpoint.failing_since is not None or endpoint.slow_since is not None


def _claim(box: Outbox, token, *, endpoints: int, deliveries: int, skip=()) -> list[WebhookDelivery]:
    """Claim the due deliveries (in sequence order, up to LANE_BATCH each) of up to `endpoints`
    endpoints that have none in flight and are not in `skip`, for `token`; at most `deliveries` in all.

    Which endpoints: healthy before slow or failing, then by turn within their organization (each
    organization's first endpoint, then each one's second ...), then the oldest due work."""
    now = timezone.now()
    deliveries_table = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    endpoints_table = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    # Raw SQL, the same text every time: the ORM spent ~4 ms of CPU building this statement, on every
    # look for work (20 a second while a worker waits for newly due work), and the database plans a
    # statement it has seen five times once.
    sql = f"""
        WITH due AS (
            SELECT d.endpoint_id, min(d.next_attempt_at) AS oldest
            FROM {deliveries_table} d
            WHERE d.status = %s AND d.next_attempt_at <= %s AND (d.claimed_until IS NULL OR d.claimed_until < %s)
              AND NOT (d.endpoint_id = ANY(%s::uuid[]))
            GROUP BY d.endpoint_id
        )
        SELECT id FROM (
            SELECT e.id, e.organization_id, due.oldest,
                   CASE WHEN e.failing_since IS NOT NULL OR e.slow_since IS NOT NULL THEN 1 ELSE 0 END AS lagging
            FROM due JOIN {endpoints_table} e ON e.id = due.endpoint_id
            WHERE e.status = %s AND NOT EXISTS (
                SELECT 1 FROM {deliveries_table} held
                WHERE held.endpoint_id = e.id AND held.claim_token IS NOT NULL AND held.claimed_until >= %s
            )
        ) candidate
        ORDER BY lagging, row_number() OVER (PARTITION BY organization_id ORDER BY lagging, oldest), oldest, id
        LIMIT %s
    """  # noqa: S608 (our tables)
    pending, enabled = WebhookDelivery.Status.PENDING, WebhookEndpoint.Status.ENABLED
    with connection.cursor() as cursor:
        cursor.execute(sql, [pending, now, now, list(skip), enabled, now, endpoints * 2])
        candidates = [row[0] for row in cursor.fetchall()]
    if not candidates:
        return []
    with transaction.atomic():
        # FOR NO KEY UPDATE: two workers never claim for one endpoint at once, while the changes
        # inserting new deliveries (their foreign key takes KEY SHARE on the endpoint) never wait.
        free = set(
            WebhookEndpoint.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(pk__in=candidates, status=WebhookEndpoint.Status.ENABLED)
            .values_list("pk", flat=True)
        )
        lanes = [pk for pk in candidates if pk in free][:endpoints]
        pks = _claim_lanes(box, token, lanes, deliveries=deliveries, now=now) if lanes else []
    if not pks:
        return []
    turn = {endpoint_id: n for n, endpoint_id in enumerate(lanes)}
    rows = WebhookDelivery.objects.select_related("event", "endpoint").filter(pk__in=pks)
    return sorted(rows, key=lambda row: (turn[row.endpoint_id], row.sequence, row.pk))


def _claim_lanes(box: Outbox, token, lanes: list, *, deliveries: int, now) -> list:
    """In the claim's transaction, once the endpoints' locks are ours: stamp the due deliveries of
    `lanes` (in sequence order, up to LANE_BATCH each, at most `deliveries`, the lanes in the order
    given) with `token` and a lease, in one statement. Returns their pks.

    An endpoint with a delivery held under a lease is left out, checked in this statement (not the
    locking one): a worker that claimed for one of these endpoints and committed while our locking
    statement ran is seen only now (the locking statement's snapshot predates its commit, and it
    changed no endpoint row)."""
    table = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    sql = f"""
        UPDATE {table} SET claimed_until = %s, claim_token = %s
        WHERE id IN (
            SELECT id FROM (
                SELECT d.id, d.endpoint_id,
                       row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.sequence, d.id) AS place
                FROM {table} d
                WHERE d.endpoint_id = ANY(%s::uuid[]) AND d.status = %s AND d.next_attempt_at <= %s
                  AND (d.claimed_until IS NULL OR d.claimed_until < %s)
                  AND NOT EXISTS (
                      SELECT 1 FROM {table} held
                      WHERE held.endpoint_id = d.endpoint_id AND held.claim_token IS NOT NULL
                        AND held.claimed_until >= %s
                  )
            ) lane
            WHERE place <= %s
            ORDER BY array_position(%s::uuid[], endpoint_id), place
            LIMIT %s
        )
        RETURNING id
    """  # noqa: S608 (our table)
    params = [now + box.lease, token, lanes, WebhookDelivery.Status.PENDING, now, now, now, LANE_BATCH, lanes]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, deliveries])
        return [row[0] for row in cursor.fetchall()]


# --- The pass: lanes, turns, slots -----------------------------------------------------------------


@dataclass
class _Lane:
    """One endpoint's claimed deliveries, sent one at a time in sequence order."""

    endpoint: WebhookEndpoint
    queued: deque = field(default_factory=deque)
    busy: bool = False
    lagging: bool = False  # slow or failing when it was started

    @property
    def ready(self) -> bool:
        return not self.busy and bool(self.queued)


class _Turns:
    """Which lane sends next: organizations in rotation; healthy endpoints before slow or failing
    ones, which together hold at most `lagging_slots` slots."""

    def __init__(self, lagging_slots: int):
        self.lanes: dict = {}  # endpoint id -> _Lane
        self._organizations: deque = deque()  # organization ids, the next turn first
        self._by_organization: dict = {}  # organization id -> deque of its lanes
        self.lagging_slots = lagging_slots
        self.lagging_busy = 0

    def add(self, delivery: WebhookDelivery) -> None:
        lane = self.lanes.get(delivery.endpoint_id)
        if lane is None:
            lane = self.lanes[delivery.endpoint_id] = _Lane(delivery.endpoint)
            organization = lane.endpoint.organization_id
            if organization not in self._by_organization:
                self._by_organization[organization] = deque()
                self._organizations.append(organization)
            self._by_organization[organization].append(lane)
        delivery.endpoint = lane.endpoint  # one copy per endpoint: its health as the lane learns it
        lane.queued.append(delivery)

    def ready_count(self) -> int:
        return sum(lane.ready for lane in self.lanes.values())

    def take(self) -> tuple[_Lane, WebhookDelivery] | None:
        for lagging in (False, True):
            if lagging and self.lagging_busy >= self.lagging_slots:
                break
            for organization in list(self._organizations):
                lanes = self._by_organization[organization]
                lane = next((ln for ln in lanes if ln.ready and _lagging(ln.endpoint) == lagging), None)
                if lane is None:
                    continue
                lanes.remove(lane)
                lanes.append(lane)  # the organization's other endpoints go first next time
                self._organizations.remove(organization)
                self._organizations.append(organization)  # then the other organizations
                lane.busy = True
                lane.lagging = _lagging(lane.endpoint)
                self.lagging_busy += lane.lagging
                return lane, lane.queued.popleft()
        return None

    def done(self, lane: _Lane) -> None:
        lane.busy = False
        self.lagging_busy -= lane.lagging

    def drop(self, lane: _Lane) -> list:
        """Forget a lane; its queued deliveries are returned (to be given back)."""
        rest = list(lane.queued)
        lane.queued.clear()
        del self.lanes[lane.endpoint.pk]
        organization = lane.endpoint.organization_id
        self._by_organization[organization].remove(lane)
        if not self._by_organization[organization]:
            del self._by_organization[organization]
            self._organizations.remove(organization)
        return rest

    def queued_pks(self) -> list:
        return [delivery.pk for lane in self.lanes.values() for delivery in lane.queued]


def deliver_due(
    *, limit: int = 50, should_stop=None, concurrency: int | None = None, linger: float = 0.0
) -> PassResult:
    """One pass, for run_worker and `deliver_webhooks`: up to `limit` attempts, up to `concurrency`
    (WEBHOOK_DELIVERY_CONCURRENCY) at once, claiming as slots free up, until nothing has been due for
    `linger` seconds (looking every CLAIM_EVERY_SECONDS meanwhile; a pass that finds nothing at first ends
    at once).

    The database work is done in turns, at most one every DATABASE_TURN_SECONDS while attempts are
    out: the results that came in since the last turn are recorded together, then newly due work is
    claimed (after the results, which free their endpoints). When `should_stop()` turns true,
    attempts in flight are finished and recorded, and what was claimed but not started is given back.
    Leases are renewed whenever a third of the lease has gone by, so a claimed delivery's lease can't
    lapse under us unless one attempt outlasts two thirds of it (the attempt's own timeout is far
    shorter)."""
    concurrency = concurrency or settings.WEBHOOK_DELIVERY_CONCURRENCY
    box = outbox()
    token = uuid.uuid4()  # one token for everything this pass claims
    turns = _Turns(lagging_slots=max(1, concurrency // 2))
    renew_every = box.lease.total_seconds() / 3
    renewed_at = claimed_at = turn_at = time.monotonic()
    found_at = None  # when a claim last found work
    in_flight: dict = {}  # future -> (lane, delivery)
    # An endpoint whose attempt failed waits for the next pass: its retry (when due at once) then goes
    # first, in sequence order, and a receiver that is down gets one attempt a pass, not a burst.
    failed_endpoints = set()
    answered, held_back = [], []  # results not yet recorded; deliveries not yet given back
    claimed = delivered = failed = 0
    exhausted = False  # the last claim found nothing more
    stopping = False

    def start_ready():
        while not stopping and len(in_flight) < concurrency and (turn := turns.take()) is not None:
            in_flight[pool.submit(send, turn[1])] = turn

    def write_results():
        nonlocal delivered, failed
        recorded = record_all(answered, token)
        delivered, failed = delivered + recorded.delivered, failed + recorded.failed
        answered.clear()
        if held_back:
            box.release([d.pk for d in held_back], token)
            held_back.clear()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook-send") as pool:
        while True:
            stopping = stopping or (should_stop is not None and should_stop())
            now = time.monotonic()
            if not in_flight or now - turn_at >= DATABASE_TURN_SECONDS:
                turn_at = now
                write_results()
                may_claim = not stopping and claimed < limit
                room = LANES_PER_SLOT * concurrency - len(turns.lanes)
                if may_claim and room > 0 and (not exhausted or now - claimed_at >= CLAIM_EVERY_SECONDS):
                    rows = _claim(box, token, endpoints=room, deliveries=limit - claimed, skip=failed_endpoints)
                    claimed_at, exhausted = time.monotonic(), not rows
                    claimed += len(rows)
                    if rows:
                        found_at = claimed_at
                    for row in rows:
                        turns.add(row)
            start_ready()
            may_claim = not stopping and claimed < limit
            if not in_flight:
                # Nothing out, and (with nothing out) every ready lane was started: done, unless the
                # last claim found work and more may be due, or the pass lingers for newly due work.
                if stopping or claimed >= limit:
                    break
                if exhausted:
                    if found_at is None or time.monotonic() - found_at >= linger:
                        break
                    time.sleep(max(0.0, CLAIM_EVERY_SECONDS - (time.monotonic() - claimed_at)))
                continue
            if time.monotonic() - renewed_at > renew_every:
                held = box.renew_all([d.pk for _, d in in_flight.values()] + turns.queued_pks(), token)
                renewed_at = time.monotonic()
                for lane in turns.lanes.values():
                    lane.queued = deque(d for d in lane.queued if d.pk in held)  # lapsed: another worker's now
            # Wake for the first result, for the next database turn when results wait, or to look for
            # newly due work while there is room for it.
            room = may_claim and len(turns.lanes) < LANES_PER_SLOT * concurrency
            patience = CLAIM_EVERY_SECONDS if room else renew_every / 2
            if answered or held_back:
                patience = min(patience, max(0.0, DATABASE_TURN_SECONDS - (time.monotonic() - turn_at)))
            finished, _ = wait(list(in_flight), timeout=patience, return_when=FIRST_COMPLETED)
            for future in finished:
                lane, delivery = in_flight.pop(future)
                turns.done(lane)
                answered.append((delivery, future.result()))
                if not answered[-1][1].succeeded:
                    held_back.extend(turns.drop(lane))
                    failed_endpoints.add(delivery.endpoint_id)
                elif not lane.queued:
                    turns.drop(lane)
                    exhausted = False  # its endpoint is free again (once this result is written): look again
            # The endpoints that answered get their next attempt at once; their results are written at
            # the next database turn.
            stopping = stopping or (should_stop is not None and should_stop())
            start_ready()
        write_results()
    released = box.release(turns.queued_pks(), token) if turns.lanes else 0
    return PassResult(delivered, failed, released)
