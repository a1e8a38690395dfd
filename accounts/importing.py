"""Bulk onboarding from CSV (`manage.py import_users`): every row through the same services as the API.

A row is matched to an existing user of the organization by `partner_user_id`, then by email, and
becomes a create (user_create), an update (user_update, then user_roles_set), or nothing at all when
it already matches the stored user. Each row commits on its own, so a crash leaves every finished
row committed and a rerun finds those rows unchanged. Empty cells mean "not given": they never
clear a stored value.

Speed comes from deciding create/update/unchanged without a query per row (the users a chunk of
rows can match are fetched in one query per chunk) and from leaving Cognito to the workers: the
outbox row of every change is still written in its transaction, only the inline attempt is skipped.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from rest_framework import serializers

from accounts import roles as role_names
from accounts import services
from accounts.api.serializers import FLAT_PROVIDER_FIELDS, UserCreateSerializer, UserUpdateSerializer
from accounts.cognito.sync import inline_sync_disabled
from accounts.models import PROVIDER_FIELDS, ProviderDetails, User
from audit.context import Actor
from core import csv as safe_csv
from core.batches import batched
from core.errors import ApplicationError

USER_COLUMNS = ("email", "given_name", "family_name", "title", "phone", "partner_user_id", "access_roles")
# The provider's own name and phone: when absent, the user's name and phone fill them (as in the API).
PROVIDER_OWN_COLUMNS = {"provider_given_name": "given_name", "provider_family_name": "family_name",
                        "provider_phone": "phone"}
COLUMNS = USER_COLUMNS + FLAT_PROVIDER_FIELDS + tuple(PROVIDER_OWN_COLUMNS)
REQUIRED_COLUMNS = ("email", "given_name", "family_name")
CHUNK_SIZE = 1000
logger = logging.getLogger(__name__)
_ROLE_SEPARATORS = re.compile(r"[\s;,]+")


class ImportFileError(Exception):
    """The file as a whole can't be imported (not UTF-8, missing or unknown columns)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str
    code: str
    message: str


@dataclass
class Outcome:
    line: int
    result: str  # "created" | "updated" | "unchanged" | "rejected"
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class Summary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.result, getattr(self, outcome.result) + 1)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected


# --- reading the file ------------------------------------------------------------------------------


def open_csv(path):
    # utf-8-sig: spreadsheets save a byte-order mark in front of the header.
    return open(path, newline="", encoding="utf-8-sig")


def check_file(path) -> int:
    """Read the whole file once before writing anything: the header is usable and every byte is
    UTF-8. Returns the number of data rows (for the progress bar)."""
    try:
        with open_csv(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            check_header(header)
            return sum(1 for _ in reader)
    except UnicodeDecodeError as error:
        raise ImportFileError(f"The file is not UTF-8 text ({error.reason} at byte {error.start}).") from error
    except csv.Error as error:
        raise ImportFileError(f"The file is not valid CSV: {error}.") from error


def check_header(header: list[str] | None) -> None:
    if not header:
        raise ImportFileError("The file is empty: expected a header row naming the columns.")
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s): {', '.join(unknown)}. Allowed columns: {', '.join(COLUMNS)}."
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ImportFileError(f"Column(s) given twice: {', '.join(duplicated)}.")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ImportFileError(f"Missing required column(s): {', '.join(missing)}.")


def read_rows(handle) -> Iterator[tuple[int, dict]]:
    """(line number, cells) for each data row; the line is where the row starts in the file."""
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader)]
    line = reader.line_num + 1
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            line = reader.line_num + 1
            continue  # blank lines (a trailing newline from a spreadsheet) are not rows
        row = dict(zip(header, cells, strict=False))
        if len(cells) > len(header):
            row[None] = cells[len(header):]
        yield line, row
        line = reader.line_num + 1


# --- one row ---------------------------------------------------------------------------------------


@dataclass
class ParsedRow:
    line: int
    email: str
    partner_user_id: str | None
    user: dict  # user fields given in the row (as the API's serializer returns them)
    roles: list[str] | None
    provider: dict  # provider details given in the row


def parse_row(line: int, cells: dict, *, for_update: bool) -> ParsedRow:
    """Type-check one row with the API's own input serializer; raise RowRejected on errors."""
    if None in cells:
        raise RowRejected([Rejection(line, "", "invalid", "The row has more cells than the header has columns.")])
    given = {name: value.strip() for name, value in cells.items() if value is not None and value.strip()}
    roles = None
    if "access_roles" in given:
        roles = [role for role in _ROLE_SEPARATORS.split(given.pop("access_roles")) if role]
    nested = {own: given.pop(column) for column, own in PROVIDER_OWN_COLUMNS.items() if column in given}
    if nested:
        given["provider_details"] = nested
    if not for_update and roles is not None:
        given["access_roles"] = roles
    try:
        user = dict(_serializer(for_update).run_validation(given))
    except serializers.ValidationError as error:
        raise RowRejected(list(_serializer_rejections(line, error.detail))) from None
    user.pop("access_roles", None)
    # As the API's split(): flat provider fields and the nested ones make up the details.
    provider = {name: user.pop(name) for name in FLAT_PROVIDER_FIELDS if name in user}
    provider.update(user.pop("provider_details", None) or {})
    if for_update and "email" not in user:
        raise RowRejected([Rejection(line, "email", "required", "This field is required.")])
    return ParsedRow(
        line=line,
        email=user["email"].strip().lower(),
        partner_user_id=user.get("partner_user_id") or None,
        user=user,
        roles=roles,
        provider=provider or {},
    )


@functools.cache
def _serializer(for_update: bool):
    """One input serializer per kind, reused for every row: DRF builds (deep-copies) a serializer's
    fields per instance, which would cost more than the row's database work."""
    return (UserUpdateSerializer if for_update else UserCreateSerializer)()


class RowRejected(Exception):
    def __init__(self, rejections: list[Rejection]):
        super().__init__(rejections)
        self.rejections = rejections


def _serializer_rejections(line, errors, prefix="") -> Iterable[Rejection]:
    for name, value in errors.items():
        if isinstance(value, dict):  # the nested provider_details
            yield from _serializer_rejections(line, value, prefix=f"{name}.")
            continue
        for error in value:
            yield Rejection(line, _column_name(f"{prefix}{name}"), getattr(error, "code", "invalid"), str(error))


def _column_name(field_path: str) -> str:
    """A service's field path (`provider_details.hpii_number`) as the CSV column that holds it."""
    prefix = "provider_details."
    if field_path.startswith(prefix):
        name = field_path[len(prefix):]
        for column, own in PROVIDER_OWN_COLUMNS.items():
            if own == name:
                return column
        return name
    return "" if field_path == "__all__" else field_path


def _service_rejections(line: int, error: Exception) -> list[Rejection]:
    if isinstance(error, ApplicationError):
        return [Rejection(line, _column_name(error.field or ""), error.code, error.message)]
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        return [
            Rejection(line, _column_name(name), item.code or "invalid", " ".join(item.messages))
            for name, items in error.error_dict.items()
            for item in items
        ]
    messages = getattr(error, "messages", None) or [str(error)]
    return [Rejection(line, "", "invalid", " ".join(messages))]


# --- deciding what a row changes ---------------------------------------------------------------------


_USER_FIELD = {name: User._meta.get_field(name) for name in services.USER_FIELDS}
_PROVIDER_FIELD = {name: ProviderDetails._meta.get_field(name) for name in PROVIDER_FIELDS}


def _differs(model_field, stored, given) -> bool:
    """Whether `given` (as typed in the row) would change `stored`, compared in the stored form.
    A value the field can't normalise is a change: the service will reject it with its message."""
    try:
        value = model_field.to_python(given)
    except ValidationError:
        return True
    if model_field.name == "email":
        value = value.strip().lower()
    if value in ("", None) and stored in ("", None):
        return False
    return value != stored


def user_changes(user: User, row: ParsedRow) -> tuple[dict, dict, list[str] | None]:
    """(user fields, provider fields, new roles) that the row would change; empty when none."""
    data = {name: value for name, value in row.user.items() if _differs(_USER_FIELD[name], getattr(user, name), value)}
    details = getattr(user, "provider_details", None)
    if details is None:
        provider = dict(row.provider)
    else:
        provider = {
            name: value
            for name, value in row.provider.items()
            if _differs(_PROVIDER_FIELD[name], getattr(details, name), value)
        }
    roles = None
    if row.roles is not None:
        try:
            wanted = role_names.normalize_roles(row.roles)
        except TypeError:
            wanted = row.roles
        if wanted != role_names.normalize_roles(user.roles):
            roles = row.roles
    return data, provider, roles


# --- the import ------------------------------------------------------------------------------------


class Importer:
    """Imports rows for one organization. `dry_run` does every write inside one transaction that is
    rolled back at the end, so it reports exactly what a real run would do (duplicates within the
    file included) and leaves nothing behind."""

    def __init__(self, *, organization, actor: Actor | None = None, dry_run: bool = False, shard=(0, 1)):
        self.organization = organization
        self.actor = actor or Actor.system("import_users")
        self.dry_run = dry_run
        self.shard, self.shards = shard
        self.summary = Summary()
        self._analyzed_at = 0

    def run(self, rows: Iterable[tuple[int, dict]]) -> Iterator[Outcome]:
        if self.shards > 1:
            rows = (row for row in rows if shard_of(row[1], self.shards) == self.shard)
        with inline_sync_disabled():
            if not self.dry_run:
                with _asynchronous_commit():
                    for chunk in batched(rows, CHUNK_SIZE):
                        yield from self._chunk(chunk)
                return
            with transaction.atomic():
                for chunk in batched(rows, CHUNK_SIZE):
                    yield from self._chunk(chunk)
                transaction.set_rollback(True)

    def _chunk(self, chunk: list[tuple[int, dict]]) -> Iterator[Outcome]:
        by_partner, by_email = self._existing(chunk)
        for line, cells in chunk:
            outcome = self._row(line, cells, by_partner, by_email)
            self.summary.add(outcome)
            yield outcome
        self._refresh_statistics()

    def _refresh_statistics(self) -> None:
        """ANALYZE the tables the services look users up in, whenever the import has doubled them.

        A bulk load outgrows PostgreSQL's statistics long before autovacuum catches up: planning
        with the stale ones, the per-row conflict checks (partner id, HPI-I within the organization)
        scanned every user of the organization instead of using their unique indexes, so each row
        cost more than the last (measured: 8.5 ms instead of 0.05 ms per check at 2,000 users)."""
        written = self.summary.created + self.summary.updated
        if connection.vendor != "postgresql" or written < max(1000, 2 * self._analyzed_at):
            return
        self._analyzed_at = written
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("ANALYZE accounts_user, accounts_providerdetails")
        except DatabaseError:
            logger.warning("import_users: could not ANALYZE the user tables (permission?); continuing")

    def _existing(self, chunk) -> tuple[dict, dict]:
        """The organization's users this chunk can match, in one query."""
        partner_ids, emails = set(), set()
        for _line, cells in chunk:
            if (cells.get("partner_user_id") or "").strip():
                partner_ids.add(cells["partner_user_id"].strip())
            if (cells.get("email") or "").strip():
                emails.add(cells["email"].strip().lower())
        users = (
            User.objects.filter(organization=self.organization)
            # lower(email): the expression the unique index user_email_ci_unique serves.
            .alias(email_lower=Lower("email"))
            .filter(Q(partner_user_id__in=partner_ids) | Q(email_lower__in=emails))
            .select_related("provider_details")
        )
        by_partner, by_email = {}, {}
        for user in users:
            _remember(user, by_partner, by_email)
        return by_partner, by_email

    def _row(self, line, cells, by_partner, by_email) -> Outcome:
        partner_id = (cells.get("partner_user_id") or "").strip()
        email = (cells.get("email") or "").strip().lower()
        existing = by_partner.get(partner_id) if partner_id else None
        if existing is None and email:
            existing = by_email.get(email)
            if existing is not None and partner_id and existing.partner_user_id not in (None, partner_id):
                return Outcome(line, "rejected", [Rejection(
                    line, "partner_user_id", "partner_user_id_conflict",
                    f"The user with this email has a different partner_user_id ({existing.partner_user_id}); "
                    "fix the file, or change the user's partner_user_id (the admin or the API) before the import.",
                )])
        try:
            row = parse_row(line, cells, for_update=existing is not None)
            if existing is None:
                user = self._create(row)
                _remember(user, by_partner, by_email)
                return Outcome(line, "created")
            data, provider, roles = user_changes(existing, row)
            if not (data or provider or roles is not None):
                return Outcome(line, "unchanged")
            user = self._update(row, existing, data, provider, roles)
            _forget(existing, by_partner, by_email)
            _remember(user, by_partner, by_email)
            return Outcome(line, "updated")
        except RowRejected as rejected:
            return Outcome(line, "rejected", rejected.rejections)
        except (ApplicationError, ValidationError) as error:
            return Outcome(line, "rejected", _service_rejections(line, error))

    def _create(self, row: ParsedRow) -> User:
        # user_create is one transaction (a savepoint in a dry run) of its own.
        return services.user_create(
            organization=self.organization,
            actor=self.actor,
            roles=row.roles,
            provider_details=row.provider or None,
            **row.user,
        )

    def _update(self, row: ParsedRow, user: User, data: dict, provider: dict, roles) -> User:
        # Both services in one transaction: a row's changes land together or not at all.
        with transaction.atomic():
            if data or provider:
                user = services.user_update(
                    user=user, actor=self.actor, data=data, provider_details=provider or None
                )
            if roles is not None:
                user = services.user_roles_set(user=user, actor=self.actor, roles=roles)
        return user


@contextlib.contextmanager
def _asynchronous_commit():
    """Each row still commits on its own, but without waiting for the WAL flush (a third of a row's
    time here). A crash of this process loses nothing committed; only a crash of the PostgreSQL
    server itself could drop the last fraction of a second of rows, and a rerun of the same file
    restores them, since the import is idempotent."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def shard_of(cells: dict, shards: int) -> int:
    """Parallel imports split the file by email: every row for one address lands in one process, so
    two processes never race on the same user. (Rows for one person under two different emails
    could still meet: the database constraint decides, and the loser is reported, not duplicated.)"""
    email = (cells.get("email") or "").strip().lower()
    return zlib.crc32(email.encode()) % shards


def _remember(user: User, by_partner: dict, by_email: dict) -> None:
    if user.partner_user_id:
        by_partner[user.partner_user_id] = user
    by_email[user.email] = user


def _forget(user: User, by_partner: dict, by_email: dict) -> None:
    if user.partner_user_id and by_partner.get(user.partner_user_id) is user:
        del by_partner[user.partner_user_id]
    if by_email.get(user.email) is user:
        del by_email[user.email]


# --- the report of rejected rows -------------------------------------------------------------------

REPORT_COLUMNS = ("line", "field", "code", "message")


class RejectionReport:
    """Rejected rows as CSV, or JSON lines when the file name ends in .jsonl/.json."""

    def __init__(self, handle, *, jsonl: bool):
        self.handle = handle
        self.jsonl = jsonl
        self.count = 0
        if not jsonl:
            self.writer = safe_csv.writer(handle)  # a rejected cell may be a formula: neutralised
            self.writer.writerow(REPORT_COLUMNS)

    def write(self, rejection: Rejection) -> None:
        self.count += 1
        if self.jsonl:
            self.handle.write(json.dumps(
                {"line": rejection.line, "field": rejection.field, "code": rejection.code,
                 "message": rejection.message}
            ) + "\n")
        else:
            self.writer.writerow([rejection.line, rejection.field, rejection.code, rejection.message])

