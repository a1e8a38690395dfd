"""How many writes a server process runs at once (issue 13).

A create costs about ten times a read's CPU (validation, ~20 queries, history, audit, outbox).
With 32 writes in flight on a small machine, all of a process's threads contended for its one GIL
and a read queued behind every one of them: GET one user went from 6 ms p50 idle to about 100 ms,
p99 14-18x the idle p99 (README "Serving under a slow Cognito"). The gate lets `slots` writes per
process do their work at once; the rest wait at the door, holding a thread but no CPU, and a read
walks past them. The waits on Cognito (the inline sync, after commit) are spent outside the gate
(`released()`), so a slow Cognito doesn't shrink how many writes make progress.

A write whose turn doesn't come within `timeout` seconds is answered 503 `server_busy` with
Retry-After, before it has read its body or touched the database (so a retry is always safe).
Waiting writes are not otherwise limited in number: a cap refused writes by the thousand on the
bench, where keep-alive connections pile onto one process (a process whose writes wait is idle, so
it accepts more), and each quick refusal brought the next write back to the same process. A read
still needs a free thread: size the threads above the writes one process may hold (README
"Serving and sizing").
"""

from __future__ import annotations

import contextlib
import threading


class WriteGate:
    def __init__(self, slots: int, timeout: float):
        self.slots = slots
        self.timeout = timeout
        self._semaphore = threading.BoundedSemaphore(slots)
        self._holding = threading.local()

    def enter(self) -> bool:
        """Take a slot for this thread's request; False (refuse the write) when none came free
        within the timeout."""
        entered = self._semaphore.acquire(timeout=self.timeout)
        self._holding.value = entered
        return entered

    def leave(self) -> None:
        if getattr(self._holding, "value", False):
            self._holding.value = False
            self._semaphore.release()

    @contextlib.contextmanager
    def released(self):
        """Lend this thread's slot to another write while it only waits (a call to Cognito); take
        it back afterwards, however long that takes (the request is past its commit by then).

        A no-op for a thread without a slot (reads, the worker, commands) and inside a
        transaction: a write waiting for its slot back while holding row locks could wait on the
        very writes that hold the slots and, in turn, its locks."""
        from django.db import connection

        lend = getattr(self._holding, "value", False) and not connection.in_atomic_block
        if lend:
            self.leave()
        try:
            yield
        finally:
            if lend:
                self._semaphore.acquire()
                self._holding.value = True


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
                _gate = WriteGate(slots, settings.API_WRITE_QUEUE_TIMEOUT_SECONDS)
    return _gate


def reset_write_gate() -> None:
    """Forget the process's gate (tests that change its settings)."""
    global _gate
    with _gate_lock:
        _gate = None


def released_while_waiting():
    """`with released_while_waiting(): <a network call>`: the current write's slot, if any, is
    free for another write meanwhile."""
    gate = get_write_gate()
    return gate.released() if gate is not None else contextlib.nullcontext()
