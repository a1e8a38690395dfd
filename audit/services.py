from django.utils import timezone

from audit.context import Actor
from audit.models import AuditEvent
from config.request_id import get_request_id


def audit_event_record(*, action: str, actor: Actor, organization_id, user_id=None, changes=None) -> AuditEvent:
    """Write one audit row; call it inside the transaction that makes the change."""
    return AuditEvent.objects.create(
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
