"""Every CSV the product writes neutralises formula cells (issue 12 item 8, issue 14: one writer).

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to a spreadsheet
(`=HYPERLINK(...)` as an API client's name would be a live link in the exported audit trail); the
writer prefixes it with `'`. The three writers are export_audit, import_users' report of rejected
rows and the admin's audit export, and all three go through core/csv.py.
"""

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.importing import Rejection, RejectionReport
from audit.context import Actor
from core import csv as safe_csv

pytestmark = pytest.mark.django_db

DANGEROUS = ["=HYPERLINK(\"https://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _hostile_events(organization):
    for index, name in enumerate(DANGEROUS):
        services.user_create(
            organization=organization, actor=Actor.system(name), email=f"u{index}@practice.example",
            given_name="Ben", family_name="Smith",
        )


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("value", DANGEROUS)
def test_safe_cell_prefixes_every_formula_start(value):
    assert safe_csv.safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Ben", "", "2026-01-01", "'=already quoted", " =x", 42])
def test_safe_cell_leaves_other_cells_alone(value):
    assert safe_csv.safe_cell(value) == str(value)


def test_safe_cell_writes_none_as_empty():
    assert safe_csv.safe_cell(None) == ""


def test_export_audit_csv_neutralises_formula_cells(organization, tmp_path):
    _hostile_events(organization)
    path = tmp_path / "audit.csv"
    call_command(
        "export_audit", "--organization", str(organization.pk), "--format", "csv", "--output", str(path),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    users = [row for row in rows if row["action"] == "user.created"]  # not the fixture's organization.created
    assert [row["actor_name"] for row in users] == ["'" + name for name in DANGEROUS]


def test_export_audit_jsonl_is_not_touched(organization):
    """JSON lines are data, not a spreadsheet: the names stay as they are."""
    _hostile_events(organization)
    out = io.StringIO()
    call_command("export_audit", "--organization", str(organization.pk), stdout=out, stderr=io.StringIO())
    assert '"name": "=HYPERLINK(' in out.getvalue()


@pytest.mark.parametrize("value", DANGEROUS)
def test_import_report_neutralises_formula_cells(value):
    handle = io.StringIO(newline="")
    report = RejectionReport(handle, jsonl=False)
    report.write(Rejection(2, value, value, value))
    [row] = _rows(handle.getvalue())
    assert row == {"line": "2", "field": "'" + value, "code": "'" + value, "message": "'" + value}


def test_import_report_written_by_the_command_is_neutralised(organization, tmp_path, monkeypatch):
    """The command's own report file goes through the same writer (a message echoing a hostile cell)."""
    from accounts import importing

    path = tmp_path / "staff.csv"
    path.write_text("email,given_name,family_name\nnot-an-email,Ben,Smith\n", encoding="utf-8")
    original = importing._service_rejections

    def hostile(line, error):
        return [Rejection(r.line, r.field, r.code, "=HYPERLINK(\"x\")") for r in original(line, error)]

    monkeypatch.setattr(importing, "_service_rejections", hostile)
    monkeypatch.setattr(
        importing, "_serializer_rejections",
        lambda line, errors, prefix="": [Rejection(line, "email", "invalid", "=HYPERLINK(\"x\")")],
    )
    report = tmp_path / "rejected.csv"
    with pytest.raises(CommandError):
        call_command("import_users", str(path), "--organization", str(organization.pk), "--report", str(report),
                     stdout=io.StringIO(), stderr=io.StringIO())
    rows = _rows(report.read_text(encoding="utf-8"))
    assert rows and all(row["message"] == "'=HYPERLINK(\"x\")" for row in rows)


def test_admin_audit_export_neutralises_formula_cells(organization, client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        email="sam@platform.example", password="correct horse battery", given_name="Sam", family_name="Staff"
    )
    client.force_login(staff)
    _hostile_events(organization)
    response = client.get("/admin/audit/auditevent/export.csv")
    assert response.status_code == 200
    rows = _rows(b"".join(response.streaming_content).decode())
    users = [row for row in rows if row["action"] == "user.created"]  # not the fixture's organization.created
    assert sorted(row["actor_name"] for row in users) == sorted("'" + name for name in DANGEROUS)
