"""How many writes a server process runs at once, and whose write runs next.

A create costs about ten times a read's CPU (validation, ~20 queries, history, audit, outbox).
With 32 writes in flight on a small machine, all of a process's threads contended for its one GIL
and a read queued behind every one of them (docs/performance.md, "Serving under a slow Cognito"). The gate lets
`slots` writes per process do their work at once; the rest wait at the door, holding a thread but
no CPU, and a read walks past them. The waits on Cognito (the inline sync, after commit) are spent
outside the gate (`released()`), so a slow Cognito doesn't shrink how many writes make progress.

Whose turn: the turns are shared among tenants (an organization, whether its API client or its
identity provider's SCIM token writes; a staff member in the admin). Each tenant with writes
waiting has its own queue, and a free turn goes to the next tenant in rotation, so a practice
sending one write at a time waits for at most one turn per other waiting tenant, however many
writes another practice has queued. A tenant holds at most `per_tenant` writes in a process at
once (waiting for a turn, holding one, or lending it while it waits on Cognito): one more is
refused at once, so the flooding tenant is the one refused, and it can never hold every thread.

A write takes its turn only once its caller is known (`take_write_turn`, called where
authentication resolves the caller) and its body has been read (core/middleware.py
`RequestBodyMiddleware`): an unauthenticated or idle client never holds one. A write whose turn
doesn't come within `timeout` seconds is refused too, before it has touched the database. Refusals
are 503 `server_busy` with Retry-After: nothing was changed, so a retry is always safe.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Hashable

from rest_framework.exceptions import APIException
from rest_framework.throttling import BaseThrottle

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_SECONDS = 1


class WriteTurnRefused(APIException):
    """A write refused by the gate. An APIException, so DRF's handler answers it as a problem; the
    middleware answers it for the other views (SCIM's shape under /scim)."""

    status_code = 503
    default_code = "server_busy"
    problem_code = "server_busy"
    default_detail = "The server is busy with other writes; nothing was changed. Retry after Retry-After seconds."
    wait = RETRY_AFTER_SECONDS


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self):
        self.event = threading.Event()
        self.granted = False


class WriteGate:
    def __init__(self, slots: int, timeout: float, per_tenant: int):
        self.slots = slots
        self.timeout = timeout
        self.per_tenant = per_tenant
        self._lock = threading.Lock()
        self._free = slots  # never above 0 while a write waits: a freed turn goes to a waiter
        # Tenants with writes waiting, in rotation order (a dict keeps insertion order).
        self._waiting: dict[Hashable, collections.deque[_Waiter]] = {}
        self._admitted: collections.Counter = collections.Counter()  # per tenant, enter() to leave()
        self._thread = threading.local()  # .tenant: whose turn this thread holds, if any

    # --- the turns ---------------------------------------------------------------------------------

    def enter(self, tenant: Hashable) -> bool:
        """Wait for a turn for one of `tenant`'s writes; False (refuse the write) when the tenant
        already holds `per_tenant` writes here, or when no turn came within the timeout."""
        with self._lock:
            if self._admitted[tenant] >= self.per_tenant:
                return False
            self._admitted[tenant] += 1
            if self._free:
                self._free -= 1
                self._thread.tenant = tenant
                return True
            waiter = self._queue(tenant, _Waiter())
        waiter.event.wait(self.timeout)
        with self._lock:
            if not waiter.granted:  # timed out; a turn granted meanwhile is kept
                self._unqueue(tenant, waiter)
                self._release_admission(tenant)
                return False
        self._thread.tenant = tenant
        return True

    def leave(self) -> None:
        """End this thread's write (a no-op for a thread that holds no turn)."""
        tenant = self.holder()
        if tenant is None:
            return
        self._thread.tenant = None
        with self._lock:
            self._release_admission(tenant)
            self._pass_turn()

    @property
    def free_turns(self) -> int:
        return self._free

    def waiting(self, tenant: Hashable) -> int:
        """How many of `tenant`'s writes wait for a turn."""
        with self._lock:
            return len(self._waiting.get(tenant, ()))

    def holder(self) -> Hashable | None:
        """The tenant whose turn this thread holds, or None."""
        return getattr(self._thread, "tenant", None)

    @contextlib.contextmanager
    def released(self):
        """Lend this thread's turn to another write while it only waits (a call to Cognito); take
        it back afterwards, however long that takes (the request is past its commit by then), ahead
        of its tenant's writes that have not started.

        A no-op for a thread without a turn (reads, the worker, commands) and inside a
        transaction: a write waiting for its turn back while holding row locks could wait on the
        very writes that hold the turns and, in turn, its locks."""
        from django.db import connection

        tenant = self.holder()
        lend = tenant is not None and not connection.in_atomic_block
        if lend:
            self._thread.tenant = None
            with self._lock:
                self._pass_turn()
        try:
            yield
        finally:
            if lend:
                self._take_back(tenant)

    # --- inside the lock -------------------------------------------------------------------------

    def _queue(self, tenant, waiter: _Waiter, *, first: bool = False) -> _Waiter:
        queue = self._waiting.get(tenant)
        if queue is None:  # the tenant joins the rotation at its end
            queue = self._waiting[tenant] = collections.deque()
        if first:
            queue.appendleft(waiter)
        else:
            queue.append(waiter)
        return waiter

    def _unqueue(self, tenant, waiter: _Waiter) -> None:
        queue = self._waiting[tenant]
        queue.remove(waiter)
        if not queue:
            del self._waiting[tenant]

    def _pass_turn(self) -> None:
        """A turn came free: to the first write of the next tenant in rotation, which then goes to
        the end of the rotation (if it has more writes waiting), or back to the free turns."""
        if not self._waiting:
            self._free += 1
            return
        tenant, queue = next(iter(self._waiting.items()))
        waiter = queue.popleft()
        del self._waiting[tenant]
        if queue:
            self._waiting[tenant] = queue
        waiter.granted = True
        waiter.event.set()

    def _release_admission(self, tenant) -> None:
        self._admitted[tenant] -= 1
        if not self._admitted[tenant]:
            del self._admitted[tenant]

    def _take_back(self, tenant) -> None:
        with self._lock:
            if self._free:
                self._free -= 1
                waiter = None
            else:
                waiter = self._queue(tenant, _Waiter(), first=True)
        if waiter is not None:
            waiter.event.wait()
        self._thread.tenant = tenant


_gate: WriteGate | None = None
_gate_lock = threading.Lock()


def get_write_gate() -> WriteGate | None:
    """The process's gate (None when API_CONCURRENT_WRITES is 0: no limit)."""
    global _gate
    if _gate is None:
        from django.conf import settings

        # The Cognito gateway also runs without Django settings (its own tests): no gate there.
        slots = getattr(settings, "API_CONCURRENT_WRITES", 0) if settings.configured else 0
        if not slots:
            return None
        with _gate_lock:
            if _gate is None:
                _gate = WriteGate(
                    slots, settings.API_WRITE_QUEUE_TIMEOUT_SECONDS, settings.API_WRITES_PER_ORGANIZATION
                )
    return _gate


def reset_write_gate() -> None:
    """Forget the process's gate (tests that change its settings)."""
    global _gate
    with _gate_lock:
        _gate = None


def take_write_turn(request, tenant: Hashable) -> None:
    """For a write (any method but GET, HEAD, OPTIONS) by a caller now known to be `tenant`: wait
    for its turn, or raise WriteTurnRefused. The turn is given back when the request ends
    (core/middleware.py `WriteGateMiddleware`)."""
    gate = get_write_gate()
    if gate is None or request.method in SAFE_METHODS or gate.holder() is not None:
        return
    if not gate.enter(tenant):
        raise WriteTurnRefused()


class WriteTurnThrottle(BaseThrottle):
    """Not a rate limit: DRF checks throttles last, after authentication and the permission (the
    organization's 404, the scope's 403), so this is where an API client's write takes its turn,
    as its organization. It never refuses as a throttle; a refused turn is WriteTurnRefused."""

    def allow_request(self, request, view):
        organization = getattr(request.user, "organization", None)
        if organization is not None:
            take_write_turn(request, ("organization", organization.pk))
        return True


def released_while_waiting():
    """`with released_while_waiting(): <a network call>`: the current write's turn, if any, is
    free for another write meanwhile."""
    gate = get_write_gate()
    return gate.released() if gate is not None else contextlib.nullcontext()
