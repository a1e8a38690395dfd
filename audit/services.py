from django.dispatch import Signal
from django.utils import timezone

from audit.context import Actor
from audit.models import AuditEvent
from core.request_id import get_request_id

# Sent inside the change's transaction with `event=` (the AuditEvent just written). Receivers may
# only write rows in that transaction (never call out).
audit_event_recorded = Signal()


def audit_event_record(*, action: str, actor: Actor, organization_id, user_id=None, changes=None) -> AuditEvent:
    """Write one audit row; call it inside the transaction that makes the change.

    Sends `audit_event_recorded` in that same transaction, so whatever must follow every audited
    change (webhook events) is recorded atomically with it, whichever entry point made the change."""
    event = AuditEvent.objects.create(
        occurred_at=timezone.now(),
        organization_id=organization_id,
        user_id=user_id,
        action=action,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        changes=changes or {},
        request_id=get_request_id() or "",
    )
    audit_event_recorded.send(sender=AuditEvent, event=event)
    return event
