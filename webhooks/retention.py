"""Webhook history retention: finished deliveries (with their attempts), and the events left with
no delivery, are deleted once older than WEBHOOK_RETENTION_DAYS. A pending delivery (new, or waiting
for its next retry) is never deleted, whatever its age. Audit events are the record: untouched.

Each batch is one short transaction over at most `batch_size` deliveries (with their attempts, at
most one per scheduled try) or events, taken with SKIP LOCKED so several workers share the work
and no pass locks more than a batch."""

from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent

BATCH_SIZE = 1000
FINAL_STATUSES = (WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED)


class PurgeResult(NamedTuple):
    deliveries: int
    attempts: int
    events: int

    @property
    def total(self) -> int:
        return self.deliveries + self.attempts + self.events


def retention_cutoff() -> datetime:
    return timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)


def purge_webhook_history(*, batch_size: int = BATCH_SIZE, should_stop=None) -> PurgeResult:
    """Delete the history past its retention, a batch at a time, until none is left or `should_stop()`."""
    cutoff = retention_cutoff()
    stopping = should_stop or (lambda: False)
    deliveries = attempts = events = 0
    while not stopping():
        batch_deliveries, batch_attempts = _delete_finished_deliveries(cutoff, batch_size)
        deliveries += batch_deliveries
        attempts += batch_attempts
        if batch_deliveries < batch_size:
            break
    # Deliveries first: an event goes once its last delivery has.
    while not stopping():
        batch_events = _delete_events_without_deliveries(cutoff, batch_size)
        events += batch_events
        if batch_events < batch_size:
            break
    return PurgeResult(deliveries, attempts, events)


def _delete_finished_deliveries(cutoff, limit) -> tuple[int, int]:
    finished = WebhookDelivery.objects.filter(status__in=FINAL_STATUSES, updated_at__lt=cutoff)
    with transaction.atomic():
        pks = list(finished.order_by().select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        if not pks:
            return 0, 0
        _, counts = finished.filter(pk__in=pks).delete()  # and their attempts (CASCADE)
    return counts.get(WebhookDelivery._meta.label, 0), counts.get(WebhookAttempt._meta.label, 0)


def _delete_events_without_deliveries(cutoff, limit) -> int:
    orphaned = WebhookEvent.objects.filter(created_at__lt=cutoff).filter(
        ~Exists(WebhookDelivery.objects.filter(event_id=OuterRef("pk")))
    )
    with transaction.atomic():
        pks = list(orphaned.order_by().select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        if not pks:
            return 0
        # Checked again under the lock: a redelivery committed since the select must keep its event
        # (the delete's CASCADE would take the new delivery with it).
        _, counts = orphaned.filter(pk__in=pks).delete()
    return counts.get(WebhookEvent._meta.label, 0)
