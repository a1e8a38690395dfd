"""export_audit: its CSV the same as the admin's, whole local days for dates, and a reader that stops
early (piped into head) ends it quietly."""

import csv
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.export import CSV_COLUMNS
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
UTC = datetime.UTC
BASH = shutil.which("bash") or "/bin/bash"


def event_at(organization, moment, action="user.updated", actor_name="test"):
    """An audit row at a chosen moment (the services stamp now; the day boundaries need fixed times)."""
    return AuditEvent.objects.create(
        occurred_at=moment, organization=organization, action=action, actor_type="system", actor_id="",
        actor_name=actor_name, changes={"title": {"from": "", "to": "Dr"}}, request_id="r1",
    )


def export(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_audit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def exported_ids(organization, *args):
    """The exported events these tests placed (the organization fixture's own organization.created
    event, stamped now, is left out)."""
    out, _ = export("--organization", str(organization.pk), *args)
    events = [json.loads(line) for line in out.splitlines()]
    return [event["id"] for event in events if event["action"] != "organization.created"]


# --- export_audit: one CSV shape with the admin --------------------------------------------------


def test_export_audit_csv_has_the_admins_columns_and_cells(organization, client, django_user_model):
    event = event_at(organization, datetime.datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC), actor_name="=SUM(A1)")
    staff = django_user_model.objects.create_superuser(
        email="sam@platform.example", password="correct horse battery", given_name="Sam", family_name="Staff"
    )
    client.force_login(staff)

    out, _ = export("--organization", str(organization.pk), "--format", "csv")
    response = client.get("/admin/audit/auditevent/export.csv")
    admin_csv = b"".join(response.streaming_content).decode()

    command_rows = list(csv.reader(io.StringIO(out)))
    admin_rows = list(csv.reader(io.StringIO(admin_csv)))
    assert command_rows[0] == admin_rows[0] == list(CSV_COLUMNS)
    mine = [r for r in command_rows[1:] if r[0] == str(event.pk)]
    assert mine and mine == [r for r in admin_rows[1:] if r[0] == str(event.pk)]  # the same cells
    row = dict(zip(CSV_COLUMNS, mine[0], strict=True))
    assert row["organization"] == organization.name and row["organization_id"] == str(organization.pk)
    assert row["actor_name"] == "'=SUM(A1)"  # still through the one writer
    assert json.loads(row["changes"]) == {"title": {"from": "", "to": "Dr"}}


# --- export_audit: dates are whole local days ------------------------------------------------------

# Sydney is on daylight time (UTC+11) in December: its 1 December runs from 13:00 UTC on 30 November
# to 13:00 UTC on 1 December.
LAST_SECOND_OF_30_NOV = datetime.datetime(2026, 11, 30, 12, 59, 59, tzinfo=UTC)
FIRST_SECOND_OF_1_DEC = datetime.datetime(2026, 11, 30, 13, 0, 0, tzinfo=UTC)
LAST_SECOND_OF_1_DEC = datetime.datetime(2026, 12, 1, 12, 59, 59, 999999, tzinfo=UTC)
FIRST_SECOND_OF_2_DEC = datetime.datetime(2026, 12, 1, 13, 0, 0, tzinfo=UTC)


@pytest.fixture
def around_1_december(organization):
    return [
        event_at(organization, moment).pk
        for moment in (LAST_SECOND_OF_30_NOV, FIRST_SECOND_OF_1_DEC, LAST_SECOND_OF_1_DEC, FIRST_SECOND_OF_2_DEC)
    ]


def test_until_a_date_takes_in_the_whole_local_day(organization, around_1_december):
    before, first, last, _after = around_1_december
    assert exported_ids(organization, "--until", "2026-12-01") == [before, first, last]


def test_since_a_date_starts_at_its_local_midnight(organization, around_1_december):
    _before, first, last, after = around_1_december
    assert exported_ids(organization, "--since", "2026-12-01") == [first, last, after]
    assert exported_ids(organization, "--since", "2026-12-01", "--until", "2026-12-01") == [first, last]


def test_a_date_time_stays_exact(organization, around_1_december):
    before, first, last, after = around_1_december
    assert exported_ids(organization, "--until", "2026-11-30T13:00:00Z") == [before, first]
    assert exported_ids(organization, "--until", "2026-12-01T00:00:00+11:00") == [before, first]
    assert exported_ids(organization, "--since", "2026-12-01T12:59:59.999999") == [last, after]  # naive is UTC


def test_the_same_day_for_since_and_until_is_not_refused_but_a_later_since_is(organization):
    export("--organization", str(organization.pk), "--since", "2026-12-01", "--until", "2026-12-01")
    with pytest.raises(CommandError, match="after --until"):
        export("--organization", str(organization.pk), "--since", "2026-12-02", "--until", "2026-12-01")
    with pytest.raises(CommandError, match="not an ISO date"):
        export("--organization", str(organization.pk), "--until", "2026-02-30")


# --- export_audit: a reader that stops early -------------------------------------------------------


class ClosesAfterFirstWrite(io.StringIO):
    """stdout whose reader went away after the first line, as `| head -n 1` leaves it."""

    def write(self, text):
        if self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_a_closed_stdout_ends_the_export_quietly(organization, format):
    for day in range(1, 4):
        event_at(organization, datetime.datetime(2026, 11, day, tzinfo=UTC))
    out, err = ClosesAfterFirstWrite(), io.StringIO()

    call_command("export_audit", "--organization", str(organization.pk), "--format", format, stdout=out, stderr=err)

    assert len(out.getvalue().splitlines()) == 1
    assert err.getvalue() == ""


def _database_url():
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the subprocess reads the test database: PostgreSQL")
def test_export_audit_piped_into_head_exits_without_a_traceback(organization):
    # Far more than a pipe's 64 KiB buffer, so the export is still writing when head has gone.
    AuditEvent.objects.bulk_create(
        AuditEvent(
            occurred_at=datetime.datetime(2026, 11, 1, tzinfo=UTC) + datetime.timedelta(seconds=n),
            organization=organization, action="user.updated", actor_type="system", actor_id="",
            actor_name="test", changes={"title": {"from": "", "to": "x" * 200}}, request_id="r",
        )
        for n in range(2000)
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "DATABASE_URL": _database_url()}
    for format in ("jsonl", "csv"):
        done = subprocess.run(  # noqa: S603 - our own fixed command line
            [BASH, "-c", 'set -o pipefail; "$0" manage.py export_audit --organization "$1" --format "$2" | head -n 2',
             sys.executable, str(organization.pk), format],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 2
        assert done.stderr == ""  # no traceback, no BrokenPipeError, no "Exception ignored" at exit
