"""The request id: set at the edge (RequestIdMiddleware), echoed as X-Request-ID, read wherever a
problem body or an audit row is written. Plumbing that knows no app."""

import contextvars
import re
import time
import uuid

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# When the request reached the app (time.monotonic()): a budget that bounds the whole answer counts from it.
_request_started: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_started", default=None)

# A caller's id is echoed back and stored, so only short, printable tokens are trusted.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id(candidate: str | None = None) -> str:
    if candidate and _SANE_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def set_request_id(value: str | None) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def get_request_id() -> str | None:
    return _request_id.get()


def request_started_at() -> float | None:
    """time.monotonic() when the current request reached the app; None outside a request."""
    return _request_started.get()


class RequestIdMiddleware:
    """Gives every request an id (the caller's if sane), returned as X-Request-ID and stored in audit rows."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = set_request_id(request_id)
        started = _request_started.set(time.monotonic())
        try:
            response = self.get_response(request)
        finally:
            _request_started.reset(started)
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response
