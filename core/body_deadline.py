"""Read a request's whole body within a deadline.

gunicorn's threads read a body from a blocking socket without any deadline, so a client that
sends a POST's headers and then nothing (or a byte now and then) holds its thread for as long as it
likes. A per-read socket timeout is not enough: each byte that trickles in starts the timeout
again. So one watcher thread per process keeps the deadlines of the bodies being read, and when one
passes it shuts the read side of that connection: the blocked read returns at once with what has
arrived, the request is answered 408 and the connection is closed after the answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class BodyNotReceived(Exception):
    """The body did not arrive whole within the deadline (or the client went away)."""


class _Watcher:
    def __init__(self):
        self._condition = threading.Condition()
        self._deadlines: dict[object, tuple[float, socket.socket]] = {}
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watch(self, sock: socket.socket, deadline: float):
        key = object()
        with self._condition:
            self._deadlines[key] = (deadline, sock)
            if self._thread is None or not self._thread.is_alive():  # started lazily: after gunicorn's fork
                self._thread = threading.Thread(target=self._run, name="body-deadlines", daemon=True)
                self._thread.start()
            self._condition.notify()
        try:
            yield
        finally:
            # Under the lock: once this returns the watcher can't touch the socket any more (it
            # may be closed, and its descriptor reused by another connection, right after).
            with self._condition:
                self._deadlines.pop(key, None)

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for key, (deadline, sock) in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[key]
                        with contextlib.suppress(OSError):
                            # socket.socket's own shutdown, also for a TLS socket: ssl.SSLSocket's
                            # would drop the TLS state the 408 is still to be written with.
                            socket.socket.shutdown(sock, socket.SHUT_RD)
                soonest = min((deadline for deadline, _ in self._deadlines.values()), default=None)
                self._condition.wait(None if soonest is None else max(soonest - time.monotonic(), 0.001))


_watcher = _Watcher()


def read_body_within(request, seconds: float) -> None:
    """Read `request.body` (Django keeps it for the parsers) within `seconds`, or raise
    BodyNotReceived. Without gunicorn's socket (the test client, `runserver`) it just reads."""
    expected = int(request.META.get("CONTENT_LENGTH") or 0)
    sock = request.META.get("gunicorn.socket")
    if sock is None:
        request.body  # noqa: B018 (reads and keeps it)
        return
    try:
        with _watcher.watch(sock, time.monotonic() + seconds):
            body = request.body
    except OSError as error:  # Django's UnreadablePostError: the connection failed mid-body
        raise BodyNotReceived() from error
    if len(body) < expected:
        raise BodyNotReceived()
