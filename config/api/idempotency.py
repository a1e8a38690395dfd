"""`Idempotency-Key` on POST: a retried create returns the first response and creates nothing.

Insert-first: the key row is inserted (and committed) before the work starts, so of two concurrent
requests with one key exactly one wins the unique constraint; the other waits briefly for the
winner's stored response, or answers 409 `idempotency_key_in_progress`. Only a successful (2xx)
response is stored: a failed request releases its key, so the caller may correct and retry.
"""

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

from config.errors import ApplicationError
from organizations.models import IDEMPOTENCY_KEY_TTL, IdempotencyKey

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
# A key still "in progress" this long after it was taken belongs to a request that died mid-way.
_ABANDONED_AFTER = timedelta(minutes=5)
_POLL_SECONDS = 0.05


def idempotent(handler):
    """Wrap a viewset action (after DRF has authenticated the caller and checked its scope)."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not _VALID_KEY.match(key):
            raise ValidationError({HEADER: ["Must be 1 to 255 printable ASCII characters without spaces."]})
        record, replay = _claim(
            api_client=request.user.api_client, key=key, request_hash=_request_hash(request)
        )
        if replay is not None:
            return replay
        try:
            response = handler(view, request, *args, **kwargs)
        except BaseException:
            _release(record)
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


def _request_hash(request) -> str:
    # The parsed body, keys sorted: a retry that re-serialises the same JSON still matches.
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def _claim(*, api_client, key: str, request_hash: str):
    """(the new key row, None) when this request does the work; (None, the stored response) for a retry."""
    deadline = time.monotonic() + getattr(settings, "IDEMPOTENCY_WAIT_SECONDS", 5.0)
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
            abandoned = existing.response_status is None and existing.created_at <= now - _ABANDONED_AFTER
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
            if existing.response_status is not None:
                return None, _replay(existing)
        if time.monotonic() >= deadline:
            raise ApplicationError(
                "A request with this Idempotency-Key is still being processed. Retry shortly.",
                code="idempotency_key_in_progress",
                status=409,
            )
        time.sleep(_POLL_SECONDS)


def _replay(record: IdempotencyKey) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if record.response_location:
        headers["Location"] = record.response_location
    return Response(record.response_body, status=record.response_status, headers=headers)


def _release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk).delete()

