import datetime
import json
import os
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.api.audit_events import AuditEventSerializer
from audit.export import CSV_COLUMNS, audit_event_csv_row
from audit.selectors import audit_event_list
from core import csv as safe_csv
from organizations.management.operator import organization_from_option


class Command(BaseCommand):
    help = (
        "Write one organization's audit events, oldest first, to a file or stdout: JSON lines in the "
        "API's audit event shape ({id, occurred_at, action, actor: {type, id, name}, user_id, changes, "
        f"request_id}}) or CSV with the admin's export columns ({', '.join(CSV_COLUMNS)}; changes as "
        "JSON). The file is for the practice: platform staff appear as a stable pseudonym (staff-...), as in "
        "the API. Dates are ISO 8601. --since and --until are inclusive: a date alone is a whole local day "
        "(TIME_ZONE), so --since 2026-12-01 starts at that day's local midnight and --until 2026-12-01 "
        "takes in all of that day; a date-time is exact (UTC unless it carries an offset). Events are "
        "streamed from the database in chunks, never all held in memory. Piped into a reader that stops "
        "early (| head), it stops quietly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="The organization's id.")
        parser.add_argument("--since", help="Only events at or after this date (its local midnight) or date-time.")
        parser.add_argument("--until", help="Only events at or before this date (all of that local day) or date-time.")
        parser.add_argument("--format", choices=("csv", "jsonl"), default="jsonl", help="Default: jsonl.")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of to stdout.")

    def handle(self, *args, organization, since, until, format, output, **options):
        organization = organization_from_option(organization)
        since_at = _moment("--since", since)
        until_at = _moment("--until", until, end_of_day=True)
        if since_at and until_at and (
            since_at.moment >= until_at.moment if until_at.exclusive else since_at.moment > until_at.moment
        ):
            raise CommandError("--since is after --until: no event can match.")

        events = audit_event_list(organization_id=organization.pk).select_related("organization").order_by("id")
        if since_at:
            events = events.filter(occurred_at__gte=since_at.moment)
        if until_at:
            lookup = "occurred_at__lt" if until_at.exclusive else "occurred_at__lte"
            events = events.filter(**{lookup: until_at.moment})

        try:
            handle = open(output, "w", newline="", encoding="utf-8") if output else None  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"Can't write {output}: {error.strerror}.") from error
        stream = handle or self.stdout._out
        try:
            written = _write(events.iterator(chunk_size=2000), stream, format)
            stream.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): what it read is what it wanted. No traceback, and
            # nothing more to say on stderr.
            _silence(stream)
            return
        finally:
            if handle:
                handle.close()
        # On stderr, so stdout stays pure data when it is the output.
        self.stderr.write(f"{written} audit events written{f' to {output}' if output else ''}.")


def _silence(stream) -> None:
    """Point the closed pipe's descriptor at /dev/null, so the interpreter's last flush of stdout at
    exit can't fail with a second BrokenPipeError (Python's documented recipe, see the signal module)."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's stream)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


def _write(events, stream, format: str) -> int:
    count = 0
    if format == "jsonl":
        shape = AuditEventSerializer().to_representation
        for event in events:
            stream.write(json.dumps(shape(event), ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = safe_csv.writer(stream)  # neutralises formula cells (an API client named =HYPERLINK(...))
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(audit_event_csv_row(event, for_practice=True))
        count += 1
    return count


@dataclass(frozen=True)
class _Bound:
    moment: datetime.datetime
    exclusive: bool = False  # events strictly before `moment`: the end of a whole day


def _moment(option: str, value: str | None, *, end_of_day: bool = False) -> _Bound | None:
    """A date-time is exact (UTC when it has no offset). A date alone is a whole day in TIME_ZONE:
    its local midnight for --since, everything before the next day's local midnight for --until."""
    if value is None:
        return None
    text = value.strip()
    bound = None
    try:
        day = parse_date(text)  # first: parse_datetime would read a bare date as midnight UTC
        if day is not None:
            if end_of_day:
                day += datetime.timedelta(days=1)
            midnight = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
            bound = _Bound(midnight, exclusive=end_of_day)
        elif (moment := parse_datetime(text)) is not None:
            bound = _Bound(moment if timezone.is_aware(moment) else moment.replace(tzinfo=datetime.UTC))
    except (ValueError, OverflowError):
        bound = None
    if bound is None:
        raise CommandError(f"{option} {value!r} is not an ISO date (2025-01-31) or date-time (2025-01-31T09:30:00Z).")
    return bound
