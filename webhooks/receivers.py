"""Record a webhook event for every audited change that has an event type, in the change's own
transaction: the event and one delivery per matching enabled endpoint of the organization.

Connected to audit.services.audit_event_recorded in WebhooksConfig.ready(), so whatever made the
change (API, admin, a command, SCIM, the worker) sends its event. Only rows are written here; the
delivery worker sends them after commit."""

import uuid

from django.http import Http404
from django.utils import timezone

from core.db import PreparedQuery
from webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookEvent, events_want

# Audit actions with the same names map 1:1 to event types; other actions send nothing.
_EVENT_TYPE_OF_ACTION = {name: name for name in EVENT_TYPES}


def event_type_for(action: str) -> str | None:
    return _EVENT_TYPE_OF_ACTION.get(action)


def _user_resource(organization_id, user_id) -> dict | None:
    """The user as the API renders it, read inside the transaction: the state after the change."""
    from accounts.api.serializers import USER_ROW_FIELDS, user_row_representation
    from accounts.selectors import user_get

    try:
        return user_row_representation(
            user_get(organization_id=organization_id, user_id=user_id, fields=USER_ROW_FIELDS)
        )
    except Http404:
        return None


def payload_for(audit_event, event_type: str, event_id) -> dict:
    data = {
        "event_id": f"msg_{event_id.hex}",
        # Audit ids grow with commit order per user: changes to one user are serialized by its row lock.
        "sequence": audit_event.pk,
        "organization_id": str(audit_event.organization_id),
        "actor": audit_event.actor_for_practice(),
        "changes": audit_event.changes,
    }
    if audit_event.user_id is not None:
        data["user_id"] = str(audit_event.user_id)
        data["user"] = _user_resource(audit_event.organization_id, audit_event.user_id)
    return {"type": event_type, "timestamp": audit_event.occurred_at.isoformat(), "data": data}


# Every audited change reads its organization's enabled endpoints: compiled once (core/db.py).
_ENABLED_ENDPOINTS = PreparedQuery(
    lambda organization_id: WebhookEndpoint.objects.filter(
        organization_id=organization_id, status=WebhookEndpoint.Status.ENABLED
    ).values("id", "events"),
    organization_id=uuid.UUID,
)


def record_webhook_event(sender, event, **kwargs):
    event_type = event_type_for(event.action)
    if event_type is None or event.organization_id is None:
        return
    organization_id = event.organization_id
    if not isinstance(organization_id, uuid.UUID):
        organization_id = uuid.UUID(str(organization_id))
    endpoint_ids = [
        row["id"]
        for row in _ENABLED_ENDPOINTS.rows(organization_id=organization_id)
        if events_want(row["events"], event_type)
    ]
    if not endpoint_ids:
        return
    webhook_event = WebhookEvent(organization_id=event.organization_id, type=event_type, audit_event=event)
    webhook_event.payload = payload_for(event, event_type, webhook_event.pk)
    webhook_event.save(force_insert=True)
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=webhook_event, endpoint_id=endpoint_id, sequence=event.pk, next_attempt_at=now)
            for endpoint_id in endpoint_ids
        ]
    )
