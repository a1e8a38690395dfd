"""Webhook endpoints (per organization), the events they are sent, and each delivery's attempts.

A delivery is an outbox row (core/outbox.py): written in the change's transaction, sent after
commit by the worker, retried on its schedule, `failed` when the schedule is spent."""

import uuid

from django.db import models

from core.outbox import LeasedRow
from webhooks import targets

# Every type a webhook event can have; the audit actions of the same name map to them 1:1.
EVENT_TYPES = (
    "user.created",
    "user.updated",
    "user.roles_changed",
    "user.disabled",
    "user.enabled",
    "provider_details.updated",
    "user.cognito_sync_failed",
    "user.provider_verification_changed",
    "organization.deactivated",
    "organization.activated",
)
ALL_EVENTS = "*"


class WebhookEndpoint(models.Model):
    class Status(models.TextChoices):
        ENABLED = "enabled"
        DISABLED = "disabled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2000)
    # The event types to send, or ["*"] for all of them.
    events = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENABLED)
    # Encrypted with a key derived from SECRET_KEY (webhooks/secrets.py); the signer needs the raw secret.
    secret_encrypted = models.TextField(editable=False)
    # After a rotation the old secret signs alongside the new one until this time.
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The first failed attempt since the last success: 3 days of nothing but failures disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    # The first attempt since the last quick one that took longer than WEBHOOK_SLOW_SECONDS (still a
    # success when it was a 2xx within the timeout). Slow and failing endpoints are sent to after the
    # healthy ones and share at most half of a worker's delivery slots (webhooks/delivery.py).
    slow_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The receiver: an organization's enabled endpoints, on every audited change.
            models.Index(fields=["organization", "status"], name="webhook_endpoint_org_idx"),
            # GET /webhook-endpoints, newest first.
            models.Index(fields=["organization", "-created_at", "-id"], name="webhook_endpoint_newest_idx"),
        ]

    def __str__(self):
        # Shown wherever the endpoint is named (filters, links, the admin's log): the query string
        # may hold the receiver's credential, so it is redacted as in audit events.
        return targets.redacted(self.url)

    def wants(self, event_type: str) -> bool:
        return events_want(self.events, event_type)


def events_want(events: list, event_type: str) -> bool:
    """Whether an endpoint subscribed to `events` is sent events of `event_type`."""
    return ALL_EVENTS in events or event_type in events


class WebhookEvent(models.Model):
    """What happened, as sent: `payload` is the body `{"type", "timestamp", "data"}`. Its id is the
    `webhook-id` of every delivery and retry of it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, related_name="webhook_events"
    )
    type = models.CharField(max_length=64)
    audit_event = models.OneToOneField(
        "audit.AuditEvent", on_delete=models.PROTECT, related_name="webhook_event", null=True, blank=True
    )
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Retention (webhooks/retention.py): events past WEBHOOK_RETENTION_DAYS left without a delivery.
            models.Index(fields=["created_at"], name="webhook_event_created_idx"),
        ]

    def __str__(self):
        return f"{self.type} {self.pk}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.pk.hex}"


class WebhookDelivery(LeasedRow):
    """One event to one endpoint, until it succeeds or its retries are spent."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The event's `data.sequence` (its audit event's id): one endpoint's deliveries are sent in this order.
    sequence = models.BigIntegerField(default=0)
    # No default: whoever queues a delivery gives its due time.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The worker's claim: pending deliveries by due time.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due_idx",
            ),
            # The claim: an endpoint's pending deliveries in sequence order.
            models.Index(
                fields=["endpoint", "sequence", "id"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_lane_idx",
            ),
            # The claim: does an endpoint have a delivery in flight (held under a lease)?
            models.Index(
                fields=["endpoint"],
                condition=models.Q(claim_token__isnull=False),
                name="webhook_delivery_held_idx",
            ),
            # Retention (webhooks/retention.py): finished deliveries past WEBHOOK_RETENTION_DAYS.
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status__in=["succeeded", "failed"]),
                name="webhook_delivery_finished_idx",
            ),
        ]

    def __str__(self):
        return f"{self.event.type} to {self.endpoint}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: the delivery log (API and admin)."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    # Denormalised so the endpoint's log is one index scan.
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField()
    # When the delivery is tried again after this attempt; null when it succeeded or gave up.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # GET /webhook-endpoints/{id}/deliveries, newest first.
            models.Index(fields=["endpoint", "-id"], name="webhook_attempt_endpoint_idx"),
        ]

    def __str__(self):
        return f"attempt {self.number} of delivery {self.delivery_id}"
