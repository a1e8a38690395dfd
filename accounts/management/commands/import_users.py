import multiprocessing
import queue as queues
import re
import time
import uuid
from dataclasses import astuple
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import timezone

from accounts import importing
from accounts.models import ProviderDetails, verification_status_when_asked
from audit.context import Actor
from core.commands import OperatorCommand
from core.request_id import reset_request_id, set_request_id
from organizations.management.operator import organization_from_option

SHOWN_REJECTIONS = 5  # on the terminal; the report has them all

# Cells whose values a rejection message may quote (an HPI-I, a date of birth, a phone number). The
# report keeps each message whole, as the operator's own file holds the values; the terminal is often
# a log (cron, CI, a job runner), and logs never hold dates of birth, phone numbers or identifiers,
# so there those values read "[value]".
MASKED_COLUMNS = frozenset({
    "date_of_birth", "phone", "provider_phone", "hpii_number", "prescriber_number", "provider_number",
    "ahpra_number", "hospital_provider_number",
})


def terminal_line(rejection: importing.Rejection, masked_values=()) -> str:
    """`line 3, hpii_number (invalid): HPI-I [value] fails its check digit: ...` for the terminal."""
    message = rejection.message
    for value in sorted(masked_values, key=len, reverse=True):
        # Whole values only: a phone cell "12" must not eat the 12 of the message's own example.
        message = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "[value]", message, flags=re.IGNORECASE)
    return f"line {rejection.line}, {rejection.field or 'row'} ({rejection.code}): {message}"


def _masked_values(source, lines) -> dict[int, list[str]]:
    """The MASKED_COLUMNS cells of the given lines, read again from the file (only for the few rows
    shown, so a large import pays one more read at most)."""
    wanted, found = set(lines), {}
    with importing.open_csv(source) as handle:
        for line, cells in importing.read_rows(handle):
            if line in wanted:
                found[line] = [
                    value.strip() for name, value in cells.items()
                    if name in MASKED_COLUMNS and isinstance(value, str) and value.strip()
                ]
                if len(found) == len(wanted):
                    break
    return found


class Command(OperatorCommand):
    help = (
        "Create or update an organization's users from a CSV file, through the same services and rules "
        "as the API. Columns (header row; only email, given_name and family_name are required): "
        f"{', '.join(importing.COLUMNS)}. access_roles is a space- or semicolon-separated list "
        "(default member for new users). A row matches an existing user of the organization by "
        "partner_user_id, then by email, and creates it, updates what differs, or changes nothing; "
        "empty cells never clear a stored value. Each row commits on its own with its history and audit "
        "events, so a rerun after a crash completes the rest without duplicates. Rejected rows are "
        "written with line, field, code and message to the report (CSV, or JSON lines for a .jsonl "
        "name) and make the command exit with status 2. Cognito accounts are queued for "
        "`manage.py sync_cognito` rather than created inline."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv", help="The CSV file (UTF-8, header row first).")
        parser.add_argument("--organization", required=True, help="The organization's id.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate every row and report what would happen, then roll everything back.",
        )
        parser.add_argument(
            "--report",
            metavar="FILE",
            help="Where to write the rejected rows (default: FILE.csv.rejected.csv beside the input). "
            "A name ending in .jsonl gets JSON lines, anything else CSV.",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="Import with this many processes (PostgreSQL only; the rows are split by email, so each "
            "user is handled by one process). Default 1.",
        )

    def handle(self, *args, file, organization, dry_run, report, jobs, **options):
        organization = organization_from_option(organization)
        if not organization.is_active:
            raise CommandError(
                f"Organization {organization.name!r} is deactivated: its users can't sign in, so nothing is imported."
            )
        if jobs < 1:
            raise CommandError("--jobs must be 1 or more.")
        if jobs > 1 and dry_run:
            raise CommandError("--dry-run runs in one process (one transaction): leave out --jobs.")
        if jobs > 1 and connection.vendor != "postgresql":
            raise CommandError("--jobs needs PostgreSQL; SQLite takes one writer at a time.")
        source = Path(file)
        if not source.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            total = importing.check_file(source)
        except importing.ImportFileError as error:
            raise CommandError(f"{file}: {error}") from error
        report_path = Path(report) if report else source.with_name(source.name + ".rejected.csv")
        try:
            report_handle = open(report_path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as error:
            raise CommandError(f"Can't write the report {report_path}: {error.strerror}.") from error

        started_at = timezone.now()
        run_id = f"import_users-{uuid.uuid4().hex[:12]}"
        verb = "Checking" if dry_run else "Importing"
        self.stdout.write(f"{verb} {_count(total, 'row')} into {organization.name!r} (audit request id {run_id}).")
        progress = Progress(self.stdout, total)
        summary = importing.Summary()
        first_rejections = []
        token = set_request_id(run_id)
        try:
            with report_handle:
                rejections = importing.RejectionReport(report_handle, jsonl=report_path.suffix in (".jsonl", ".json"))
                if jobs > 1:
                    outcomes = _parallel_outcomes(source, organization.pk, jobs, run_id)
                else:
                    outcomes = _outcomes(source, organization, dry_run)
                for outcome in outcomes:
                    summary.add(outcome)
                    for rejection in outcome.rejections:
                        rejections.write(rejection)
                        # The lowest lines (--jobs hands the rows back out of order).
                        first_rejections.append(rejection)
                        if len(first_rejections) > SHOWN_REJECTIONS:
                            first_rejections.sort(key=lambda shown: shown.line)
                            first_rejections.pop()
                    progress.step()
        finally:
            reset_request_id(token)
            progress.finish()

        would = "would be " if dry_run else ""
        self.stdout.write(
            f"{'Dry run, nothing changed: ' if dry_run else ''}{_count(summary.total, 'row')}: "
            f"{summary.created} {would}created, {summary.updated} {would}updated, "
            f"{summary.unchanged} unchanged, {summary.rejected} rejected "
            f"({progress.elapsed:.1f} s, {progress.rate:.0f} rows/s)."
        )
        if first_rejections:
            self.stdout.write(f"Rejected rows ({_count(rejections.count, 'problem')}):")
            masked = _masked_values(source, {rejection.line for rejection in first_rejections})
            for rejection in sorted(first_rejections, key=lambda shown: shown.line):
                self.stdout.write(f"  {terminal_line(rejection, masked.get(rejection.line, ()))}")
            more = rejections.count - len(first_rejections)
            self.stdout.write(f"  ... and {more} more, see {report_path}" if more else f"  (also in {report_path})")
        else:
            # No report of nothing: an empty file beside the input would read as a result to look at.
            report_path.unlink(missing_ok=True)
            self.stdout.write("Rejected rows: none (no report written).")
        if not dry_run and summary.created + summary.updated:
            queued = summary.created + summary.updated
            self.stdout.write(
                f"Cognito: {_count(queued, 'account')} {'is' if queued == 1 else 'are'} queued; `python manage.py "
                "sync_cognito` (or the running worker) pushes them."
            )
        if not dry_run and summary.created + summary.updated:
            asked = _providers_queued_for_the_register(organization, since=started_at)
            if asked:
                self.stdout.write(
                    f"HI Service: {asked} providers' details are queued for verification "
                    f"({verification_status_when_asked()}); the running worker asks the register at "
                    f"HI_MAX_REQUESTS_PER_SECOND ({settings.HI_MAX_REQUESTS_PER_SECOND:g}/s), or `python manage.py "
                    "verify_providers`. Until `verified` they can't prescribe."
                )
        if summary.rejected:
            raise CommandError(
                f"{summary.rejected} of {_count(summary.total, 'row')} rejected; see {report_path}.", returncode=2
            )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _outcomes(source, organization, dry_run, shard=(0, 1)):
    importer = importing.Importer(
        organization=organization, actor=Actor.system("import_users"), dry_run=dry_run, shard=shard
    )
    with importing.open_csv(source) as handle:
        yield from importer.run(importing.read_rows(handle))


def _parallel_outcomes(source, organization_id, jobs: int, run_id: str):
    """Run `jobs` forked processes, each importing its share of the rows, and yield their outcomes."""
    context = multiprocessing.get_context("fork")
    results = context.Queue(maxsize=200)
    # A forked child must not share the parent's database socket: each opens its own.
    connections.close_all()
    workers = [
        context.Process(target=_work, args=(index, jobs, source, organization_id, run_id, results), daemon=True)
        for index in range(jobs)
    ]
    for worker in workers:
        worker.start()
    running, failed = jobs, None
    try:
        while running:
            try:
                message = results.get(timeout=5)
            except queues.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise CommandError(f"An import process died (exit code {dead[0].exitcode}).") from None
                continue
            if message is None:
                running -= 1
            elif isinstance(message, str):
                failed = message
                running -= 1
            else:
                for line, result, rejections in message:
                    yield importing.Outcome(line, result, [importing.Rejection(*r) for r in rejections])
        if failed:
            raise CommandError(f"An import process failed: {failed}. Rows it finished are committed; rerun.")
    finally:
        for worker in workers:
            if worker.is_alive() and failed:
                worker.terminate()
            worker.join()


def _work(index, jobs, source, organization_id, run_id, results):
    from organizations.models import Organization

    set_request_id(run_id)
    batch = []
    try:
        organization = Organization.objects.get(pk=organization_id)
        for outcome in _outcomes(source, organization, False, shard=(index, jobs)):
            batch.append((outcome.line, outcome.result, [astuple(r) for r in outcome.rejections]))
            if len(batch) == 100:
                results.put(batch)
                batch = []
        if batch:
            results.put(batch)
        results.put(None)
    except Exception as error:  # reported by the parent, which stops the other processes
        if batch:
            results.put(batch)  # these rows are committed: count them
        results.put(f"{type(error).__name__}: {str(error)[:300]}")
    finally:
        connections.close_all()


class Progress:
    """A progress bar with rate and ETA on a terminal; a plain line every 5% otherwise (logs)."""

    WIDTH = 30

    def __init__(self, stream, total: int):
        self.stream = stream
        self.total = total
        self.done = 0
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._every = max(1000, total // 20)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def step(self) -> None:
        self.done += 1
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= 0.2 or self.done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(), ending="")
                self.stream.flush()
        elif self.done % self._every == 0:
            self.stream.write(self._line())

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r" + self._line())

    def _line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        remaining = (self.total - self.done) / self.rate if self.rate else 0.0
        text = f"{self.done}/{self.total} rows ({share:.0%}), {self.rate:.0f} rows/s, ETA {_duration(remaining)}"
        if not self.tty:
            return text
        filled = int(self.WIDTH * share)
        return f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {text}"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _providers_queued_for_the_register(organization, *, since) -> int:
    """Providers whose identifying details this run set or changed: the services marked them for
    the register (and queued the check) in the same transaction."""
    return (
        ProviderDetails.objects.filter(
            organization=organization, updated_at__gte=since, verification_status=verification_status_when_asked()
        )
        .exclude(hpii_number__isnull=True, ahpra_number="")
        .count()
    )
