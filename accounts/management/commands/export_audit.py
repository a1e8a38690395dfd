import datetime
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.management.operator import organization_from_option
from audit.api import AuditEventSerializer
from audit.selectors import audit_event_list
from config import csv as safe_csv

CSV_COLUMNS = (
    "id", "occurred_at", "action", "actor_type", "actor_id", "actor_name", "user_id", "changes", "request_id",
)


class Command(BaseCommand):
    help = (
        "Write one organization's audit events, oldest first, to a file or stdout: JSON lines in the "
        "API's audit event shape ({id, occurred_at, action, actor: {type, id, name}, user_id, changes, "
        "request_id}) or CSV with those fields as columns (actor flattened, changes as JSON). Dates are "
        "ISO 8601. --since and --until are inclusive and take a date (midnight UTC) or a date-time "
        "(UTC unless it carries an offset). Events are streamed from the database in chunks, never "
        "all held in memory."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="The organization's id.")
        parser.add_argument("--since", help="Only events at or after this date or date-time.")
        parser.add_argument("--until", help="Only events at or before this date or date-time.")
        parser.add_argument("--format", choices=("csv", "jsonl"), default="jsonl", help="Default: jsonl.")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of to stdout.")

    def handle(self, *args, organization, since, until, format, output, **options):
        organization = organization_from_option(organization)
        since_at = _moment("--since", since)
        until_at = _moment("--until", until)
        if since_at and until_at and since_at > until_at:
            raise CommandError("--since is after --until: no event can match.")

        events = audit_event_list(organization_id=organization.pk).order_by("id")
        if since_at:
            events = events.filter(occurred_at__gte=since_at)
        if until_at:
            events = events.filter(occurred_at__lte=until_at)

        try:
            handle = open(output, "w", newline="", encoding="utf-8") if output else None  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"Can't write {output}: {error.strerror}.") from error
        stream = handle or self.stdout._out
        try:
            written = _write(events.iterator(chunk_size=2000), stream, format)
        finally:
            if handle:
                handle.close()
        # On stderr, so stdout stays pure data when it is the output.
        self.stderr.write(f"{written} audit events written{f' to {output}' if output else ''}.")


def _write(events, stream, format: str) -> int:
    shape = AuditEventSerializer().to_representation
    count = 0
    if format == "jsonl":
        for event in events:
            stream.write(json.dumps(shape(event), ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = safe_csv.writer(stream)  # neutralises formula cells (an API client named =HYPERLINK(...))
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = shape(event)
        writer.writerow([
            row["id"], row["occurred_at"], row["action"], row["actor"]["type"], row["actor"]["id"],
            row["actor"]["name"], row["user_id"] or "", json.dumps(row["changes"], ensure_ascii=False),
            row["request_id"],
        ])
        count += 1
    return count


def _moment(option: str, value: str | None) -> datetime.datetime | None:
    if value is None:
        return None
    text = value.strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is not None:
                moment = datetime.datetime.combine(day, datetime.time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"{option} {value!r} is not an ISO date (2025-01-31) or date-time (2025-01-31T09:30:00Z).")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment
