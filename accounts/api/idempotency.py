"""`Idempotency-Key` on POST: a retried create returns the first response and creates nothing.

Insert-first: the key row is inserted (and committed) before the work starts, so of two concurrent
requests with one key exactly one wins the unique constraint; the other waits briefly for the
winner's outcome, or answers 409 `idempotency_key_in_progress`.

Exactly once: the view writes the key's outcome (the created row's id, `record_outcome`) in the
same transaction as the work. So once the work has committed the key points at it, whatever
happens next (the process dies, the response can't be stored): a retry replays the outcome,
rendered afresh, and never creates a second row or answers `user_already_exists`. When the whole
response was stored as well, a retry gets exactly that response.

A request that fails before its work committed releases its key, so the caller may correct the
request and retry with the same key.
"""

import contextlib
import functools
import hashlib
import json
import re
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.errors import ApplicationError
from organizations.models import IDEMPOTENCY_KEY_TTL, IdempotencyKey

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
# A key still "in progress" this long after it was taken belongs to a request that died mid-way.
_ABANDONED_AFTER = timedelta(minutes=5)
_POLL_SECONDS = 0.05


def idempotent(handler):
    """Wrap a viewset action (after DRF has authenticated the caller and checked its scope).

    The action calls `record_outcome(request, ...)` inside the transaction of its work; the view
    provides `replay_outcome(outcome_id, headers)`, the response a retry gets for a committed
    outcome whose response was never stored.
    """

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not _VALID_KEY.match(key):
            raise ValidationError({HEADER: ["Must be 1 to 255 printable ASCII characters without spaces."]})
        record, done = _claim(api_client=request.user.api_client, key=key, request_hash=_request_hash(request))
        if done is not None:
            return _replay(view, done)
        request.idempotency_key = record
        try:
            response = handler(view, request, *args, **kwargs)
        except BaseException:
            _release(record)  # kept if the work committed its outcome: the retry replays it
            raise
        if 200 <= response.status_code < 300 and isinstance(response, Response):
            record.response_status = response.status_code
            record.response_body = response.data
            record.response_location = response.get("Location", "")
            record.save(update_fields=["response_status", "response_body", "response_location"])
        else:
            _release(record)
        return response

    return wrapper


def outcome_transaction(request):
    """The transaction the work and its outcome share: one only when the request has a key, so a
    request without one pays for no savepoint."""
    if getattr(request, "idempotency_key", None) is None:
        return contextlib.nullcontext()
    return transaction.atomic()


def record_outcome(request, *, outcome_id, location: str = "") -> None:
    """Inside the work's transaction: the key (if the request has one) now points at what it made."""
    record = getattr(request, "idempotency_key", None)
    if record is None:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_outcome must run inside the transaction that writes the outcome")
    IdempotencyKey.objects.filter(pk=record.pk).update(outcome_id=outcome_id, response_location=location)


def _request_hash(request) -> str:
    # The parsed body, keys sorted: a retry that re-serialises the same JSON still matches.
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def _claim(*, api_client, key: str, request_hash: str):
    """(the new key row, None) when this request does the work; (None, the finished row) for a retry."""
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    while True:
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(api_client=api_client, key=key, request_hash=request_hash), None
        except IntegrityError:
            pass  # taken: by an earlier request, or one running right now
        existing = IdempotencyKey.objects.filter(api_client=api_client, key=key).first()
        now = timezone.now()
        if existing is not None:
            expired = existing.created_at <= now - IDEMPOTENCY_KEY_TTL
            finished = existing.response_status is not None or existing.outcome_id is not None
            abandoned = not finished and existing.created_at <= now - _ABANDONED_AFTER
            if expired or abandoned:
                IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
                continue
            if existing.request_hash != request_hash:
                raise ApplicationError(
                    "This Idempotency-Key was already used with a different request. "
                    "Use a new key for a new request.",
                    code="idempotency_key_reused",
                    status=409,
                )
            if finished:
                return None, existing
        if time.monotonic() >= deadline:
            raise ApplicationError(
                "A request with this Idempotency-Key is still being processed. Retry shortly.",
                code="idempotency_key_in_progress",
                status=409,
            )
        time.sleep(_POLL_SECONDS)


def _replay(view, record: IdempotencyKey) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if record.response_location:
        headers["Location"] = record.response_location
    if record.response_status is None:  # committed, but the response was never stored
        return view.replay_outcome(record.outcome_id, headers)
    return Response(record.response_body, status=record.response_status, headers=headers)


def _release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk, outcome_id__isnull=True).delete()

