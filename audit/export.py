"""The audit trail as CSV: one column list and one row shape for every CSV export of audit events
(`export_audit --format csv` and the admin's "Export CSV"), written through core/csv.py."""

import json

from audit.models import AuditEvent

CSV_COLUMNS = (
    "id",
    "occurred_at",
    "organization_id",
    "organization",
    "user_id",
    "action",
    "actor_type",
    "actor_id",
    "actor_name",
    "changes",
    "request_id",
)


def audit_event_csv_row(event: AuditEvent, *, for_practice: bool) -> list:
    """The event's cells in CSV_COLUMNS order. Select the organization with the events (its name is a
    column); tenant-less events (staff privileges) have empty organization cells. `for_practice`:
    the file is handed to a practice, so platform staff appear by pseudonym."""
    organization = event.organization if event.organization_id else None
    actor = event.actor_for_practice() if for_practice else {"id": event.actor_id, "name": event.actor_name}
    return [
        event.pk,
        event.occurred_at.isoformat(),
        event.organization_id or "",
        organization.name if organization else "",
        event.user_id or "",
        event.action,
        event.actor_type,
        actor["id"],
        actor["name"],
        json.dumps(event.changes, sort_keys=True, ensure_ascii=False),
        event.request_id,
    ]
