"""Every change to a webhook endpoint: validated, in one transaction, with its audit event.

The URL's host is resolved (a network call) before the transaction opens, never inside it."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from core.errors import ApplicationError
from webhooks import secrets, targets
from webhooks.models import ALL_EVENTS, EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookEvent

# After a rotation the old secret signs alongside the new one this long.
PREVIOUS_SECRET_TTL = timedelta(hours=24)
# Each change writes a delivery per endpoint in its own transaction and the worker sends them in turn:
# the cap keeps one practice from fanning every change out to thousands of (hanging) receivers.
MAX_ENDPOINTS_PER_ORGANIZATION = 20
_EDITABLE = ("url", "events", "description", "status")


def _validated_events(events) -> list[str]:
    if not isinstance(events, (list, tuple)) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationError({"events": ['Give a non-empty list of event types, or ["*"] for all.']})
    chosen = sorted(set(events))
    if ALL_EVENTS in chosen:
        if len(chosen) > 1:
            raise ValidationError({"events": ['"*" already means every event type; send it alone.']})
        return [ALL_EVENTS]
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise ValidationError(
            {"events": [f'Unknown event type(s): {", ".join(unknown)}. Known: {", ".join(EVENT_TYPES)}, or "*".']}
        )
    return chosen


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    return {name: getattr(endpoint, name) for name in _EDITABLE}


def _audited(name: str, value):
    """A field as audit events record it: any `read:audit` client reads them, so the URL goes without
    userinfo, query or fragment (a receiver's credential); the endpoint itself keeps the full URL."""
    return targets.redacted(value) if name == "url" and value is not None else value


def _audit(action, endpoint: WebhookEndpoint, actor: Actor, changes: dict) -> None:
    audit_event_record(
        action=action,
        actor=actor,
        organization_id=endpoint.organization_id,
        changes={"webhook_endpoint_id": str(endpoint.pk), **changes},
    )


def webhook_endpoint_create(
    *, organization, actor: Actor, url: str, events, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint. Returns it and its signing secret (shown this once)."""
    targets.check(url)
    secret = secrets.generate()
    endpoint = WebhookEndpoint(
        organization=organization,
        url=url,
        events=_validated_events(events),
        description=description or "",
        secret_encrypted=secrets.encrypt(secret),
    )
    endpoint.full_clean()
    with transaction.atomic():
        # The organization's row lock serializes concurrent creates, so the cap holds exactly.
        type(organization).objects.select_for_update().filter(pk=organization.pk).first()
        if WebhookEndpoint.objects.filter(organization_id=organization.pk).count() >= MAX_ENDPOINTS_PER_ORGANIZATION:
            raise ApplicationError(
                f"An organization has at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhook endpoints: "
                "delete one, or subscribe an existing one to more event types.",
                code="webhook_endpoint_limit_reached",
                status=409,
            )
        endpoint.save()
        _audit(
            AuditEvent.Action.WEBHOOK_ENDPOINT_CREATED,
            endpoint,
            actor,
            {name: {"from": None, "to": _audited(name, value)} for name, value in _snapshot(endpoint).items()},
        )
    return endpoint, secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, data: dict) -> WebhookEndpoint:
    """Change url, events, description or status (only the fields given)."""
    unknown = set(data) - set(_EDITABLE)
    if unknown:
        raise ValidationError({name: ["This field can't be changed."] for name in sorted(unknown)})
    if "url" in data:
        targets.check(data["url"])
    if "events" in data:
        data = {**data, "events": _validated_events(data["events"])}
    if "status" in data and data["status"] not in WebhookEndpoint.Status.values:
        raise ValidationError({"status": ["Must be enabled or disabled."]})
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = _snapshot(endpoint)
        for name, value in data.items():
            setattr(endpoint, name, value if value is not None or name != "description" else "")
        if endpoint.status == WebhookEndpoint.Status.ENABLED and before["status"] != endpoint.status:
            endpoint.failing_since = None  # a fresh start: three more days before it is disabled again
            endpoint.disabled_reason = ""
        endpoint.full_clean()
        after = _snapshot(endpoint)
        changes = {
            name: {"from": _audited(name, before[name]), "to": _audited(name, after[name])}
            for name in _EDITABLE
            if before[name] != after[name]  # compared in full: a new query string alone is a change
        }
        if not changes:
            return endpoint
        endpoint.save()
        _audit(AuditEvent.Action.WEBHOOK_ENDPOINT_UPDATED, endpoint, actor, changes)
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing alongside it for 24 hours."""
    secret = secrets.generate()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_TTL
        endpoint.secret_encrypted = secrets.encrypt(secret)
        endpoint.save()
        _audit(
            AuditEvent.Action.WEBHOOK_ENDPOINT_SECRET_ROTATED,
            endpoint,
            actor,
            {"previous_secret_expires_at": {"from": None, "to": endpoint.previous_secret_expires_at.isoformat()}},
        )
    return endpoint, secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """Delete the endpoint with its deliveries and their log (the audit event keeps what it was)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        _audit(
            AuditEvent.Action.WEBHOOK_ENDPOINT_DELETED,
            endpoint,
            actor,
            {name: {"from": _audited(name, value), "to": None} for name, value in _snapshot(endpoint).items()},
        )
        endpoint.delete()


def webhook_endpoint_disable_failing(*, endpoint_id, failing_for: timedelta) -> bool:
    """The delivery worker: an endpoint whose deliveries have all failed for `failing_for` is
    disabled, with an audit event (actor `system`). False if it was not (anymore) in that state."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        cutoff = timezone.now() - failing_for
        if (
            endpoint is None
            or endpoint.status != WebhookEndpoint.Status.ENABLED
            or endpoint.failing_since is None
            or endpoint.failing_since > cutoff
        ):
            return False
        endpoint.status = WebhookEndpoint.Status.DISABLED
        endpoint.disabled_reason = f"Every delivery failed since {endpoint.failing_since.isoformat()}"
        endpoint.save()
        _audit(
            AuditEvent.Action.WEBHOOK_ENDPOINT_DISABLED,
            endpoint,
            Actor.system("webhook delivery"),
            {
                "status": {"from": WebhookEndpoint.Status.ENABLED, "to": WebhookEndpoint.Status.DISABLED},
                "failing_since": {"from": None, "to": endpoint.failing_since.isoformat()},
            },
        )
    return True


def webhook_delivery_redeliver(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send the delivery's event to its endpoint again (same webhook-id), as a new delivery due now,
    with an audit event. Refused (409 `webhook_redelivery_pending`) while a delivery of that event to
    that endpoint is still pending: a redelivery asked for twice is sent once."""
    if delivery.endpoint.status != WebhookEndpoint.Status.ENABLED:
        raise ApplicationError(
            "The endpoint is disabled: enable it before redelivering.", code="webhook_endpoint_disabled", status=409
        )
    with transaction.atomic():
        # The event locked: concurrent redeliveries of it take turns (so the pending check holds), and
        # retention (webhooks/retention.py), which deletes an event once its last delivery has gone,
        # either keeps the event or has deleted it before we look.
        event = WebhookEvent.objects.select_for_update().filter(pk=delivery.event_id).first()
        if event is None:
            raise ApplicationError("No such delivery: its history has been purged.", code="not_found", status=404)
        pending = (
            WebhookDelivery.objects.filter(
                event_id=delivery.event_id, endpoint_id=delivery.endpoint_id, status=WebhookDelivery.Status.PENDING
            )
            .values_list("pk", flat=True)
            .first()
        )
        if pending is not None:
            raise ApplicationError(
                f"Delivery {pending} of this event to this endpoint is still pending; "
                "it is sent (or retried) without another request.",
                code="webhook_redelivery_pending",
                status=409,
            )
        again = WebhookDelivery.objects.create(
            event_id=delivery.event_id,
            endpoint_id=delivery.endpoint_id,
            sequence=delivery.sequence,
            next_attempt_at=timezone.now(),
        )
        _audit(
            AuditEvent.Action.WEBHOOK_DELIVERY_REDELIVERED,
            delivery.endpoint,
            actor,
            {
                "event_id": event.webhook_id,
                "event_type": event.type,
                "webhook_delivery_id": {"from": delivery.pk, "to": again.pk},
            },
        )
    return again
