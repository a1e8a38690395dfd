"""Sending webhook deliveries: claim due rows, POST each signed event, record the outcome.

Claims go through config/outbox.py (SELECT ... FOR UPDATE SKIP LOCKED, a lease and a token), so
several workers can run at once, none sends one attempt twice, and a killed worker's deliveries
come back when its lease lapses (at least once). No transaction is open while a request is out.

Each attempt checks the URL again (its host resolved now, within WEBHOOK_DNS_TIMEOUT_SECONDS, every
address public unless WEBHOOK_ALLOW_PRIVATE_TARGETS), then connects to the address it checked, with
the URL's host in Host and TLS SNI (certificates are verified against that name), follows no
redirect, and ignores proxy environment variables. A 2xx within the timeout is success; anything else is retried after
the next gap of WEBHOOK_RETRY_SCHEDULE, and the delivery is `failed` once the schedule is spent.
"""

import functools
import json
import logging
import ssl
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import certifi
import httpcore
import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from config.errors import ApplicationError
from config.outbox import Outbox
from webhooks import secrets, services, targets
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

FAILING_ENDPOINT_DISABLED_AFTER = timedelta(days=3)


def outbox() -> Outbox:
    # Read each time: tests shorten the lease to show a killed worker's deliveries coming back.
    return Outbox(WebhookDelivery, lease=timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS))


def _due(now) -> Q:
    return Q(
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lte=now,
        endpoint__status=WebhookEndpoint.Status.ENABLED,
    )


class PassResult(NamedTuple):
    delivered: int
    failed: int  # attempts that failed (retried later, or the delivery gave up)
    released: int  # claimed but given back: the worker is stopping


def deliver_due(*, limit: int = 50, should_stop=None) -> PassResult:
    """One pass over up to `limit` due deliveries (for run_worker and `deliver_webhooks`).

    The batch's rows are read once. Leases are renewed for the rest of the batch whenever a third
    of the lease has gone by, so a row's lease can't lapse under us unless one attempt outlasts
    two thirds of it (the attempt's own timeout is far shorter)."""
    box = outbox()
    # Healthy endpoints first: one receiver failing on every attempt must not keep other practices'
    # fresh events waiting behind its retries.
    order = (F("endpoint__failing_since").asc(nulls_first=True), "next_attempt_at", "id")
    token, pks = box.claim_due(_due(timezone.now()), order_by=order, limit=limit)
    if not pks:
        return PassResult(0, 0, 0)
    rows = {d.pk: d for d in WebhookDelivery.objects.select_related("event", "endpoint").filter(pk__in=pks)}
    renew_every = box.lease.total_seconds() / 3
    renewed_at = time.monotonic()
    held = set(pks)
    delivered = failed = 0
    for index, pk in enumerate(pks):
        if should_stop is not None and should_stop():
            return PassResult(delivered, failed, box.release(pks[index:], token))
        if time.monotonic() - renewed_at > renew_every:
            held = box.renew_all(pks[index:], token)
            renewed_at = time.monotonic()
        if pk not in held or pk not in rows:
            continue  # our lease lapsed and another worker has it, or its endpoint was deleted
        if attempt(rows[pk], token):
            delivered += 1
        else:
            failed += 1
    return PassResult(delivered, failed, 0)


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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle took ~20 ms, more than the POST itself."""
    return ssl.create_default_context(cafile=certifi.where())


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until one deadline: httpx's timeouts are
    per read, so a receiver dripping a byte of its headers just inside each one could hold the worker
    for hours."""

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


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float):
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("The webhook attempt's total time is spent.")
        timeout = left if timeout is None else min(timeout, left)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds):
        self._backend.sleep(seconds)


def _post(target: targets.Target, *, body: bytes, headers: dict, deadline: float) -> int:
    host = f"[{target.address}]" if ":" in target.address else target.address
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal in the URL
        host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
    seconds = settings.WEBHOOK_TIMEOUT_SECONDS
    timeout = httpx.Timeout(seconds, connect=min(seconds, 5.0))
    transport = httpx.HTTPTransport(verify=_tls_context(), trust_env=False)
    # WEBHOOK_TIMEOUT_SECONDS bounds the whole attempt, not each read (see _DeadlineStream).
    transport._pool._network_backend = _DeadlineBackend(deadline)
    with httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls_context(), transport=transport
    ) as client:
        request = client.build_request(
            "POST",
            f"{target.scheme}://{host}:{target.port}{target.path}",
            content=body,
            headers={
                **headers,
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": "user-management-webhooks/1",
            },
            extensions={"sni_hostname": target.host},
        )
        response = client.send(request, stream=True)  # the status is all we need; never read a huge body
        response.close()
        return response.status_code


def attempt(delivery: WebhookDelivery, token) -> bool:
    """Send one claimed delivery (read with its event and endpoint) once; record the outcome. True on success."""
    endpoint, event = delivery.endpoint, delivery.event
    if endpoint.status != WebhookEndpoint.Status.ENABLED:  # disabled since the claim: not sent, not counted
        outbox().release([delivery.pk], token)
        return False
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
    except httpx.TimeoutException:
        error = f"Timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}"  # the class only: a message may echo the URL's query
    except Exception as exc:  # a bug must not strand the row under its lease
        error = f"Unexpected {type(exc).__name__}"
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = not error
    try:
        _record(
            delivery, token, now=now, succeeded=succeeded, status_code=status_code, error=error, duration_ms=duration_ms
        )
    except IntegrityError:  # the endpoint (and so this delivery) was deleted while the POST was out
        logger.info("Webhook delivery %s vanished before its attempt was recorded", delivery.pk)
        return False
    if not succeeded:
        logger.warning("Webhook delivery %s to endpoint %s failed: %s", delivery.pk, endpoint.pk, error)
    return succeeded


def _record(delivery, token, *, now, succeeded, status_code, error, duration_ms) -> None:
    number = delivery.attempts + 1
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    finished_at = timezone.now()
    if succeeded:
        status, next_attempt_at = WebhookDelivery.Status.SUCCEEDED, None
    elif number <= len(schedule):
        status, next_attempt_at = WebhookDelivery.Status.PENDING, finished_at + timedelta(seconds=schedule[number - 1])
    else:
        status, next_attempt_at = WebhookDelivery.Status.FAILED, None
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            endpoint_id=delivery.endpoint_id,
            number=number,
            attempted_at=now,
            succeeded=succeeded,
            status_code=status_code,
            error=error[:500],
            duration_ms=duration_ms,
            next_attempt_at=next_attempt_at,
        )
        kept = outbox().finish(
            delivery.pk,
            token,
            status=status,
            attempts=number,
            next_attempt_at=next_attempt_at or delivery.next_attempt_at,
            updated_at=finished_at,
        )
        if not kept:
            logger.warning("Webhook delivery %s: the lease lapsed before the attempt was recorded", delivery.pk)
        if succeeded:
            endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        else:
            endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    if not succeeded:
        failing_since = endpoints.values_list("failing_since", flat=True).first()
        if failing_since is not None and failing_since <= timezone.now() - FAILING_ENDPOINT_DISABLED_AFTER:
            services.webhook_endpoint_disable_failing(
                endpoint_id=delivery.endpoint_id, failing_for=FAILING_ENDPOINT_DISABLED_AFTER
            )
