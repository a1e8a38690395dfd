from audit.models import AuditEvent


def audit_event_list(*, organization_id, user_id=None):
    events = AuditEvent.objects.filter(organization_id=organization_id)
    if user_id is not None:
        events = events.filter(user_id=user_id)
    return events
