"""manage.py import_users: CSV onboarding through the services, idempotent, row by row."""

import csv
import io
import json
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.management.commands.import_users import Progress
from accounts.models import CognitoSync, ProviderDetails, User
from audit.context import Actor
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

HEADER = [
    "email", "given_name", "family_name", "title", "phone", "partner_user_id", "access_roles",
    "date_of_birth", "sex", "hpii_number", "prescriber_type", "prescriber_number", "qualifications",
    "provider_given_name",
]
BEN = ["ben@practice.example", "Ben", "Smith", "", "", "pms-1", "rx_reader", "", "", "", "", "", "", ""]
SARAH = [
    "Sarah@Practice.example", "Sarah", "Johnson", "Dr", "0432333333", "pms-2", "provider;rx_reader",
    "1975-12-25", "F", "8003614900000009", "M", "1234567", "MBBS", "Sarah-Jane",
]
PRIYA = ["priya@practice.example", "Priya", "Patel", "", "", "pms-3", "", "", "", "", "", "", "", ""]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def run(path, organization, *extra):
    out = io.StringIO()
    call_command("import_users", path, "--organization", str(organization.pk), *extra, stdout=out)
    return out.getvalue()


def read_report(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_creates_users_with_history_audit_and_queued_cognito_work(tmp_path, organization):
    path = write_csv(tmp_path / "staff.csv", [BEN, SARAH, PRIYA])

    output = run(path, organization)

    assert "3 rows: 3 created, 0 updated, 0 unchanged, 0 rejected" in output
    assert "sync_cognito" in output
    ben = User.objects.get(partner_user_id="pms-1")
    assert (ben.organization, ben.roles) == (organization, ["rx_reader"])
    sarah = User.objects.get(email="sarah@practice.example")  # stored lower-cased
    assert sarah.roles == ["provider", "rx_reader"]
    assert sarah.phone == "+61432333333"
    assert sarah.can_prescribe
    assert sarah.provider_details.given_name == "Sarah-Jane"  # provider_given_name
    assert sarah.provider_details.family_name == "Johnson"  # filled from the user
    assert User.objects.get(partner_user_id="pms-3").roles == ["member"]  # empty access_roles: the default

    events = AuditEvent.objects.filter(organization=organization, user__isnull=False)  # not organization.created
    assert sorted(events.values_list("action", flat=True)) == [
        "provider_details.updated", "user.created", "user.created", "user.created",
    ]
    assert set(events.values_list("actor_type", "actor_name")) == {("system", "import_users")}
    assert len(set(events.values_list("request_id", flat=True))) == 1  # one id for the whole run
    assert User.history.filter(id__in=[ben.pk, sarah.pk]).count() == 2
    assert ProviderDetails.history.filter(user_id=sarah.pk).count() == 1
    assert set(CognitoSync.objects.values_list("state", flat=True)) == {"pending"}
    assert CognitoSync.objects.count() == 3
    assert not (tmp_path / "staff.csv.rejected.csv").exists()  # a clean import leaves no empty report
    assert "Rejected rows: none (no report written)." in output
    assert "Cognito: 3 accounts are queued" in output


def test_rerun_is_a_no_op(tmp_path, organization):
    path = write_csv(tmp_path / "staff.csv", [BEN, SARAH, PRIYA])
    run(path, organization)
    counts = (AuditEvent.objects.count(), User.history.count(), ProviderDetails.history.count())

    output = run(path, organization)

    assert "3 rows: 0 created, 0 updated, 3 unchanged, 0 rejected" in output
    assert "sync_cognito" not in output
    assert (AuditEvent.objects.count(), User.history.count(), ProviderDetails.history.count()) == counts
    assert User.objects.count() == 3


def test_changed_rows_update_through_the_services(tmp_path, organization):
    run(write_csv(tmp_path / "first.csv", [BEN, SARAH]), organization)
    ben_id = User.objects.get(partner_user_id="pms-1").pk
    # Ben: matched by partner id, new email and title, upgraded to provider (details come later).
    ben = ["ben.smith@practice.example", "Ben", "Smith", "Mr", "", "pms-1", "provider"] + [""] * 7
    # Sarah: matched by partner id; only the prescriber number differs (case of email doesn't).
    sarah = list(SARAH)
    sarah[0] = "sarah@PRACTICE.example"
    sarah[11] = "7654321"

    output = run(write_csv(tmp_path / "second.csv", [ben, sarah]), organization)

    assert "2 rows: 0 created, 2 updated, 0 unchanged, 0 rejected" in output
    updated = User.objects.get(pk=ben_id)
    assert (updated.email, updated.title, updated.roles) == ("ben.smith@practice.example", "Mr", ["provider"])
    ben_events = AuditEvent.objects.filter(user_id=ben_id).order_by("id")
    assert [e.action for e in ben_events] == ["user.created", "user.updated", "user.roles_changed"]
    assert ben_events[2].changes == {"access_roles": {"from": ["rx_reader"], "to": ["provider"]}}
    sarah_events = AuditEvent.objects.filter(user__partner_user_id="pms-2", action="provider_details.updated")
    assert sarah_events.order_by("id").last().changes == {"prescriber_number": {"from": "1234567", "to": "7654321"}}
    assert not AuditEvent.objects.filter(user__partner_user_id="pms-2", action="user.updated").exists()


def test_matches_by_email_when_the_user_has_no_partner_id(tmp_path, organization):
    existing = services.user_create(
        organization=organization, actor=Actor.system("test"), email="ben@practice.example",
        given_name="Ben", family_name="Smith",
    )

    output = run(write_csv(tmp_path / "staff.csv", [BEN]), organization)

    assert "1 created" not in output and "1 updated" in output
    existing.refresh_from_db()
    assert (existing.partner_user_id, existing.roles) == ("pms-1", ["rx_reader"])


def test_bad_rows_are_reported_and_never_stop_the_others(tmp_path, organization, other_organization):
    services.user_create(
        organization=other_organization, actor=Actor.system("test"), email="taken@elsewhere.example",
        given_name="Taken", family_name="Elsewhere",
    )
    bad_hpii = list(SARAH)
    bad_hpii[9] = "8003614900000000"
    rows = [
        BEN,  # line 2
        bad_hpii,  # line 3
        ["x@practice.example", "", "Nope", "", "", "", "member", "", "", "", "", "", "", ""],  # line 4
        ["y@practice.example", "Y", "Role", "", "", "", "owner", "", "", "", "", "", "", ""],  # line 5
        ["taken@elsewhere.example", "T", "E", "", "", "", "", "", "", "", "", "", "", ""],  # line 6
        ["z@practice.example", "Z", "Phone", "", "12", "", "", "", "", "", "", "", "", ""],  # line 7
        ["dup@practice.example", "D", "Dup", "", "", "pms-1", "", "", "", "", "", "", "", ""],  # line 8
        PRIYA,  # line 9
    ]
    path = write_csv(tmp_path / "staff.csv", rows)

    with pytest.raises(CommandError) as raised:
        run(path, organization, "--report", str(tmp_path / "rejects.csv"))

    assert raised.value.returncode == 2
    assert "5 of 8 rows rejected" in str(raised.value)
    assert set(User.objects.filter(organization=organization).values_list("partner_user_id", flat=True)) == {
        "pms-1", "pms-3",
    }
    # Line 8 matched Ben by partner id and updated his email: an update, not a duplicate.
    assert User.objects.get(partner_user_id="pms-1").email == "dup@practice.example"
    report = {(int(r["line"]), r["field"], r["code"]): r["message"] for r in read_report(tmp_path / "rejects.csv")}
    assert "the last digit should be 9" in report[(3, "hpii_number", "invalid")]
    assert report[(4, "given_name", "required")] == "This field is required."
    assert "owner" in report[(5, "access_roles", "invalid_role")]
    assert (6, "email", "user_already_exists") in report
    assert "phone" in {field for (line, field, _code) in report if line == 7}


def test_email_of_a_user_with_another_partner_id_is_rejected(tmp_path, organization):
    run(write_csv(tmp_path / "first.csv", [BEN]), organization)
    other = list(BEN)
    other[5] = "pms-99"

    with pytest.raises(CommandError):
        run(write_csv(tmp_path / "second.csv", [other]), organization)

    (row,) = read_report(tmp_path / "second.csv.rejected.csv")
    assert (row["line"], row["field"], row["code"]) == ("2", "partner_user_id", "partner_user_id_conflict")
    assert User.objects.get().partner_user_id == "pms-1"


def test_disabled_users_are_rejected_only_when_the_row_changes_them(tmp_path, organization):
    run(write_csv(tmp_path / "first.csv", [PRIYA]), organization)
    services.user_disable(user=User.objects.get(), actor=Actor.system("test"))

    assert "1 unchanged" in run(write_csv(tmp_path / "same.csv", [PRIYA]), organization)

    changed = list(PRIYA)
    changed[3] = "Dr"
    with pytest.raises(CommandError):
        run(write_csv(tmp_path / "changed.csv", [changed]), organization)
    (row,) = read_report(tmp_path / "changed.csv.rejected.csv")
    assert row["code"] == "user_disabled"


def test_dry_run_changes_nothing_and_reports_what_would_happen(tmp_path, organization):
    run(write_csv(tmp_path / "first.csv", [BEN]), organization)
    counts = (User.objects.count(), AuditEvent.objects.count(), CognitoSync.objects.count(), User.history.count())
    ben = list(BEN)
    ben[3] = "Mr"
    # Sarah's HPI-I twice in one file: the dry run sees the conflict a real run would meet.
    twin = list(SARAH)
    twin[0], twin[5] = "twin@practice.example", "pms-4"
    path = write_csv(tmp_path / "second.csv", [ben, SARAH, PRIYA, twin])

    with pytest.raises(CommandError):
        output = io.StringIO()
        try:
            call_command(
                "import_users", path, "--organization", str(organization.pk), "--dry-run",
                "--report", str(tmp_path / "dry.jsonl"), stdout=output,
            )
        finally:
            text = output.getvalue()

    assert "Dry run, nothing changed: 4 rows: 2 would be created, 1 would be updated, 0 unchanged, 1 rejected" in text
    assert "sync_cognito" not in text
    counts_after = (
        User.objects.count(), AuditEvent.objects.count(), CognitoSync.objects.count(), User.history.count()
    )
    assert counts_after == counts
    assert User.objects.get().title == ""
    lines = [json.loads(line) for line in (tmp_path / "dry.jsonl").read_text().splitlines()]
    assert lines == [
        {
            "line": 5,
            "field": "hpii_number",
            "code": "hpii_conflict",
            "message": "Another user of this organization already has this HPI-I.",
        }
    ]


def test_a_crash_halfway_keeps_finished_rows_and_a_rerun_completes_the_rest(tmp_path, organization):
    path = write_csv(tmp_path / "staff.csv", [BEN, SARAH, PRIYA])
    real_create = services.user_create
    calls = []

    def crash_on_third(**kwargs):
        calls.append(kwargs["email"])
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real_create(**kwargs)

    with mock.patch.object(services, "user_create", side_effect=crash_on_third), pytest.raises(RuntimeError):
        run(path, organization)
    assert User.objects.count() == 2

    output = run(path, organization)

    assert "3 rows: 1 created, 0 updated, 2 unchanged, 0 rejected" in output
    assert sorted(User.objects.values_list("partner_user_id", flat=True)) == ["pms-1", "pms-2", "pms-3"]
    assert AuditEvent.objects.filter(action="user.created").count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_import_queues_cognito_work_instead_of_calling_cognito(tmp_path, organization, cognito):
    run(write_csv(tmp_path / "staff.csv", [BEN]), organization)

    user = User.objects.get()
    assert CognitoSync.objects.get(pk=user.pk).state == "pending"
    assert cognito.describe(username=str(user.pk)) is None
    # Outside the import the inline path is back: an API-style change syncs right after commit.
    services.user_roles_set(user=user, actor=Actor.system("test"), roles=["admin"])
    assert cognito.describe(username=str(user.pk))["groups"] == {"admin"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("email,given_name\n", "Missing required column(s): family_name"),
        ("email,given_name,family_name,hpi_number\n", "Unknown column(s): hpi_number"),
        ("email,email,given_name,family_name\n", "given twice: email"),
    ],
)
def test_unusable_files_are_refused_before_any_write(tmp_path, organization, content, message):
    path = tmp_path / "staff.csv"
    path.write_text(content + "a@b.example,A,B\n" if content else "")

    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(str(path), organization)
    assert User.objects.count() == 0


def test_a_file_that_is_not_utf8_is_refused(tmp_path, organization):
    path = tmp_path / "staff.csv"
    path.write_bytes("email,given_name,family_name\nzoë@b.example,Zoë,B\n".encode("latin-1"))

    with pytest.raises(CommandError, match="not UTF-8"):
        run(str(path), organization)
    assert User.objects.count() == 0


def test_unknown_organization_and_missing_file(tmp_path, organization):
    path = write_csv(tmp_path / "staff.csv", [BEN])
    with pytest.raises(CommandError, match="No organization with id"):
        call_command("import_users", path, "--organization", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(CommandError, match="No organization with id 'not-a-uuid'"):
        call_command("import_users", path, "--organization", "not-a-uuid")
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_users", str(tmp_path / "missing.csv"), "--organization", str(organization.pk))


def test_help_names_the_columns_and_the_options(capsys):
    with pytest.raises(SystemExit):
        call_command("import_users", "--help")
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("partner_user_id", "hpii_number", "--dry-run", "--report", "--organization", "sync_cognito"):
        assert expected in text


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_a_bar_with_rate_and_eta_on_a_terminal():
    from django.core.management.base import OutputWrapper

    stream = _Terminal()
    progress = Progress(OutputWrapper(stream), total=4)
    for _ in range(4):
        progress.step()
    progress.finish()

    text = stream.getvalue()
    assert "\r[" + "#" * Progress.WIDTH + "] 4/4 rows (100%)" in text
    assert "rows/s" in text and "ETA" in text


def test_progress_prints_plain_lines_when_not_a_terminal():
    from django.core.management.base import OutputWrapper

    stream = io.StringIO()
    progress = Progress(OutputWrapper(stream), total=3000)
    for _ in range(3000):
        progress.step()

    lines = stream.getvalue().splitlines()
    assert [line.split(" rows")[0] for line in lines] == ["1000/3000", "2000/3000", "3000/3000"]
    assert "\r" not in stream.getvalue() and "[" not in stream.getvalue()


def test_jobs_is_refused_with_dry_run_and_below_one(tmp_path, organization):
    path = write_csv(tmp_path / "staff.csv", [BEN])
    with pytest.raises(CommandError, match="--dry-run runs in one process"):
        run(path, organization, "--dry-run", "--jobs", "2")
    with pytest.raises(CommandError, match="--jobs must be 1 or more"):
        run(path, organization, "--jobs", "0")


@pytest.mark.django_db(transaction=True)
def test_parallel_import_splits_the_rows_without_duplicates(tmp_path, organization):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("--jobs needs PostgreSQL")
    rows = [[f"user{i}@practice.example", "U", f"N{i}", "", "", f"pms-{i}", "member"] + [""] * 7 for i in range(40)]
    rows.append(["bad@practice.example", "", "NoGiven", "", "", "", ""] + [""] * 7)  # line 42
    path = write_csv(tmp_path / "staff.csv", rows)

    with pytest.raises(CommandError, match="1 of 41 rows rejected"):
        run(path, organization, "--jobs", "3")

    assert User.objects.filter(organization=organization).count() == 40
    assert AuditEvent.objects.filter(action="user.created").count() == 40
    assert read_report(tmp_path / "staff.csv.rejected.csv")[0]["line"] == "42"
    assert "41 rows: 0 created, 0 updated, 40 unchanged, 1 rejected" in _run_allowing_rejects(path, organization)


def _run_allowing_rejects(path, organization, *extra):
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_users", path, "--organization", str(organization.pk), *extra, stdout=out)
    return out.getvalue()


def test_one_of_everything_is_said_in_the_singular(tmp_path, organization):
    output = run(write_csv(tmp_path / "one.csv", [BEN]), organization)
    assert "Importing 1 row into" in output
    assert "1 row: 1 created, 0 updated, 0 unchanged, 0 rejected" in output
    assert "Cognito: 1 account is queued" in output
    path = write_csv(tmp_path / "bad.csv", [["x@practice.example", "", "Smith", *[""] * 11]])
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_users", path, "--organization", str(organization.pk), stdout=out)
    assert "Rejected rows (1 problem):" in out.getvalue()
    assert "1 of 1 row rejected" in str(raised.value)


def test_a_stale_report_of_an_earlier_run_goes_when_the_rerun_is_clean(tmp_path, organization):
    report = tmp_path / "staff.csv.rejected.csv"
    report.write_text("line,field,code,message\n3,given_name,required,This field is required.\n")
    run(write_csv(tmp_path / "staff.csv", [BEN]), organization)
    assert not report.exists()


def test_a_deactivated_organization_is_refused_and_nothing_is_imported(tmp_path, organization):
    from organizations.models import Organization

    Organization.objects.filter(pk=organization.pk).update(is_active=False)
    with pytest.raises(CommandError, match="is deactivated"):
        run(write_csv(tmp_path / "staff.csv", [BEN]), organization)
    assert not User.objects.filter(email="ben@practice.example").exists()
    assert not (tmp_path / "staff.csv.rejected.csv").exists()


def test_a_disabled_users_row_says_so_without_naming_the_api(tmp_path, organization):
    run(write_csv(tmp_path / "first.csv", [BEN]), organization)
    services.user_disable(user=User.objects.get(partner_user_id="pms-1"), actor=Actor.system("test"))
    changed = [*BEN[:3], "Dr", *BEN[4:]]
    path = write_csv(tmp_path / "second.csv", [changed])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_users", path, "--organization", str(organization.pk), stdout=out)
    (row,) = read_report(tmp_path / "second.csv.rejected.csv")
    assert row["code"] == "user_disabled"
    assert "API" not in row["message"] and "API" not in out.getvalue()
